"""Where the benchmarks find their images: the repository's examples/ (public-domain paintings), or the
folder given with --images."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def add_images_option(parser: argparse.ArgumentParser) -> None:
    """The --images DIR option every benchmark that reads images takes."""
    parser.add_argument(
        "--images", type=Path, default=EXAMPLES, help="folder holding the named images (default: examples/)"
    )


def image(folder: Path, name: str) -> Path:
    """`folder/name`, or exit with a one-line message when it is missing."""
    path = Path(folder) / name
    if not path.is_file():
        raise SystemExit(f"error: {path}: no such image; give --images a folder that holds {name}")
    return path
