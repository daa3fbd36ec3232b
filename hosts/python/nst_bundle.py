"""Style transfer with an nst bundle (`nst export DIR`, contract in docs/bundle.md) on onnxruntime, numpy and
Pillow, nothing of nst: the Python twin of hosts/js/nst-bundle.mjs. stylize_bundle.py is its command line.

    bundle = Bundle("bundle/")
    size, scales, iterations = plan(bundle.manifest, 512, None, None)
    content, style = (load(p, bundle.manifest["limits"]["max_pixels"]) for p in ("photo.jpg", "painting.jpg"))
    image = stylize(bundle, content, [style], size, iterations, scales, bundle.manifest["defaults"])

Every refusal is a BundleError whose message says what was wrong and what to do.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Recent onnxruntime builds otherwise keep a device id under ~/.cache and send usage events; 0 allows them.
if not os.environ.get("ORT_DISABLE_TELEMETRY"):  # read when onnxruntime is imported, in Bundle
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
READABLE = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "TIFF")  # MPO: a camera's JPEG with a preview inside
MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK")  # and 16-bit I;16*
FLOAT32_MAX = 3.4028234663852886e38  # weights beyond it become infinite in the graphs
KINDS = "give an 8- or 16-bit PNG, JPEG, WebP, GIF or TIFF image"
MAX_ITERATIONS = 10**6  # per scale: a bound that no schedule reaches, against typing mistakes


class BundleError(ValueError):
    """A request the bundle cannot serve, or a bundle or image that cannot be used: one line to show."""


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of a triangle filter widened when shrinking (the JS hosts compute the same)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale - 0.5
    taps = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] - centres[:, None]) / support)
    return taps / taps.sum(axis=1, keepdims=True)


def resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """(1, 3, H, W) -> (1, 3, h, w), float32; columns first, a band of rows at a time, to bound memory."""
    rows, cols = resize_matrix(x.shape[2], h), resize_matrix(x.shape[3], w)
    band = 1024
    narrow = np.empty((3, x.shape[2], w))
    for top in range(0, x.shape[2], band):
        narrow[:, top : top + band] = x[0, :, top : top + band].astype(np.float64) @ cols.T
    return (rows @ narrow)[None].astype(np.float32)


def fit(x: np.ndarray, longest: int) -> np.ndarray:
    """Resized so its longest side is `longest`, aspect ratio kept."""
    return resize(x, *fit_size(*x.shape[2:], longest))


def half_up(value: float) -> int:
    """Rounded as JavaScript's hosts round (Python's round takes .5 to even)."""
    return int(np.floor(value + 0.5))


def load(path: str, max_pixels: int) -> np.ndarray:
    """(1, 3, H, W) float32 RGB as the JS hosts read files: EXIF orientation applied, stored values (no ICC
    transform), transparency composited on white, CMYK by plain inversion, 16-bit kept to its high byte."""
    with warnings.catch_warnings():  # Pillow warns on stderr about damaged tags and large images
        warnings.simplefilter("ignore")
        try:
            return planes(upright(opened(path, max_pixels)))
        except (BundleError, MemoryError):
            raise
        except Exception as exc:  # Pillow raises many kinds for damaged files
            raise BundleError(f"{path}: cannot be read as an image ({first_line(exc)}); {KINDS}") from None


def opened(path: str, max_pixels: int) -> Image.Image:
    """The file opened (its header read), within the bundle's pixel limit and of a kind both hosts read."""
    if os.path.exists(path) and not os.path.isfile(path):  # a pipe would block the read, a device never end
        raise BundleError(f"{path}: not a regular file (a folder, pipe or device); {KINDS}")
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the bundle's limit instead, below
    try:
        image = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    w, h = image.size
    if w * h > max_pixels:
        raise BundleError(f"{path}: the image is {w}x{h}, over {max_pixels // 10**6} megapixels; shrink it first")
    if image.format not in READABLE or not (image.mode in MODES or image.mode.startswith("I;16")):
        raise BundleError(f"{path}: cannot be read as an image ({image.format} {image.mode}); {KINDS}")
    return image


