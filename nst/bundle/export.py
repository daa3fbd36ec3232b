"""A portable bundle: features.onnx, step.onnx and manifest.json, runnable by any ONNX Runtime (docs/bundle.md);
with the nn style loss also style_columns.onnx and matching.onnx (graphs.hypercolumns, docs/nnst.md).

Both graphs are assembled from the engine's own builders: the feature layers (graphs.emit_forward), the
fused objective (fused.build_fused) and the Adam step with the total-variation term (stepgraph.build_adam_step),
joined by a little glue that derives every per-layer scale and Adam's bias correction from Shape(image) and t
inside the graph, so a host passes only the image, its moments, the step number and four numbers.  Weights are
stored as float16 (as the VGG model holds them, so nothing is rounded) and cast to float32 inside the graph.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nst.engine.choices import MAX_SIDE, MIN_SIDE
from nst.engine.errors import NstError
from nst.engine.graphs.adamstep import build_adam_step
from nst.engine.graphs.fused import build_fused, content_inputs, nn_inputs, style_inputs, w2_inputs
from nst.engine.graphs.hypercolumns import build_style_columns, emit_columns
from nst.engine.graphs.matching import build_matching
from nst.engine.graphs.network import emit_forward
from nst.engine.graphs.onnxbuild import Builder, make_model
from nst.engine.graphs.vgg import VggSpec
from nst.engine.images import MAX_PIXELS
from nst.engine.neighbours import BLOCK_BYTES
from nst.engine.presets import CONVENTIONS, Options
from nst.kernels.wasserstein import EPS

FORMAT, VERSION = "nst-bundle", 1
FILES = ("features.onnx", "step.onnx")
NN_FILES = ("style_columns.onnx", "matching.onnx")  # the nn style loss's two small graphs, beside FILES
MAX_BYTES = 60 * 1024 * 1024
# The bundle's own schedule: Adam, coarse to fine (fractions of the final size and steps at each).
SCHEDULE = {"scales": [0.25, 0.5, 1.0], "iterations": [200, 150, 200], "lr": 5.0}


def nn_schedule() -> dict:
    """The nn bundle's schedule: the nnst preset's scales (halving to the size), steps and learning rate."""
    from nst.engine.presets import PRESETS

    nnst = PRESETS["nnst"]
    count = int(nnst.scales)
    steps = [int(n) for n in str(nnst.scale_iterations).split(",")]
    return {"scales": [2.0 ** (k + 1 - count) for k in range(count)], "iterations": steps, "lr": nnst.lr}


@dataclass(frozen=True)
class BundleSpec:
    """What a bundle is built for: layers with weights, pooling, convention and the host defaults."""

    content_layers: dict[str, float]
    style_layers: dict[str, float]
    pooling: str
    convention: str
    defaults: dict
    style_loss: str = "gram"
    padding: str = "zero"


def bundle_spec(opts: Options) -> BundleSpec:
    """The bundle's layers and defaults from resolved options (weights from the preset, schedule the bundle's)."""
    schedule = nn_schedule() if opts.style_loss == "nn" else SCHEDULE
    defaults = {
        "lr": schedule["lr"],
        "content_weight": opts.content_weight,
        "style_weight": opts.style_weight,
        "tv_weight": opts.tv_weight,
        "iterations": list(schedule["iterations"]),
        "scales": list(schedule["scales"]),
        "size": opts.size,
        "style_at_final": opts.style_at_final,  # the style images at the final size at every scale
    }
    if opts.style_loss == "nn":
        # Adam on the pixels from the enlarged coarser result: the bundle has no pyramid or colour correction
        # (docs/nnst.md, "Where the bundle departs").
        defaults |= {"alpha": opts.alpha, "detail": False, "pyramid": False, "colour_correction": False}
    return BundleSpec(
        dict(opts.content_layers),
        dict(opts.style_layers),
        opts.pooling,
        opts.convention,
        defaults,
        opts.style_loss,
        opts.padding,
    )


def _scalar(name: str, kind: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, kind, [])


def _image(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, "H", "W"])


def _per_pixel(convention: str, channels: int) -> tuple[float, float]:
    """(content scale per unit weight, Gram divisor) of a layer with `channels` channels and one pixel: both
    conventions scale them by 1 / (h w) and h w (checked here), so the graph multiplies by its pixel count."""
    conv = CONVENTIONS[convention]
    content, divisor = conv.content_scale(1.0, channels, 1, 1), conv.gram_divisor(channels, 1, 1)
    if not (
        np.isclose(conv.content_scale(1.0, channels, 3, 5) * 15, content)
        and np.isclose(conv.gram_divisor(channels, 3, 5), 15 * divisor)
    ):
        raise NstError(f"convention {convention!r} does not scale with the pixel count; it cannot be bundled")
    return content, divisor


def _stride(spec: VggSpec, relu: str) -> int:
    """Image pixels per activation pixel at a ReLU: 2 ** (poolings before it)."""
    return 2 ** sum(layer.kind == "pool" for layer in spec.truncated(relu))


def _pixels(b: Builder, image: str, stride: int, pooling: str) -> str:
    """h * w (float64) of an activation `stride` image pixels apart: floor for max pooling, ceil for SAME avg."""
    hw = b.op("Shape", [image], "hw", start=2, end=4)
    if stride > 1:
        if pooling == "avg":
            hw = b.op("Add", [hw, b.const(np.array(stride - 1, np.int64), "round_up")], "hw_up")
        hw = b.op("Div", [hw, b.const(np.array(stride, np.int64), "stride")], "hw_pooled")
    count = b.op("ReduceProd", [hw], "count", keepdims=0)
    return b.op("Cast", [count], "count64", to=TensorProto.DOUBLE)


def _wide(b: Builder, name: str) -> str:
    return b.op("Cast", [name], name + "_64", to=TensorProto.DOUBLE)


def _narrow(b: Builder, name: str, output: str | None = None) -> str:
    return b.op("Cast", [name], "f32", output, to=TensorProto.FLOAT)


def _double(b: Builder, value: float, hint: str) -> str:
    return b.const(np.array(value, np.float64), hint)


def _inline(b: Builder, model: onnx.ModelProto, prefix: str, rename: dict[str, str]) -> None:
    """Copy a model's nodes and initializers into `b`, its graph inputs and outputs renamed as `rename` says
    and every other name prefixed, so graphs built apart join without clashes."""

    def name(n: str) -> str:
        return n if not n else rename.get(n, prefix + n)

    for init in model.graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = name(init.name)
        b.inits.append(copy)
    for node in model.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = prefix + node.name
        copy.input[:] = [name(n) for n in node.input]
        copy.output[:] = [name(n) for n in node.output]
        b.nodes.append(copy)


def _adam_constants() -> dict[str, float]:
    """beta1, beta2 and eps as the engine's device Adam takes them (its defaults: one definition)."""
    from nst.engine.optimize import adam_on_device

    params = inspect.signature(adam_on_device).parameters
    return {name: float(params[name].default) for name in ("beta1", "beta2", "eps")}


