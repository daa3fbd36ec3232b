"""Render a README gallery: a grid with the content images down the side, the styles across the top,
and each transfer in its cell.

    python -m scripts.gallery --contents examples/woman-with-hat-matisse.jpg \\
        --styles examples/starry_night.jpg examples/the_scream.jpg examples/shipwreck.jpg \\
        --size 256 -o docs/gallery.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _cell(image: np.ndarray, side: int) -> np.ndarray:
    """Fit an HxWx3 image into a white side x side square."""
    from nst.engine.images import fit_size, resize

    h, w = fit_size(*image.shape[:2], side)
    cell = np.full((side, side, 3), 255.0, np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    cell[top : top + h, left : left + w] = resize(image.astype(np.float32), h, w)
    return cell


def render(contents: list[str], styles: list[str], size: int, cell: int, preset: str, **options) -> np.ndarray:
    """The grid as an HxWx3 uint8 RGB array (top-left corner left blank)."""
    from nst.engine import StyleTransfer
    from nst.engine.images import read_image

    st = StyleTransfer()
    rows = [[np.full((cell, cell, 3), 255.0, np.float32)] + [_cell(read_image(s), cell) for s in styles]]
    for content in contents:
        row = [_cell(read_image(content), cell)]
        for style in styles:
            print(f"{Path(content).name} x {Path(style).name}", flush=True)
            row.append(_cell(st.stylize(content, [style], preset=preset, size=size, **options), cell))
        rows.append(row)
    return np.clip(np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", nargs="+", required=True)
    parser.add_argument("--styles", nargs="+", required=True)
    parser.add_argument("--size", type=int, default=256, help="transfer size (longest side)")
    parser.add_argument("--cell", type=int, default=256, help="cell size in the grid")
    parser.add_argument("--preset", default="nst")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "gallery.jpg")
    args = parser.parse_args()
    from nst.engine.images import write_image

    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_image(args.output, render(args.contents, args.styles, args.size, args.cell, args.preset), quality=88)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