def upright(image: Image.Image) -> Image.Image:
    """EXIF orientation applied (a damaged EXIF block ignored, as sharp does); 16-bit to its high byte."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:
        pass
    if image.mode.startswith("I;16"):  # Pillow's RGB conversion would saturate 16-bit grey to white
        image = Image.fromarray((np.asarray(image, np.int64) >> 8).clip(0, 255).astype(np.uint8))
    return image


def planes(image: Image.Image) -> np.ndarray:
    """(1, 3, H, W) float32, computed a band of rows at a time in the same doubles, in the same order, as the JS
    hosts' fromPixels and fromCMYK (so both give the same floats), without a float64 copy of a large image."""
    cmyk = image.mode == "CMYK"
    pixels = np.asarray(image if cmyk else image.convert("RGBA"))
    out = np.empty((1, 3, *pixels.shape[:2]), np.float32)
    for top in range(0, pixels.shape[0], 256):
        band = pixels[top : top + 256].astype(np.float64)
        if cmyk:
            rgb = (255 - band[..., :3]) * (255 - band[..., 3:]) / 255
        else:
            a = band[..., 3:]
            rgb = (band[..., :3] * a + 255 * (255 - a)) / 255
        out[0, :, top : top + 256] = rgb.transpose(2, 0, 1)
    return out


def whole(x: object, lo: float, hi: float) -> bool:
    """A number with no fraction in lo..hi, as JavaScript's Number.isInteger sees JSON (512.0 is 512)."""
    return finite(x) and float(x).is_integer() and lo <= x <= hi


def finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def manifest_problem(m: object) -> str | None:
    """What is wrong with the parts of manifest.json the host relies on, or None (the JS hosts check the same)."""
    if not isinstance(m, dict) or m.get("format") != "nst-bundle" or not whole(m.get("version"), 1, 1):
        return "it is not an nst bundle of version 1"
    if not isinstance(m.get("files"), dict):
        return "files is not a table of hashes"
    layers = [m.get("content_layers"), m.get("style_layers")]
    if not all(isinstance(t, dict) and all(isinstance(k, str) for k in t) for t in layers) or not any(layers):
        return "content_layers and style_layers are not tables of layer names"
    limits = m.get("limits") if isinstance(m.get("limits"), dict) else {}
    lo, hi, most = (limits.get(k) for k in ("min_side", "max_side", "max_pixels"))
    if not (whole(lo, 32, 65536) and whole(hi, lo, 65536) and whole(most, hi * hi, 2**50)):
        return "limits lack min_side, max_side or max_pixels, or they are out of order"
    d = m.get("defaults") if isinstance(m.get("defaults"), dict) else {}
    weights = [d.get(k) for k in ("lr", "content_weight", "style_weight", "tv_weight")]
    if not all(finite(w) and 0 <= w <= FLOAT32_MAX for w in weights) or not weights[0] > 0:
        return "defaults lack lr or a weight, or one is negative"
    scales, counts = d.get("scales"), d.get("iterations")
    if not isinstance(scales, list) or not scales or not all(finite(f) and 0 < f <= 1 for f in scales):
        return "defaults.scales are not fractions of the size in (0, 1]"
    if not isinstance(counts, list) or len(counts) != len(scales):
        return "defaults.iterations do not give one count per scale"
    if not all(whole(n, 1, MAX_ITERATIONS) for n in counts):
        return f"defaults.iterations are not in 1..{MAX_ITERATIONS}"
    if not whole(d.get("size"), lo, hi):
        return f"defaults.size is not in {int(lo)}..{int(hi)}"
    if not isinstance(d.get("detail", True), bool):
        return "defaults.detail is not true or false"
    if not isinstance(d.get("style_at_final", False), bool):
        return "defaults.style_at_final is not true or false"
    return nn_problem(m) if m.get("style_loss") == "nn" else None


def nn_problem(m: dict) -> str | None:
    """What an nn bundle's manifest lacks: alpha in 0..1 and the matching's block size (the JS hosts check the same)."""
    alpha = m["defaults"].get("alpha")
    if not (finite(alpha) and 0 <= alpha <= 1):
        return "defaults.alpha is not a number in 0..1"
    if not whole(m["limits"].get("block_bytes"), 1 << 20, 1 << 40):
        return "limits.block_bytes is not a whole number of bytes from 1 MiB"
    return None