def _adam_glue(b: Builder) -> dict[str, str]:
    """Tensors for the Adam step's scalar inputs: constants, and lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) in float64
    (as the engine computes it on the host) from the inputs lr and t."""
    from nst.engine.optimize import PIXEL_RANGE

    consts = _adam_constants()
    t = _wide(b, "t")
    one = _double(b, 1.0, "one")

    def decay(beta: str) -> str:
        return b.op("Sub", [one, b.op("Pow", [_double(b, consts[beta], beta), t], beta + "_t")], beta + "_c")

    lr_t = b.op(
        "Div", [b.op("Mul", [_wide(b, "lr"), b.op("Sqrt", [decay("beta2")], "s")], "lrs"), decay("beta1")], "lr_t64"
    )
    feeds = {"lr_t": _narrow(b, lr_t), "tv_weight": "tv_weight"}
    for key, value in (*consts.items(), ("low", PIXEL_RANGE[0]), ("high", PIXEL_RANGE[1])):
        feeds[key] = b.const(np.array(value, np.float32), key)
    return feeds


def _objective_glue(b: Builder, spec: VggSpec, bs: BundleSpec) -> dict[str, str]:
    """Tensors for the fused objective's inputs: targets by their bundle names, per-layer scales from the weights
    and the activation sizes."""
    feeds: dict[str, str] = {}
    content_weight, style_weight = _wide(b, "content_weight"), _wide(b, "style_weight")
    conv = CONVENTIONS[bs.convention]
    for layer, weight in bs.content_layers.items():
        target, scale = content_inputs(layer)
        per_pixel, _ = _per_pixel(bs.convention, spec.channels(layer))
        pixels = _pixels(b, "image", _stride(spec, layer), bs.pooling)
        value = b.op("Mul", [content_weight, _double(b, weight * per_pixel, "c_k")], "cw")
        feeds[target], feeds[scale] = f"content.{layer}", _narrow(b, b.op("Div", [value, pixels], "cs"))
    if bs.style_loss == "nn":
        style, centre, index, weight = nn_inputs()
        return feeds | {style: "nn.style", centre: "nn.centre", index: "nn.index", weight: "style_weight"}
    for layer, weight in bs.style_layers.items():
        channels = spec.channels(layer)
        if bs.style_loss == "w2":
            feeds |= _w2_glue(b, layer, channels, _narrow(b, b.op("Mul", [style_weight, _double(b, weight, "w")], "k")))
            continue
        target, norm, scale = style_inputs(layer)
        _, divisor = _per_pixel(bs.convention, channels)
        pixels = _pixels(b, "image", _stride(spec, layer), bs.pooling)
        feeds[target] = f"gram.{layer}"
        feeds[norm] = _narrow(b, b.op("Mul", [pixels, _double(b, divisor, "divisor")], "norm"))
        k = _double(b, conv.style_scale(weight, channels), "s_k")
        feeds[scale] = _narrow(b, b.op("Mul", [style_weight, k], "ss"))
    return feeds


