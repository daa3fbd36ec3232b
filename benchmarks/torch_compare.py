"""nst against a plain PyTorch implementation of the same objective (johnson preset, L-BFGS).

Both use the same VGG-19 weights (read from nst/models/vgg19_features.onnx), the same images (from examples/,
or --images DIR: CONTENT_NAME x STYLE_NAME; the committed results came from a photo outside the repository,
tubingen x starry_night, until re-measured), sizes, layers,
losses and L-BFGS history; both run a float32 L-BFGS of their own (nst's `lbfgs`, torch.optim.LBFGS).
Time: rounds alternate nst and PyTorch in one process, each round running ROUND objective evaluations;
the per-evaluation median over all rounds (first evaluation of each round excluded) is reported with its
spread.  Memory: each side runs once more in a fresh subprocess and its
peak resident set size is read from the kernel (VmHWM; ru_maxrss would inherit the parent's).

    pip install torch==2.13.0      # benchmark-only dependency
    python -m benchmarks.torch_compare --size 512 --threads 2 --rounds 3 --round 8
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.images import EXAMPLES, add_images_option, image
from nst.engine.choices import DEVICES

ROOT = Path(__file__).resolve().parents[1]
CONTENT_NAME, STYLE_NAME = "woman-with-hat-matisse.jpg", "starry_night.jpg"
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT_LAYER = "relu4_2"
HISTORY = 10  # the L-BFGS history both sides keep (the johnson preset's)


def nst_run(
    size: int, threads: int, evaluations: int, path: str = "auto", device: str = "cpu", images: Path = EXAMPLES
) -> list[float]:
    """Seconds per objective evaluation (forward, backward and optimizer step) for nst."""
    from nst.engine import StyleTransfer

    st = nst_run.cache.get((threads, device)) or StyleTransfer(device=device, threads=threads)
    nst_run.cache[(threads, device)] = st
    stamps = []
    prepared = st.prepare(
        str(image(images, CONTENT_NAME)),
        [str(image(images, STYLE_NAME))],
        preset="johnson",
        size=size,
        iterations=evaluations,
        path=path,
        optimizer="lbfgs",
        history=HISTORY,
    )
    st.run(prepared, callback=lambda p: stamps.append(time.perf_counter()))
    return list(np.diff(stamps))


nst_run.cache = {}


class TorchVGG:
    """VGG-19 up to relu5_1 in eager PyTorch, weights taken from the same ONNX file."""

    def __init__(self, threads: int, device: str = "cpu") -> None:
        import torch

        from nst.engine.graphs.vgg import load_spec

        torch.set_num_threads(threads)
        self.torch = torch
        self.spec = load_spec()
        put = lambda a: torch.from_numpy(a.astype(np.float32)).to(device) if a is not None else None
        self.layers = [(lay.kind, lay.name, put(lay.weight), put(lay.bias)) for lay in self.spec.layers]
        self.mean = put(self.spec.mean)

    def features(self, x, wanted: set[str]):
        F = self.torch.nn.functional
        out = {}
        h = x - self.mean
        for kind, name, w, b in self.layers:
            h = F.conv2d(h, w, b, padding=1) if kind == "conv" else F.relu(h) if kind == "relu" else F.max_pool2d(h, 2)
            if name in wanted:
                out[name] = h
            if len(out) == len(wanted):
                break
        return out


def torch_run(size: int, threads: int, evaluations: int, device: str = "cpu", images: Path = EXAMPLES) -> list[float]:
    """Seconds per objective evaluation for the PyTorch implementation (torch.optim.LBFGS)."""
    import torch

    from nst.engine.images import fit_size, read_image, resize
    from nst.kernels import hwc_to_nchw

    vgg = torch_run.cache.get((threads, device)) or TorchVGG(threads, device)
    torch_run.cache[(threads, device)] = vgg
    content = read_image(image(images, CONTENT_NAME))
    content = hwc_to_nchw(resize(content, *fit_size(*content.shape[:2], size)), 1.0)
    style = read_image(image(images, STYLE_NAME))
    style = hwc_to_nchw(resize(style, *fit_size(*style.shape[:2], size)), 1.0)
    wanted = set(STYLE_LAYERS) | {CONTENT_LAYER}

    def gram(a):
        c = a.shape[1]
        f = a.reshape(c, -1)
        return f @ f.t() / a.numel()

    with torch.no_grad():
        target_c = vgg.features(torch.from_numpy(content).to(device), wanted)[CONTENT_LAYER]
        feats = vgg.features(torch.from_numpy(style).to(device), wanted)
        target_s = {n: gram(feats[n]) for n in STYLE_LAYERS}
    x = torch.from_numpy(content.copy()).to(device).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=evaluations,
        max_eval=evaluations,
        history_size=HISTORY,
        tolerance_grad=-1,
        tolerance_change=-1,
    )
    stamps = []

    def closure():
        opt.zero_grad()
        f = vgg.features(x, wanted)
        loss = 5.0 * torch.mean((f[CONTENT_LAYER] - target_c) ** 2)
        for n in STYLE_LAYERS:
            loss = loss + 100.0 * torch.mean((gram(f[n]) - target_s[n]) ** 2)
        dx = x[:, :, :, 1:] - x[:, :, :, :-1]
        dy = x[:, :, 1:, :] - x[:, :, :-1, :]
        loss = loss + 1e-3 * 0.5 * (dx.pow(2).sum() + dy.pow(2).sum())
        loss.backward()
        if device != "cpu":
            torch.cuda.synchronize()  # kernels run asynchronously: time what was computed
        stamps.append(time.perf_counter())
        return loss

    opt.step(closure)
    return list(np.diff(stamps))


torch_run.cache = {}


def peak_rss_mb(which: str, size: int, threads: int, evaluations: int, images: Path, *extra: str) -> float:
    """Peak RSS of a fresh process that runs `evaluations` evaluations on one side."""
    args = ", ".join([str(size), str(threads), str(evaluations)] + [repr(e) for e in extra])
    code = (
        f"import sys; sys.argv=['x']\n"
        f"from pathlib import Path\n"
        f"from benchmarks.torch_compare import {which}_run\n"
        f"{which}_run({args}, images=Path({str(images)!r}))\n"
        "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def measure_memory(args) -> dict[str, float]:
    """Peak RSS of each side, each in a fresh process running 4 evaluations."""
    return {
        "nst_split": peak_rss_mb("nst", args.size, args.threads, 4, args.images, "split", args.device),
        "nst_fused": peak_rss_mb("nst", args.size, args.threads, 4, args.images, "fused", args.device),
        "torch_eager": peak_rss_mb("torch", args.size, args.threads, 4, args.images, args.device),
    }


def summarize(times: list[float]) -> dict[str, float]:
    t = np.asarray(times)
    return {
        "median_s": float(np.median(t)),
        "p10_s": float(np.percentile(t, 10)),
        "p90_s": float(np.percentile(t, 90)),
        "count": int(t.size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round", type=int, default=8, help="objective evaluations per round and side")
    parser.add_argument("--device", default="cpu", choices=list(DEVICES))
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="measure only the peak memory of each side and update that part of the results file",
    )
    parser.add_argument("--out", type=Path, default=None)
    add_images_option(parser)
    args = parser.parse_args()
    import torch

    if args.out is None:
        name = "torch_compare.json" if args.device == "cpu" else f"torch_compare_{args.device}_{args.size}.json"
        args.out = ROOT / "benchmarks" / "results" / name
    if args.memory_only:
        result = json.loads(args.out.read_text()) if args.out.exists() else {}
        result["peak_rss_mb"] = measure_memory(args)
        result["peak_rss_date"] = time.strftime("%Y-%m-%d")
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["peak_rss_mb"], indent=2))
        return
    sides = {
        "nst_split": lambda n: nst_run(args.size, args.threads, n, "split", args.device, args.images),
        "nst_fused": lambda n: nst_run(args.size, args.threads, n, "fused", args.device, args.images),
        "torch_eager": lambda n: torch_run(args.size, args.threads, n, args.device, args.images),
    }
    times = {side: [] for side in sides}
    ratios = {"nst_split": [], "nst_fused": []}
    for r in range(args.rounds):
        medians = {}
        for side, run in sides.items():
            t = run(args.round + 1)[1:]
            times[side] += t
            medians[side] = float(np.median(t))
        for side in ratios:
            ratios[side].append(medians[side] / medians["torch_eager"])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.3f} s/it" for k, v in medians.items()), flush=True)
    memory = measure_memory(args)
    result = {
        "job": f"johnson objective, L-BFGS (history {HISTORY}), {args.size} px, "
        f"{Path(CONTENT_NAME).stem} x {Path(STYLE_NAME).stem}",
        "device": args.device,
        "torch_gpu_peak_mb": (torch.cuda.max_memory_reserved() / 2**20 if args.device == "cuda" else None),
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "seconds_per_iteration": {side: summarize(t) for side, t in times.items()},
        "ratio_to_torch_per_round": ratios,
        "ratio_to_torch_median": {side: float(np.median(v)) for side, v in ratios.items()},
        "peak_rss_mb": memory,
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