def graph_names(m: dict) -> tuple[str, ...]:
    """The graphs a bundle holds: features and step, and for the nn style loss its style columns and matching."""
    extra = ("style_columns.onnx", "matching.onnx") if m.get("style_loss") == "nn" else ()
    return ("features.onnx", "step.onnx", *extra)


def no_constant(name: str) -> None:
    """NaN and Infinity are not JSON: the JS hosts' parser refuses them, so this one does too."""
    raise ValueError(f"{name} is not JSON")


SCALARS = ("lr", "content_weight", "style_weight", "tv_weight")
STEP_OUTPUTS = ("image_next", "m_next", "v_next", "loss", "content_loss", "style_loss", "tv_loss")
NN_TARGETS = ["nn.style", "nn.centre", "nn.index"]


def interface_problem(m: dict, name: str, inputs: list[str], outputs: list[str]) -> str | None:
    """What a graph's inputs and outputs lack, or hold beyond, what the manifest's layers call for (a graph of
    another version), or None (the JS hosts check the same)."""
    content = [f"content.{k}" for k in m["content_layers"]]
    nn = m.get("style_loss") == "nn"
    targets = content + (NN_TARGETS if nn else [f"gram.{k}" for k in m["style_layers"]])
    want_in, want_out = {
        "features.onnx": (["image"], content + ["nn.columns"] if nn else targets),
        "step.onnx": (["image", "m", "v", "t", *SCALARS, *targets], list(STEP_OUTPUTS)),
        "style_columns.onnx": (["columns"], ["style", "centre"]),
        "matching.onnx": (["rows", "style", "centre"], ["index", "distance"]),
    }[name]
    missing = [f"input {k}" for k in want_in if k not in inputs] + [f"output {k}" for k in want_out if k not in outputs]
    extra = [f"input {k}" for k in inputs if k not in want_in]
    if missing:
        return f"it has no {missing[0]}"
    return f"it has an unknown {extra[0]}" if extra else None