def _w2_glue(b: Builder, layer: str, channels: int, weight: str) -> dict[str, str]:
    """The w2 term's inputs from the blended moments gram.<layer> ((C + 1, C): F F^T / M over the mean): the
    style's mean, its covariance (plus eps, relative to its mean variance, as the engine adds), its trace,
    eps and k = weight / trace."""
    mean_t, cov_t, trace_t, eps_name, k_name = w2_inputs(layer)
    moments = f"gram.{layer}"
    rows = lambda start, end: b.op(  # noqa: E731
        "Slice", [moments, *(b.const(np.array([v], np.int64), "r") for v in (start, end, 0))], "rows"
    )
    srm, mean_row = rows(0, channels), rows(channels, channels + 1)
    mean = b.op("Transpose", [mean_row], "mean_t", perm=[1, 0])
    eye = b.const(np.eye(channels, dtype=np.float32), "eye")
    cov = b.op("Sub", [srm, b.op("MatMul", [mean, mean_row], "mm")], "cov_t")
    trace = b.op("ReduceSum", [b.op("Mul", [cov, eye], "diag")], "trace", keepdims=0)
    eps = b.op("Mul", [trace, b.const(np.array(EPS / channels, np.float32), "eps_rel")], "eps")
    cov = b.op("Add", [cov, b.op("Mul", [eye, eps], "eps_eye")], "cov_eps")
    trace = b.op("Add", [trace, b.op("Mul", [eps, b.const(np.array(channels, np.float32), "c")], "c_eps")], "trace_eps")
    return {mean_t: mean, cov_t: cov, trace_t: trace, eps_name: eps, k_name: b.op("Div", [weight, trace], "k")}


def _nn_width(spec: VggSpec, bs: BundleSpec) -> int:
    """The channels of one hypercolumn: every style layer's."""
    return sum(spec.channels(layer) for layer in bs.style_layers)


def _target_info(spec: VggSpec, bs: BundleSpec, step: bool = True) -> list[onnx.ValueInfoProto]:
    """The targets: features.onnx's outputs, step.onnx's inputs (for nn they differ: columns out, matches in)."""
    infos = [
        helper.make_tensor_value_info(f"content.{layer}", TensorProto.FLOAT, [1, spec.channels(layer), None, None])
        for layer in bs.content_layers
    ]
    if bs.style_loss == "nn":
        c = _nn_width(spec, bs)
        if not step:
            return infos + [helper.make_tensor_value_info("nn.columns", TensorProto.FLOAT, ["P", c])]
        return infos + [
            helper.make_tensor_value_info("nn.style", TensorProto.FLOAT, ["S", c]),
            helper.make_tensor_value_info("nn.centre", TensorProto.FLOAT, [1, c]),
            helper.make_tensor_value_info("nn.index", TensorProto.INT64, ["P"]),
        ]
    for layer in bs.style_layers:
        c = spec.channels(layer)
        rows = c + 1 if bs.style_loss == "w2" else c  # w2: the second raw moment over the mean
        infos.append(helper.make_tensor_value_info(f"gram.{layer}", TensorProto.FLOAT, [rows, c]))
    return infos


