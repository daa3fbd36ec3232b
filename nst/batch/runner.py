"""Many content images, the same styles: `batch_transfer` stylises every image in a folder.

Each result is named for its whole input file name plus the output suffix (`a.jpg` -> `a.jpg.png`), so
results of distinct inputs never collide. Beside the results, OUT/.nst-batch/ holds a record per result
(what it was made from: the input's and the style files' bytes, the resolved options, the output format)
and, while an image is being made, its claim. A rerun skips results whose record matches and refuses, before
any work, when results were made otherwise (use another folder, or `overwrite` to redo them). Processes
sharing an output folder claim each image (nst/batch/claims.py), so each image is done once. Style images are
decoded once and their Gram targets computed once per size (StyleTransfer caches them); a failing image is
reported and the rest still run.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from nst.engine.errors import NstError
from nst.engine.images import (
    as_image,
    check_format,
    check_output,
    file_sha256,
    image_suffix,
    list_images,
    save_result,
    write_bytes,
)
from nst.engine.inputs import INITS
from nst.engine.memory import check_decoding, style_side
from nst.engine.presets import Options

from .claims import claim, owner_of

RECORDS = ".nst-batch"  # the folder, inside the output folder, of records and claims
NOT_SETTINGS = ("preset", "path", "report")  # names and choices that do not change the image
IMAGE_OPTIONS = ("init", "style_masks")  # options that may name image files: recorded by their bytes


@dataclass
class BatchReport:
    """What a batch did: written, skipped (already there), left to other processes, and failed images."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    busy: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count one image's outcome."""
        if outcome.status == "failed":
            self.failed.append((outcome.content, outcome.error or "failed"))
        else:
            {"written": self.written, "skipped": self.skipped, "busy": self.busy}[outcome.status].append(outcome.target)

    def summary(self) -> str:
        busy = f", {len(self.busy)} being made by another process" if self.busy else ""
        return (
            f"{len(self.written)} written, {len(self.skipped)} skipped (already there){busy}, {len(self.failed)} failed"
        )


def result_name(content: Path, suffix: str) -> str:
    """The result's file name: the input's whole name plus the suffix, unique per input."""
    return f"{content.name}{suffix}"


