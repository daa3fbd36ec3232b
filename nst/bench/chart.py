"""The PNG chart of an `nst bench` report: achieved GFLOP/s per size, one bar per provider and path,
with the machine's SGEMM rate drawn as the floor line to compare against."""

from __future__ import annotations

import numpy as np

COLOURS = [(40, 110, 220), (220, 80, 40), (60, 160, 60), (150, 60, 170), (200, 150, 30), (40, 40, 40)]


def bench_chart(report: dict, width: int = 900, height: int = 480) -> np.ndarray:
    """An RGB uint8 bar chart of the report's rows (rows that failed are left out)."""
    import cv2

    rows = [r for r in report["rows"] if "gflop_per_s" in r]
    series = sorted({(r["provider"], r["path"]) for r in rows})
    sizes = sorted({r["size"] for r in rows})
    floors = {p: v for p, v in (report.get("machine", {}).get("sgemm_gflop_per_s") or {}).items() if v}
    top_value = max([r["gflop_per_s"] for r in rows] + list(floors.values()) + [1.0]) * 1.15
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 40, 50
    plot_h = height - top - bottom
    to_y = lambda v: int(top + plot_h * (1 - v / top_value))
    cv2.putText(
        img,
        "achieved GFLOP/s per iteration (forward + backward + optimizer step)",
        (left, 24),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (40, 40, 40),
        1,
        cv2.LINE_AA,
    )
    cv2.rectangle(img, (left, top), (width - right, height - bottom), (160, 160, 160), 1)
    for k in range(5):
        value = top_value * k / 5
        cv2.putText(img, f"{value:.0f}", (10, to_y(value) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (80, 80, 80), 1)
    group_w = (width - left - right) / max(len(sizes), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    for g, size in enumerate(sizes):
        x0 = left + g * group_w + group_w * 0.1
        cv2.putText(
            img,
            f"{size} px",
            (int(x0 + group_w * 0.3), height - bottom + 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (40, 40, 40),
            1,
            cv2.LINE_AA,
        )
        for s, key in enumerate(series):
            value = next(
                (r["gflop_per_s"] for r in rows if (r["provider"], r["path"]) == key and r["size"] == size), None
            )
            if value is not None:
                x = int(x0 + s * bar_w)
                cv2.rectangle(img, (x, to_y(value)), (int(x + bar_w) - 3, height - bottom), COLOURS[s % 6], -1)
    for s, (provider, path) in enumerate(series):
        cv2.putText(
            img,
            f"{provider} {path}",
            (width - right - 140, top + 18 + 18 * s),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            COLOURS[s % 6],
            1,
            cv2.LINE_AA,
        )
    for provider, floor in floors.items():
        cv2.line(img, (left, to_y(floor)), (width - right, to_y(floor)), (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(
            img,
            f"{provider} SGEMM {floor:.0f}",
            (left + 4, to_y(floor) - 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return img