def build_step(spec: VggSpec, bs: BundleSpec) -> onnx.ModelProto:
    """step.onnx: losses of `image`, their gradient plus tv, one Adam step and the clip, as one graph."""
    b = Builder()
    layers = list(bs.content_layers), list(bs.style_layers)
    fused = build_fused(spec, *layers, bs.pooling, bs.padding, bs.style_loss, bs.style_layers)
    rename = _objective_glue(b, spec, bs) | {
        "image": "image",
        "content_loss": "content_loss",
        "style_loss": "style_loss",
        "grad_image": "grad_image",
    }
    _inline(b, fused, "objective/", rename)
    adam = _adam_glue(b) | {"x": "image", "grad": "grad_image", "m": "m", "v": "v"}
    adam |= {"x_next": "image_next", "m_next": "m_next", "v_next": "v_next", "tv_loss": "tv_loss"}
    _inline(b, build_adam_step(), "adam/", adam)
    b.op("Add", [b.op("Add", ["content_loss", "style_loss"], "cs"), "tv_loss"], "loss", "loss")
    scalars = ["t", "lr", "content_weight", "style_weight", "tv_weight"]
    inputs = [_image("image"), _image("m"), _image("v")] + [_scalar(n) for n in scalars] + _target_info(spec, bs)
    outputs = [_image(n) for n in ("image_next", "m_next", "v_next")]
    outputs += [_scalar(n, TensorProto.DOUBLE) for n in ("loss", "content_loss", "style_loss", "tv_loss")]
    return _half_weights(make_model(b, inputs, outputs, "nst_step"), spec)


def build_features(spec: VggSpec, bs: BundleSpec) -> onnx.ModelProto:
    """features.onnx: image -> content.<layer> activations and gram.<layer> Gram matrices normalised as the
    objective reads them (F F^T / divisor, the divisor from the image's own activation size); for the w2
    loss gram.<layer> holds F F^T / M over the mean of F, which blend linearly as Gram matrices do."""
    b = Builder()
    layers = [*bs.content_layers, *bs.style_layers]
    emit_forward(b, spec, spec.truncated(spec.deepest(layers)), bs.pooling, bs.padding)
    for layer in bs.content_layers:
        b.op("Identity", [layer], "content", f"content.{layer}")
    if bs.style_loss == "nn":  # the hypercolumns, position by position (a block of positions is contiguous)
        widths = {layer: spec.channels(layer) for layer in bs.style_layers}
        columns, _ = emit_columns(b, "image", bs.style_layers, widths)
        b.op("Transpose", [columns], "rows", "nn.columns", perm=[1, 0])
    for layer in bs.style_layers if bs.style_loss != "nn" else []:
        channels = spec.channels(layer)
        if bs.style_loss == "w2":
            flat = b.op("Reshape", [layer, b.const(np.array([channels, -1], np.int64), "chw")], "F")
            # The positions counted from the image's shape as for Gram: a count read off the reshaped features
            # (a [1]-shaped Shape slice) divided wrongly in ONNX Runtime's WebGPU backend.
            positions = _narrow(b, _pixels(b, "image", _stride(spec, layer), bs.pooling))
            srm = b.op("MatMul", [flat, b.op("Transpose", [flat], "Ft", perm=[1, 0])], "G")
            mean = b.op(
                "Transpose", [b.op("ReduceMean", [flat], "mean", axes=[1], keepdims=1)], "mean_row", perm=[1, 0]
            )
            srm = b.op("Div", [srm, positions], "srm")
            b.op("Concat", [srm, mean], "moments", f"gram.{layer}", axis=0)
            continue
        _, divisor = _per_pixel(bs.convention, channels)
        flat = b.op("Reshape", [layer, b.const(np.array([channels, -1], np.int64), "chw")], "F")
        gram = b.op("MatMul", [flat, b.op("Transpose", [flat], "Ft", perm=[1, 0])], "G")
        norm = b.op("Mul", [_pixels(b, "image", _stride(spec, layer), bs.pooling), _double(b, divisor, "d")], "n")
        b.op("Div", [gram, _narrow(b, norm)], "gram", f"gram.{layer}")
    outputs = _target_info(spec, bs, step=False)
    return _half_weights(make_model(b, [_image("image")], outputs, "nst_features"), spec)