def _digest(source) -> str:
    """sha256 of a file's bytes or an array's pixels."""
    if isinstance(source, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()
    return file_sha256(source)


def _image_value(value):
    """An image option (init, style masks) as JSON: images (paths, arrays) by their bytes' digest."""
    if isinstance(value, (tuple, list)):
        return [_image_value(v) for v in value]
    if isinstance(value, str) and value in INITS:
        return value
    if isinstance(value, np.ndarray) or (isinstance(value, (str, os.PathLike)) and os.path.isfile(value)):
        return {"sha256": _digest(value)}
    return value


def settings(opts: Options, styles: list, suffix: str, bit_depth: int, quality: int) -> dict:
    """What every result of a batch is made with: the style images' bytes, the options, the output format."""
    options = {
        f.name: _image_value(getattr(opts, f.name)) if f.name in IMAGE_OPTIONS else getattr(opts, f.name)
        for f in fields(opts)
        if f.name not in NOT_SETTINGS
    }
    return {
        "styles": [_digest(s) for s in styles],
        "options": options,
        "output": {"suffix": suffix.lower(), "bit_depth": bit_depth, "quality": quality},
    }


def _differences(old: dict, new: dict) -> list[str]:
    """What differs between two settings records, in the CLI's words."""
    named = {"styles": "style images", "output": "output format"}
    found = [named[k] for k in named if old.get(k) != new.get(k)]
    old_options = old.get("options", {})
    found += [f"--{k.replace('_', '-')}" for k, v in new["options"].items() if old_options.get(k) != v]
    return found


class Folder:
    """The output folder of a batch: results, their records and the claims on them."""

    def __init__(self, out: Path, made_with: dict) -> None:
        self.out, self.made_with = out, json.loads(json.dumps(made_with))  # as a record reads back
        self.fingerprint = hashlib.sha256(json.dumps(made_with, sort_keys=True).encode()).hexdigest()
        self.records = out / RECORDS

    def record_path(self, target: Path) -> Path:
        return self.records / f"{target.name}.json"

    def claim_path(self, target: Path) -> Path:
        return self.records / f"{target.name}.claim"

    def mismatch(self, target: Path, content: Path) -> str | None:
        """Why an existing result does not belong to these settings and this input; None when it does."""
        try:
            record = json.loads(self.record_path(target).read_text())
        except (OSError, ValueError):
            return "no record of how it was made"
        if record.get("fingerprint") != self.fingerprint:
            return "other " + ", ".join(_differences(record.get("settings", {}), self.made_with) or ["settings"])
        if record.get("source_sha256") != _digest(content):
            return f"another {content.name}"
        return None

    def conflicts(self, pairs: list[tuple[Path, Path]]) -> list[tuple[Path, str]]:
        """Existing results made otherwise (checking the claim first: a result being made is no conflict)."""
        found = []
        for content, target in pairs:
            if owner_of(self.claim_path(target)) is None and target.exists():
                reason = self.mismatch(target, content)
                if reason:
                    found.append((target, reason))
        return found

    def save(self, target: Path, content: Path, image: np.ndarray, bit_depth: int, quality: int) -> None:
        """The result, then its record, each written atomically."""
        save_result(target, image, bit_depth, quality)
        record = {
            "fingerprint": self.fingerprint,
            "source": content.name,
            "source_sha256": _digest(content),
            "settings": self.made_with,
        }
        write_bytes(self.record_path(target), (json.dumps(record, indent=1) + "\n").encode())


def _prepare_folder(out: Path, contents: list[Path], first: str, bit_depth: int, quality: int) -> None:
    """Refuse an output folder that is a file, the input folder, or not writable; create it (with its
    records folder) once the output format has passed its checks."""
    if out.exists() and not out.is_dir():
        raise NstError(f"{out}: is a file; give -o a folder for the results")
    if out.is_dir() and out.resolve() == contents[0].parent.resolve():
        raise NstError(f"{out}: is the folder of the content images; give -o another folder (a subfolder works)")
    made = [p for p in (out, *out.parents) if not p.exists()]
    try:
        (out / RECORDS).mkdir(parents=True, exist_ok=True)
        check_output(out / first, bit_depth, quality)
    except OSError as exc:
        raise NstError(f"{out}: cannot create the folder ({exc.strerror or exc}); choose another -o") from None
    except NstError:
        for folder in [out / RECORDS, *made]:  # leave nothing behind for a refused run
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def plan_batch(
    st,
    content_dir: str | Path,
    styles: list,
    out_dir: str | Path,
    suffix: str = ".png",
    preset: str | None = None,
    bit_depth: int = 8,
    quality: int = 95,
    overwrite: bool = False,
    **overrides,
) -> BatchJob:
    """Check a batch and prepare its output folder before any image is made: format, options, styles,
    folder, and results made otherwise (refused unless `overwrite`)."""
    suffix = image_suffix(suffix)
    contents = list_images(content_dir)
    check_format(suffix, bit_depth, quality)
    opts = st.options(preset, **overrides)
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    check_decoding(style_list, "style image", style_side(opts), st.path(opts))
    style_imgs = [as_image(s, f"style image {i + 1}", style_side(opts)) for i, s in enumerate(style_list)]
    out = Path(out_dir)
    folder = Folder(out, settings(opts, style_list, suffix, bit_depth, quality))
    targets = [(content, out / result_name(content, suffix)) for content in contents]
    _prepare_folder(out, contents, targets[0][1].name, bit_depth, quality)
    conflicts = [] if overwrite else folder.conflicts(targets)
    if conflicts:
        examples = "; ".join(f"{target.name}: {reason}" for target, reason in conflicts[:3])
        raise NstError(
            f"{out}: {len(conflicts)} result(s) there were made otherwise ({examples}"
            f"{'; ...' if len(conflicts) > 3 else ''}); use another -o, or --overwrite to redo them"
        )
    inputs = {Path(s).resolve() for s in style_list if isinstance(s, (str, os.PathLike))}
    return BatchJob(folder, opts, style_imgs, bit_depth, quality, overwrite, inputs, targets)


def batch_transfer(
    st,
    content_dir: str | Path,
    styles: list,
    out_dir: str | Path,
    suffix: str = ".png",
    preset: str | None = None,
    bit_depth: int = 8,
    quality: int = 95,
    overwrite: bool = False,
    on_start: Callable[[Path, Path], object] | None = None,
    on_done: Callable[[Path, str | None], object] | None = None,
    callback=None,
    **overrides,
) -> BatchReport:
    """Stylise every image of `content_dir` into `out_dir/<name><suffix>` (a.jpg -> a.jpg.png); returns a
    BatchReport. `overwrite`: redo results that were made with other settings or inputs."""
    job = plan_batch(st, content_dir, styles, out_dir, suffix, preset, bit_depth, quality, overwrite, **overrides)
    report = BatchReport()
    for content, target in job.targets:
        outcome = job.one(st, content, target, on_start, callback)
        report.add(outcome)
        if on_done and outcome.status in ("written", "failed"):
            on_done(content, outcome.error)
    return report


@dataclass(frozen=True)
class Outcome:
    """What became of one image: written, skipped (made already), busy (another process has it) or failed."""

    status: str
    content: Path
    target: Path
    error: str | None = None


@dataclass
class BatchJob:
    """A checked batch: its folder, resolved options and decoded styles. `one` makes one result with any
    StyleTransfer, so other processes (Ray actors) can share the work; it pickles."""

    folder: Folder
    opts: Options
    style_imgs: list
    bit_depth: int
    quality: int
    overwrite: bool
    inputs: set
    targets: list

    def one(self, st, content: Path, target: Path, on_start=None, callback=None) -> Outcome:
        """Make one result under its claim."""
        if target.resolve() in self.inputs:
            error = f"{content.name}: its result {target} would replace a style image; move that style image"
            return Outcome("failed", content, target, error)
        held = claim(self.folder.claim_path(target))
        if held is None:
            return Outcome("busy", content, target)
        with held:
            reason = self.folder.mismatch(target, content) if target.exists() else "absent"
            if reason is None:
                return Outcome("skipped", content, target)
            if reason != "absent" and not self.overwrite:
                error = f"{content.name}: {target} was made meanwhile with {reason}; use --overwrite to redo it"
                return Outcome("failed", content, target, error)
            if on_start:
                on_start(content, target)
            try:
                result = st.stylize(str(content), self.style_imgs, callback=callback, options=self.opts)
                self.folder.save(target, content, result, self.bit_depth, self.quality)
            except NstError as exc:
                error = str(exc) if content.name in str(exc) else f"{content.name}: {exc}"
                return Outcome("failed", content, target, error)
            except Exception as exc:  # MemoryError and the like: this image fails, the batch goes on
                return Outcome("failed", content, target, f"{content.name}: {type(exc).__name__}: {exc}")
        return Outcome("written", content, target)