class Bundle:
    """The sessions and the manifest of a bundle folder (file hashes checked)."""

    def __init__(self, folder: str, threads: int = 0) -> None:
        import onnxruntime as ort

        root = Path(folder)
        text = read_file(root, "manifest.json").decode(errors="replace")
        try:
            self.manifest = json.loads(text, parse_constant=no_constant)
            problem = manifest_problem(self.manifest)
        except ValueError:
            problem = "it is not valid JSON"
        except RecursionError:  # nested deeper than Python parses: no manifest is (the Node host says the same)
            problem = "it is not an nst bundle of version 1"
        if problem:
            raise BundleError(
                f"{root / 'manifest.json'} is damaged ({problem}): export the bundle again with nst export"
            )
        files = {name: read_file(root, name) for name in graph_names(self.manifest)}
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the Node host
        options.log_severity_level = 4  # errors reach the caller as exceptions, not as log lines on stderr
        self.sessions = {}
        for name, data in files.items():
            if hashlib.sha256(data).hexdigest() != self.manifest["files"].get(name):
                raise BundleError(f"{root / name} does not match manifest.json; export the bundle again")
            try:
                session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # a graph that onnxruntime refuses: say which, in one line
                raise BundleError(
                    f"{root / name} cannot be loaded ({first_line(exc)}); export the bundle again"
                ) from None
            names = [[x.name for x in session.get_inputs()], [x.name for x in session.get_outputs()]]
            problem = interface_problem(self.manifest, name, *names)
            if problem:
                raise BundleError(f"{root / name} does not fit manifest.json ({problem}); export the bundle again")
            self.sessions[name] = session

    def features(self, image: np.ndarray, only: str | None = None) -> dict[str, np.ndarray]:
        """features.onnx's outputs for `image` (only those starting with `only`, when given)."""
        session = self.sessions["features.onnx"]
        names = [o.name for o in session.get_outputs() if only is None or o.name.startswith(only)]
        return dict(zip(names, session.run(names, {"image": image}))) if names else {}

    def nn_targets(self, content: np.ndarray, styles: list[np.ndarray], start: np.ndarray) -> dict[str, np.ndarray]:
        """content.* of the content image and, for the nn loss, the style columns (every style's positions
        pooled), their centre and each position's match in alpha x content + (1 - alpha) x start, whose
        columns the matching centres by their own mean (as the engine's Matcher)."""
        feeds = self.features(content, "content.")
        rows = np.concatenate([self.features(s, "nn.")["nn.columns"] for s in styles])
        style, centre = self.sessions["style_columns.onnx"].run(["style", "centre"], {"columns": rows})
        alpha = self.manifest["defaults"]["alpha"]
        query = np.float32(alpha) * content + np.float32(1 - alpha) * start  # float32, as the engine blends
        rows = self.features(query, "nn.")["nn.columns"]
        block = max(1, self.manifest["limits"]["block_bytes"] // (4 * max(rows.shape[1], style.shape[0])))
        matching = self.sessions["matching.onnx"]
        mean = rows.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
        feed = {"style": style, "centre": mean}
        index = [matching.run(["index"], {"rows": rows[p : p + block], **feed})[0] for p in range(0, len(rows), block)]
        return feeds | {"nn.style": style, "nn.centre": centre, "nn.index": np.concatenate(index)}

    def targets(self, content: np.ndarray, styles: list[np.ndarray], blend: list[float]) -> dict[str, np.ndarray]:
        """content.* of the content image; gram.* of the styles averaged with the blend weights."""
        feeds = {k: v for k, v in self.features(content).items() if k.startswith("content.")}
        for style, weight in zip(styles, blend):
            for k, v in self.features(style).items():
                if k.startswith("gram."):
                    feeds[k] = feeds.get(k, 0) + np.float32(weight) * v
        return feeds


def read_file(root: Path, name: str) -> bytes:
    """One file of the bundle; a pipe or device is refused unread (it would block), a missing one named."""
    path = root / name
    try:
        if path.exists() and not path.is_file():
            raise OSError(f"{name} is not a regular file")
        return path.read_bytes()
    except (OSError, ValueError) as exc:
        raise BundleError(f"{root} is not a readable bundle ({first_line(exc)}); run nst export {root}") from None


def plan(manifest: dict, size: int | None, last_scales: int | None, iterations: int | None) -> tuple:
    """(size, scales, iterations) asked for, checked against the bundle before any work (as the JS hosts)."""
    lo, hi = manifest["limits"]["min_side"], manifest["limits"]["max_side"]
    defaults = manifest["defaults"]
    scales, counts = defaults["scales"], defaults["iterations"]
    counts = [int(n) for n in counts]
    if size is None:
        size = defaults["size"]
    elif not whole(size, lo, hi):
        raise BundleError(f"size {size}: give a whole number of pixels in {lo}..{hi}")
    if last_scales is not None:
        if not whole(last_scales, 1, len(scales)):
            raise BundleError(f"scales {last_scales}: give 1..{len(scales)}")
        scales, counts = scales[-int(last_scales) :], counts[-int(last_scales) :]
    if iterations is not None:
        if not whole(iterations, 1, MAX_ITERATIONS):
            raise BundleError(f"iterations {iterations}: give 1..{MAX_ITERATIONS}")
        counts = [int(iterations)] * len(scales)
    size = int(size)
    return size, scales, counts


def scale_plan(manifest: dict, images: list, size: int, scales: list, iterations: list) -> list[tuple[int, int]]:
    """(longest side, iterations) of each scale that runs: scales that come out the same size as the next
    one are left out, as nst's own schedule does (the later one's iterations kept)."""
    sides = [scale_side(manifest, images, size, f) for f in scales]
    return [(s, n) for k, (s, n) in enumerate(zip(sides, iterations)) if k + 1 == len(sides) or sides[k + 1] != s]


def scale_side(manifest: dict, images: list[np.ndarray], size: int, fraction: float) -> int:
    """The longest side at one scale: size * fraction, at least twice min_side (nst's own floor, 64 px) and
    raised where a coarse scale would leave an image under min_side px on its short side (the network's
    poolings need them), up to the final size."""
    lo = manifest["limits"]["min_side"]
    side = min(size, max(2 * lo, half_up(size * fraction)))
    while side < size and any(min(fit_size(*x.shape[2:], side)) < lo for x in images):
        side += 1
    return side


def fit_size(h: int, w: int, longest: int) -> tuple[int, int]:
    scale = longest / max(h, w)
    return max(1, half_up(h * scale)), max(1, half_up(w * scale))


def check_sides(manifest: dict, images: dict[str, np.ndarray], size: int) -> None:
    """Every image keeps min_side px on its short side at the final size; else say which size would do."""
    lo, hi = manifest["limits"]["min_side"], manifest["limits"]["max_side"]
    for what, img in images.items():
        h, w = fit_size(*img.shape[2:], size)
        if min(h, w) >= lo:
            continue
        need = next((s for s in range(size + 1, hi + 1) if min(fit_size(*img.shape[2:], s)) >= lo), None)
        fix = f"give a size of {need} or more" if need else f"crop it to at most {hi // lo}:1"
        ih, iw = img.shape[2:]
        raise BundleError(
            f"the {what} image is {iw}x{ih}: at size {size} it would be {w}x{h}, under the {lo} px the network "
            f"needs on each side; {fix}"
        )


def stylize(bundle, content, styles, size, iterations, scales, settings, on_step=print) -> np.ndarray:
    """Adam from the content image, coarse to fine; returns (1, 3, H, W) float32 in 0..255. For the nn style loss
    each scale first matches the positions of alpha x content + (1 - alpha) x its first image."""
    if not isinstance(styles, (list, tuple)) or not styles:
        raise BundleError("give at least one style image (a list of what load() returns)")
    named = {"style": styles[0]} if len(styles) == 1 else {f"style {i + 1}": s for i, s in enumerate(styles)}
    for what, image in {"content": content, **named}.items():
        check_image(what, image)
    check_sides(bundle.manifest, {"content": content, **named}, size)
    blend = [1.0 / len(styles)] * len(styles)
    weights = {k: np.array(settings[k], np.float32) for k in SCALARS}
    x, step, start = None, 0, time.perf_counter()
    nn = bundle.manifest.get("style_loss") == "nn"
    at_final = bundle.manifest["defaults"].get("style_at_final", False)
    for side, count in scale_plan(bundle.manifest, [content, *styles], size, scales, iterations):
        c = fit(content, side)
        x = c if x is None else next_start(x, c, bundle.manifest["defaults"].get("detail", True))
        resized = [fit(s, size if at_final else side) for s in styles]
        fixed = bundle.nn_targets(c, resized, x) if nn else bundle.targets(c, resized, blend)
        fixed |= weights  # the same at every step
        m, v = np.zeros_like(x), np.zeros_like(x)
        for t in range(1, count + 1):
            feeds = {"image": x, "m": m, "v": v, "t": np.array(t, np.float32), **fixed}
            x_next, m, v, loss, *terms = bundle.sessions["step.onnx"].run(list(STEP_OUTPUTS), feeds)
            check_finite(step, float(loss), x_next)
            seconds = {"seconds": round(time.perf_counter() - start, 4), "cpu_seconds": time.process_time()}
            terms = dict(zip(("content_loss", "style_loss", "tv_loss"), map(float, terms)))
            on_step({"iteration": step, "loss": float(loss), **seconds, "size": side, **terms})
            x, step = x_next, step + 1
    return x


def next_start(x: np.ndarray, c: np.ndarray, detail: bool) -> np.ndarray:
    """A finer scale's first image: the coarser result enlarged, plus (with `detail`) the content's detail it
    could not hold."""
    if not detail:
        return resize(x, *c.shape[2:])
    low = resize(resize(c, *x.shape[2:]), *c.shape[2:])
    return np.clip(resize(x, *c.shape[2:]).astype(np.float64) + c - low, 0, 255).astype(np.float32)


def check_image(what: str, x: object) -> None:
    """An image as load() returns it: a (1, 3, H, W) float32 array of finite RGB values in 0..255."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 4 or x.shape[:2] != (1, 3) or not x.size:
        kind = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise BundleError(f"the {what} image is {kind}: give a (1, 3, H, W) float32 array, as load() returns")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
        raise BundleError(f"the {what} image holds values outside 0..255 (or NaN): give RGB values in 0..255")


def check_finite(step: int, loss: float, x: np.ndarray) -> None:
    """Stop on a loss or image that overflowed (weights too large for float32), as nst does: the image
    would come out black."""
    if not (math.isfinite(loss) and np.isfinite(x).all()):
        raise BundleError(
            f"the loss is not finite at step {step}: the weights in manifest.json's defaults are too large for "
            "float32; lower them, or export the bundle again"
        )