def _half_weights(model: onnx.ModelProto, spec: VggSpec) -> onnx.ModelProto:
    """Store each convolution's weights once, as float16, cast to float32 in the graph; the backward pass's
    flipped and transposed copies are derived from that one tensor (ONNX Runtime folds all of it at load)."""
    convs = {layer.name: layer for layer in spec.layers if layer.kind == "conv"}
    kept, nodes, stored = [], [], set()
    end = np.iinfo(np.int64).min
    for init in model.graph.initializer:
        hint = init.name.rsplit("/", 1)[-1].rsplit("__", 1)[0]  # inlined graphs prefix their names
        layer = convs.get(hint.removesuffix("T").removesuffix("_w")) if hint.endswith(("_w", "_wT")) else None
        if layer is None:
            kept.append(init)
            continue
        half = f"{layer.name}.weight"
        if half not in stored:
            kept.append(numpy_helper.from_array(np.asarray(layer.conv()[0], np.float16), half))
            nodes.append(helper.make_node("Cast", [half], [half + ".f32"], to=TensorProto.FLOAT))
            stored.add(half)
        if hint.endswith("_w"):
            nodes.append(helper.make_node("Identity", [half + ".f32"], [init.name]))
            continue
        swapped = init.name + ".swapped"
        nodes.append(helper.make_node("Transpose", [half + ".f32"], [swapped], perm=[1, 0, 2, 3]))
        flip = [
            numpy_helper.from_array(np.array(v, np.int64), f"{init.name}.{k}")
            for k, v in (("starts", [-1, -1]), ("ends", [end, end]), ("axes", [2, 3]), ("steps", [-1, -1]))
        ]
        kept += flip
        nodes.append(helper.make_node("Slice", [swapped] + [t.name for t in flip], [init.name]))
    weights = [layer.conv()[0] for layer in convs.values()]
    if any(not np.array_equal(np.asarray(w, np.float16), w) for w in weights):
        raise NstError("the model's weights are not float16: a bundle would round them; export it from vgg19_features")
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    graph_nodes = nodes + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(graph_nodes)
    return model


def manifest(spec: VggSpec, bs: BundleSpec, hashes: dict[str, str]) -> dict:
    """manifest.json's content: format, file hashes, layers with weights, defaults, the weights' licence."""
    meta = spec.metadata
    return {
        "format": FORMAT,
        "version": VERSION,
        "files": hashes,
        "content_layers": bs.content_layers,
        "style_layers": bs.style_layers,
        "pooling": bs.pooling,
        "convention": bs.convention,
        "style_loss": bs.style_loss,
        "padding": bs.padding,
        "defaults": bs.defaults,
        # the sizes a host may ask for, the largest image it should decode, and for nn the largest block of
        # the matching's distances (positions x style positions x 4 bytes)
        "limits": {"min_side": MIN_SIDE, "max_side": MAX_SIDE, "max_pixels": MAX_PIXELS}
        | ({"block_bytes": BLOCK_BYTES} if bs.style_loss == "nn" else {}),
        "licence": {
            "weights": meta.get("license", "see attribution"),
            "attribution": meta.get("attribution", ""),
            "model_sha256": spec.sha256,
        },
    }


def file_names(style_loss: str) -> tuple[str, ...]:
    """The graphs of a bundle with this style loss."""
    return FILES + NN_FILES if style_loss == "nn" else FILES


