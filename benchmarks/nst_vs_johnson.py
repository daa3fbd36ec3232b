"""The `nst` preset against the classic `johnson` one: wall time, and the johnson loss of each final image.

For each content/style pair both presets run at --size; each final image is then scored by the same
evaluator, the johnson objective (content + style, tv 0) at --size, and the pair's results are written
side by side to benchmarks/results/nst_vs_johnson_<pair>.jpg (pictures made from the shared photos are for
looking at, not for committing: shared/images/SOURCES.md keeps the photos out of the repository).  Targets (issue 3): nst's loss at most 5%
above johnson's, in at most a quarter of its wall time.

    python benchmarks/nst_vs_johnson.py --size 512 --threads 2          # about 2 hours on 2 cores
    python benchmarks/nst_vs_johnson.py --size 256 --pairs 1            # a quick look
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"
PAIRS = [("tubingen", "starry_night"), ("golden_gate", "the_scream"), ("hoovertowernight", "shipwreck")]


def score(st, content: str, style: str, image: np.ndarray, size: int) -> float:
    """The johnson loss (content + style, no tv) of an HxWx3 image at its own size."""
    from kernels import hwc_to_nchw

    objective = st.objective(content, [style], preset="johnson", size=size, tv_weight=0.0, path="split")
    return objective.loss_and_grad(hwc_to_nchw(image.astype(np.float32), 1.0))[0]


def main() -> None:
    import cv2

    from engine import StyleTransfer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--johnson-iterations", type=int, default=1000)
    args = parser.parse_args()
    st = StyleTransfer(threads=args.threads)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for content_name, style_name in PAIRS[: args.pairs]:
        content, style = str(IMAGES / f"{content_name}.jpg"), str(IMAGES / f"{style_name}.jpg")
        row = {"content": content_name, "style": style_name}
        images = []
        for preset, extra in (("johnson", {"iterations": args.johnson_iterations}), ("nst", {})):
            start = time.perf_counter()
            image = st.transfer(content, [style], preset=preset, size=args.size, **extra)
            row[f"{preset}_seconds"] = time.perf_counter() - start
            row[f"{preset}_johnson_loss"] = score(st, content, style, image, args.size)
            images.append(image)
            print(content_name, style_name, preset, f"{row[f'{preset}_seconds']:.0f} s",
                  f"loss {row[f'{preset}_johnson_loss']:.4g}", flush=True)
        row["time_ratio"] = row["nst_seconds"] / row["johnson_seconds"]
        row["loss_ratio"] = row["nst_johnson_loss"] / row["johnson_johnson_loss"]
        rows.append(row)
        side = np.concatenate(images, axis=1)[:, :, ::-1]
        cv2.imwrite(str(out_dir / f"nst_vs_johnson_{content_name}.jpg"), side, [cv2.IMWRITE_JPEG_QUALITY, 88])
    result = {"size": args.size, "threads": args.threads, "johnson_iterations": args.johnson_iterations,
              "pairs": rows, "date": time.strftime("%Y-%m-%d")}
    name = "nst_vs_johnson.json" if args.size == 512 else f"nst_vs_johnson_{args.size}.json"
    (out_dir / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
