"""Plot the loss curves of a run from its `--metrics` file (JSON lines) as a PNG, with opencv only.

nst transfer content.jpg style.jpg -o out.png --metrics run.jsonl
python -m scripts.plot_metrics run.jsonl -o docs/loss.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SERIES = (("loss", (20, 20, 20)), ("content", (40, 110, 220)), ("style", (220, 80, 40)), ("tv", (60, 160, 60)))


def read_metrics(path: Path) -> list[dict]:
    """The JSON objects of a metrics file, numbered across scales in the order they were written."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot(rows: list[dict], width: int = 900, height: int = 500) -> np.ndarray:
    """An RGB uint8 chart: log10 of each loss term against the evaluation number."""
    import cv2

    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 20, 40
    values = {name: np.array([max(r.get(name, 0.0), 1e-12) for r in rows]) for name, _ in SERIES}
    logs = np.log10(np.concatenate([v[v > 1e-12] for v in values.values() if np.any(v > 1e-12)]))
    hi = np.ceil(logs.max())
    lo = max(np.floor(logs.min()), hi - 6)  # six decades: a content loss starting at ~0 would flatten the rest
    hi = hi if hi > lo else lo + 1
    n = max(len(rows) - 1, 1)
    to_xy = lambda i, v: (
        int(left + i / n * (width - left - right)),
        int(top + (hi - np.log10(v)) / (hi - lo) * (height - top - bottom)),
    )
    cv2.rectangle(img, (left, top), (width - right, height - bottom), (160, 160, 160), 1)
    for decade in range(int(lo), int(hi) + 1):
        y = to_xy(0, 10.0**decade)[1]
        cv2.line(img, (left, y), (width - right, y), (225, 225, 225), 1)
        cv2.putText(img, f"1e{decade}", (8, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (80, 80, 80), 1)
    cv2.putText(
        img,
        f"evaluation (0..{len(rows) - 1})",
        (width // 2 - 60, height - 12),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (80, 80, 80),
        1,
    )
    for k, (name, colour) in enumerate(SERIES):
        v = values[name]
        if not np.any(v > 1e-12):
            continue
        points = np.array([to_xy(i, max(x, 10.0**lo)) for i, x in enumerate(v) if x > 1e-12], np.int32)
        cv2.polylines(img, [points], False, colour, 2, cv2.LINE_AA)
        cv2.putText(img, name, (width - right - 90, top + 18 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("loss.png"))
    args = parser.parse_args()
    from nst.engine.images import write_image

    write_image(args.output, plot(read_metrics(args.metrics)))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