def bundle_files(spec: VggSpec, opts: Options) -> tuple[dict, dict[str, bytes]]:
    """The bundle's manifest and its files' bytes by name: features.onnx, step.onnx (and for nn
    style_columns.onnx and matching.onnx) and manifest.json."""
    bs = bundle_spec(opts)
    builders = {
        "features.onnx": lambda: build_features(spec, bs),
        "step.onnx": lambda: build_step(spec, bs),
        "style_columns.onnx": build_style_columns,
        "matching.onnx": build_matching,
    }
    files = {name: builders[name]().SerializeToString() for name in file_names(bs.style_loss)}
    result = manifest(spec, bs, {name: hashlib.sha256(data).hexdigest() for name, data in files.items()})
    return result, files | {"manifest.json": (json.dumps(result, indent=2) + "\n").encode()}


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NstError(f"{folder}: cannot create this folder ({exc.strerror or exc}); give one you can write") from None


WEB_SOURCE = Path(__file__).resolve().parents[2] / "hosts" / "web"


def export_folder(
    folder,
    preset: str = "nst",
    content_layers: str | None = None,
    style_layers: str | None = None,
    pooling: str | None = None,
    style_loss: str | None = None,
    padding: str | None = None,
    web: bool = False,
    force: bool = False,
) -> str:
    """`nst export`: check the options, write the bundle (and with `web` the page around it); returns a summary."""
    from nst.engine.checks import check_options
    from nst.engine.graphs.vgg import load_spec
    from nst.engine.images import write_files
    from nst.engine.presets import resolve_options

    folder = Path(folder)
    overrides = {
        "content_layers": _layers(content_layers, "content-layers"),
        "style_layers": _layers(style_layers, "style-layers"),
        "pooling": pooling,
        "style_loss": style_loss,
        "padding": padding,
    }
    opts = resolve_options(preset, **overrides)
    spec = load_spec()
    check_options(opts, spec.relu_names)
    target = folder / "bundle" if web else folder
    web_files = _web_files() if web else {}  # checked before anything is written
    names = [*file_names(opts.style_loss), "manifest.json"]
    _check_free(folder, [*names, *web_files.values()], force)
    _check_free(target, names, force)
    _, files = bundle_files(spec, opts)
    pages = {folder / name: source.read_bytes() for source, name in web_files.items()}
    for path in {target, *(p.parent for p in pages)}:
        _make_folder(path)
    write_files({target / name: data for name, data in files.items()} | pages)
    sizes = {name: (target / name).stat().st_size for name in names}
    listing = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items())
    summary = f"wrote {target}: {listing} ({sum(sizes.values()) / 1e6:.1f} MB in all)"
    if web:
        summary += f"\nwrote the page to {folder}: serve it with COOP/COEP headers, e.g. python3 {folder / 'serve.py'}"
    return summary


def _layers(text: str | None, flag: str) -> dict[str, float] | None:
    """A layer option: None keeps the preset's; a bundle needs at least one content and one style layer."""
    from nst.engine.presets import parse_layers

    if text is None:
        return None
    layers = parse_layers(text, flag)
    if not layers:
        raise NstError(f"--{flag} {text!r}: a bundle needs at least one layer, e.g. relu4_2 or relu1_1,relu2_1")
    return layers


def _check_free(folder: Path, names: list[str], force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise NstError(f"{folder} is a file; give a folder for the bundle")
    taken = [name for name in names if (folder / name).exists()]
    if taken and not force:
        listed = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise NstError(f"{folder} already holds {listed}; choose another folder or pass --force")


def _web_files() -> dict[Path, str]:
    """The page's files and the onnxruntime-web runtime files (from hosts/web/node_modules) -> names in the folder."""
    listing = WEB_SOURCE / "files.json"
    if not listing.is_file():
        raise NstError("nst export --web needs a source checkout of nst (hosts/web); clone the repository")
    names = json.loads(listing.read_text())  # the list `npm run build` copies too
    runtime = WEB_SOURCE / "node_modules" / "onnxruntime-web" / "dist"
    files = {WEB_SOURCE / p: Path(p).name for p in names["page"]}
    files |= {WEB_SOURCE / p: f"paintings/{Path(p).name}" for p in names.get("paintings", [])}
    files |= {runtime / name: f"ort/{name}" for name in names["runtime"]}
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise NstError(f"{missing[0]} is missing; run `npm ci` in {WEB_SOURCE} first")
    return files
