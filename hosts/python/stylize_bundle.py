#!/usr/bin/env python3
"""Style transfer from an nst bundle (`nst export DIR`) with onnxruntime, numpy and Pillow: nothing of nst.

    python stylize_bundle.py CONTENT STYLE [STYLE...] -o OUT --bundle DIR [--size N] [--iterations N]

Prints one JSON line per iteration: {"iteration", "loss", "seconds", ...}.  The contract is docs/bundle.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of a triangle filter widened when shrinking (the JS hosts compute the same)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale - 0.5
    taps = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] - centres[:, None]) / support)
    return taps / taps.sum(axis=1, keepdims=True)


def resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """(1, 3, H, W) -> (1, 3, h, w), float32."""
    rows, cols = resize_matrix(x.shape[2], h), resize_matrix(x.shape[3], w)
    return np.einsum("ij,cjk,lk->cil", rows, x[0].astype(np.float64), cols)[None].astype(np.float32)


def fit(x: np.ndarray, longest: int) -> np.ndarray:
    """Resized so its longest side is `longest`, aspect ratio kept."""
    h, w = x.shape[2:]
    scale = longest / max(h, w)
    return resize(x, max(1, half_up(h * scale)), max(1, half_up(w * scale)))


def half_up(value: float) -> int:
    """Rounded as JavaScript's hosts round (Python's round takes .5 to even)."""
    return int(np.floor(value + 0.5))


def fail(message: str) -> None:
    """One line on stderr and exit status 2, as the Node host does."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def load(path: str) -> np.ndarray:
    try:
        rgb = np.asarray(Image.open(path).convert("RGB"), np.float32)
    except (OSError, ValueError) as exc:
        fail(f"{path}: cannot be read as an image ({exc})")
    return rgb.transpose(2, 0, 1)[None].copy()


def save(path: str, x: np.ndarray) -> None:
    pixels = np.clip(np.floor(x[0].transpose(1, 2, 0) + 0.5), 0, 255).astype(np.uint8)
    tmp = Path(path).with_name(".part-" + Path(path).name)
    Image.fromarray(pixels).save(tmp, format=Image.registered_extensions()[Path(path).suffix.lower()])
    tmp.replace(path)  # a finished file or none


class Bundle:
    """The two sessions and the manifest of a bundle folder (file hashes checked)."""

    def __init__(self, folder: str, threads: int = 0) -> None:
        root = Path(folder)
        try:
            self.manifest = json.loads((root / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            fail(f"{root} is not a readable bundle ({exc}); run nst export {root}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the Node host
        self.sessions = {}
        for name, digest in self.manifest["files"].items():
            data = (root / name).read_bytes()
            if hashlib.sha256(data).hexdigest() != digest:
                fail(f"{root / name} does not match manifest.json; export the bundle again")
            self.sessions[name] = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def features(self, image: np.ndarray) -> dict[str, np.ndarray]:
        session = self.sessions["features.onnx"]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, {"image": image})))

    def targets(self, content: np.ndarray, styles: list[np.ndarray], blend: list[float]) -> dict[str, np.ndarray]:
        """content.* of the content image; gram.* of the styles averaged with the blend weights."""
        feeds = {k: v for k, v in self.features(content).items() if k.startswith("content.")}
        for style, weight in zip(styles, blend):
            for k, v in self.features(style).items():
                if k.startswith("gram."):
                    feeds[k] = feeds.get(k, 0) + np.float32(weight) * v
        return feeds


def stylize(bundle, content, styles, size, iterations, scales, settings, on_step=print) -> np.ndarray:
    """Adam from the content image, coarse to fine; returns (1, 3, H, W) float32 in 0..255."""
    blend = [1.0 / len(styles)] * len(styles)
    x, step, start = None, 0, time.perf_counter()
    for fraction, count in zip(scales, iterations):
        side = max(32, half_up(size * fraction))
        c = fit(content, side)
        targets = bundle.targets(c, [fit(s, side) for s in styles], blend)
        if x is None:
            x = c
        else:  # the coarser result enlarged, plus the content's detail it could not hold
            low = resize(resize(c, *x.shape[2:]), *c.shape[2:])
            x = np.clip(resize(x, *c.shape[2:]) + c - low, 0, 255).astype(np.float32)
        m, v = np.zeros_like(x), np.zeros_like(x)
        for t in range(1, count + 1):
            feeds = {"image": x, "m": m, "v": v, "t": np.array(t, np.float32), **targets}
            feeds |= {
                k: np.array(settings[k], np.float32) for k in ("lr", "content_weight", "style_weight", "tv_weight")
            }
            x_next, m, v, loss, *terms = bundle.sessions["step.onnx"].run(None, feeds)
            seconds = {"seconds": round(time.perf_counter() - start, 4), "cpu_seconds": time.process_time()}
            terms = dict(zip(("content_loss", "style_loss", "tv_loss"), map(float, terms)))
            on_step({"iteration": step, "loss": float(loss), **seconds, "size": side, **terms})
            x, step = x_next, step + 1
    return x


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("content")
    p.add_argument("styles", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--size", type=int)
    p.add_argument("--iterations", type=int, help="steps at every scale (default: the bundle's schedule)")
    p.add_argument("--scales", type=int, help="run only the last N scales of the schedule (1: the final size)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if Path(args.output).suffix.lower() not in Image.registered_extensions():
        fail(f"{args.output}: give an image file name such as out.png or out.jpg")
    bundle = Bundle(args.bundle, args.threads)
    defaults = bundle.manifest["defaults"]
    scales, iterations = defaults["scales"], defaults["iterations"]
    if args.scales:
        scales, iterations = scales[-args.scales :], iterations[-args.scales :]
    if args.iterations:
        iterations = [args.iterations] * len(scales)
    content, styles = load(args.content), [load(s) for s in args.styles]
    size = args.size or defaults["size"]
    result = stylize(bundle, content, styles, size, iterations, scales, defaults, lambda r: print(json.dumps(r)))
    save(args.output, result)


if __name__ == "__main__":
    main()
