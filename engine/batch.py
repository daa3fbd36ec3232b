"""Many content images, the same styles: `batch_transfer` stylises every image in a folder.

Style images are decoded once and their Gram targets computed once per size (StyleTransfer caches
them); outputs that already exist are skipped, so a rerun resumes; a failing image is reported and the
rest still run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import NstError
from .images import as_image, check_format, check_output, image_suffix, save_result

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass
class BatchReport:
    """What a batch did: written, skipped (already there) and failed images with the reason."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.written)} written, {len(self.skipped)} skipped (already there), {len(self.failed)} failed"


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise NstError(f"{root}: not a folder; give the folder that holds the content images")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NstError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def batch_transfer(
    st,
    content_dir: str | Path,
    styles: list,
    out_dir: str | Path,
    suffix: str = ".png",
    preset: str | None = None,
    bit_depth: int = 8,
    quality: int = 95,
    on_start: Callable[[Path, Path], object] | None = None,
    on_done: Callable[[Path, str | None], object] | None = None,
    callback=None,
    **overrides,
) -> BatchReport:
    """Stylise every image of `content_dir` into `out_dir/<name><suffix>`; returns a BatchReport."""
    contents = list_images(content_dir)
    suffix = image_suffix(suffix)
    check_format(suffix, bit_depth, quality)
    opts = st.options(preset, **overrides)
    style_imgs = [as_image(s, f"style image {i + 1}") for i, s in enumerate(styles)]
    out = Path(out_dir)  # created only once everything above is known to be good
    out.mkdir(parents=True, exist_ok=True)
    check_output(out / f"probe{suffix}", bit_depth, quality)
    report = BatchReport()
    for content in contents:
        target = out / f"{content.stem}{suffix}"
        if target.exists():
            report.skipped.append(target)
            continue
        if on_start:
            on_start(content, target)
        try:
            result = st.stylize(str(content), style_imgs, callback=callback, options=opts)
            save_result(target, result, bit_depth, quality)
        except NstError as exc:
            report.failed.append((content, str(exc)))
            if on_done:
                on_done(content, str(exc))
            continue
        report.written.append(target)
        if on_done:
            on_done(content, None)
    return report
