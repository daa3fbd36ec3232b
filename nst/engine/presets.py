"""Loss conventions and presets: the defaults each named preset gives to every transfer option."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .errors import NstError

DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# NNST's hypercolumn: the authors' VGG-16 layers relu1_1 .. relu4_3 by name on VGG-19, which skips
# relu3_4 and relu4_4 so the channels (2688) and the depth reached stay theirs.
NN_LAYERS = tuple(f"relu{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3)) for i in range(1, n + 1))


@dataclass(frozen=True)
class Convention:
    """How raw squared errors are normalised into the content and style losses.

    content:  scale * sum((F - P)^2)                with scale = weight / content_divisor
    style:    k * sum((F F^T / n - T)^2)            with n = gram_divisor, k = weight / style_divisor
    where T is the target Gram, itself normalised by n of the style image.
    """

    name: str

    def content_scale(self, weight: float, c: int, h: int, w: int) -> float:
        divisor = c * h * w if self.name == "johnson" else 4.0 * c * h * w
        return weight / divisor

    def gram_divisor(self, c: int, h: int, w: int) -> float:
        return float(c * h * w) if self.name == "johnson" else float(h * w)

    def style_scale(self, weight: float, c: int) -> float:
        return weight / (c * c) if self.name == "johnson" else weight / (4.0 * c * c)


CONVENTIONS = {"johnson": Convention("johnson"), "seed": Convention("seed")}


@dataclass(frozen=True)
class Options:
    """Every option of a transfer; the CLI's flags are these fields."""

    preset: str = "johnson"  # the name of the preset these options came from
    convention: str = "johnson"
    size: int = 512
    iterations: int = 1000
    scales: int | str = 1  # a count (halving down from size) or sizes such as "128,256,512"
    scale_iterations: str | None = None  # iterations per scale, e.g. "300,200,100"; default: iterations each
    scale_ratio: float = 2.0  # with a count of scales: each scale's size over the next coarser one's
    detail: bool = True  # with init content: each finer scale starts with the content's detail band added
    optimizer: str = "lbfgs"  # lbfgs (nst's own) | lbfgsb (scipy's L-BFGS-B) | adam
    history: int = 10  # L-BFGS memory: past steps kept (8 bytes per pixel value each; 16 for lbfgsb)
    lr: float = 10.0
    beta2: float = 0.999  # Adam's decay of its squared-gradient average
    content_weight: float = 5.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu4_2": 1.0})
    style_layers: dict[str, float] = field(default_factory=lambda: {name: 1.0 for name in DEFAULT_STYLE_LAYERS})
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    style_size: int = 0  # longest side of the style images at every scale; 0: style_at_final decides
    style_at_final: bool = False  # with style_size 0: every scale sees the style images at the final size x
    # style_scale, so coarse scales match the painting's features at the size they will have in the result;
    # False: each scale's size x style_scale
    style_loss: str = "gram"  # gram | w2 (Wasserstein-2 between the features' Gaussians) | nn (neural neighbours)
    alpha: float = 0.75  # nn: the content's share of the image whose features are matched at each scale
    pyramid: bool = False  # optimise the image's Laplacian pyramid coefficients (Adam only)
    colour_correction: bool = False  # NNST's final colour correction (nst.engine.colour.colour_correct)
    average: float = 0.0  # decay of an exponential moving average of the iterates (0: off); the result and
    # each finer scale's start are the average
    padding: str = "zero"  # zero | replicate: the first convolution's padding
    init: object = "content"  # content | noise | random | noisy-content | a path | an HxWx3 array
    pooling: str = "max"
    seed: int = 0
    path: str = "auto"  # objective path: split (numba losses on the host), fused (one ONNX graph), auto
    preserve_colors: str = "none"  # none | ycbcr | lab: keep the content's colours
    match_colors: str = "none"  # none | histogram | meancov: recolour the styles to the content first
    style_masks: tuple | None = None  # one mask (path or HxW array, None = everywhere) per style image
    tile: int = 0  # optimise images larger than this (pixels per side) in tiles with exact gradients; 0: never
    normalize_gradients: bool = False  # each layer's gradient scaled to L1 norm = its weight (split path)
    clip_pixels: bool = True  # Adam keeps pixels in 0..255 (the assignment's Adam does not)
    report: str = "none"  # "seed" prints and saves as the assignment does

    def with_overrides(self, **overrides) -> Options:
        """A copy with the given non-None fields replaced; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise NstError(f"unknown option(s): {', '.join(unknown)}; known options: {', '.join(sorted(known))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


DEFAULT_PRESET = "nst"  # the preset of a transfer that names none
PRESETS: dict[str, Options] = {
    # nst's own default: coarse to fine (quarter, half, then full size) with nst's L-BFGS and a 40-step
    # memory, the content loss of the johnson objective, and the W2 style loss: it matches the painting's
    # colours and feature covariances where Gram matrices left a pale palette. Style layers relu1_1 to
    # relu4_1, without relu5_1: its features are the painting's objects, and matching their covariance, even
    # at 0.3 of the others' weight, painted a moon, a star, a head or an eye of the painting into skies and
    # water; content weight 4 (5 in johnson's) gives the painting's statistics back the share relu5_1 held,
    # with style and TV (4e-3: weaker leaves speckle) in the balance they had.
    # Every scale sees the style images at the final size: shrunk with a coarse canvas, the painting's
    # objects fit a deep layer's view and were copied whole (docs/picture.md; the measured choice is
    # benchmarks/results/picture_nst.json).
    "nst": Options(
        preset="nst",
        scales=3,
        scale_iterations="200,100,140",
        history=40,
        style_at_final=True,
        style_loss="w2",
        content_weight=4.0,
        style_weight=4e6,
        tv_weight=4e-3,
        style_layers={name: 1.0 for name in DEFAULT_STYLE_LAYERS if name != "relu5_1"},
    ),
    # Neural-neighbour style transfer (Kolkin et al., nkolkin13/NeuralNeighborStyleTransfer): the nn loss
    # over their hypercolumn, no content or TV loss, the content weighting alpha 0.75, four scales halving
    # to the size with 200 Adam steps each (lr 2e-3 of the 0..1 range) on the image's Laplacian pyramid,
    # starting from the content at the coarsest scale and from the enlarged result after, and their
    # colour correction. Style weight 255: the gradient per 0..255 value is theirs per 0..1 value, so
    # Adam's eps acts as theirs. Departures are listed in docs/nnst.md.
    "nnst": Options(
        preset="nnst",
        scales=4,
        scale_iterations="200,200,200,200",
        optimizer="adam",
        lr=2e-3 * 255,
        style_loss="nn",
        style_weight=255.0,
        content_weight=0.0,
        content_layers={},
        tv_weight=0.0,
        style_layers={name: 1.0 for name in NN_LAYERS},
        alpha=0.75,
        pyramid=True,
        colour_correction=True,
        detail=False,
    ),
    # jcjohnson/neural-style's defaults (pixels 0..255, MSE losses, Gram / CHW).
    "johnson": Options(optimizer="lbfgsb"),
    # crowsonkb/style-transfer-pytorch's defaults: the W2 loss, style layers weighted 256:64:16:4:1 (sum 1),
    # Adam (step 0.02 of the 0..1 range, betas 0.9 and 0.99), 1000 iterations at 128 px then 500 at each
    # scale up by sqrt(2), iterates averaged with decay 0.99, replicate padding, the content as the start.
    # Departures: nst's VGG-19 is the original Caffe one (features about 58x that tool's, no division by the
    # ImageNet spread) and its W2 is relative to each layer's style variance, so the weights are set for
    # that tool's balance here, not copied: content 5 x MSE as in johnson, style weight sized to the default
    # preset's, and its TV weight 2 (a mean over 0..1 pixels) as nst's sum over 0..255 pixels at 512 x 384
    # in that ratio to the content; Adam's moments restart at each scale instead of being resized; finer
    # scales start from the average without the content's detail band.
    "ck": Options(
        preset="ck",
        style_loss="w2",
        style_weight=1.5e7,
        style_layers={name: w / 341 for name, w in zip(DEFAULT_STYLE_LAYERS, (256, 64, 16, 4, 1))},
        tv_weight=1.2e-4,
        optimizer="adam",
        lr=0.02 * 255,
        beta2=0.99,
        scales=5,
        scale_ratio=2**0.5,
        scale_iterations="1000,500,500,500,500",
        average=0.99,
        padding="replicate",
        detail=False,
    ),
    # The course assignment's: its cost normalisations, 10 J_content + 40 J_style, average pooling,
    # noisy-content initialisation with numpy seed 3, Adam lr 2.0 for 200 iterations at 400x300.
    "seed": Options(
        preset="seed",
        convention="seed",
        size=400,
        iterations=200,
        optimizer="adam",
        lr=2.0,
        content_weight=10.0,
        style_weight=40.0,
        tv_weight=0.0,
        style_layers={name: 0.2 for name in DEFAULT_STYLE_LAYERS},
        init="noisy-content",
        pooling="avg",
        seed=3,
        clip_pixels=False,
        report="seed",
    ),
}


def resolve_options(preset: str | None = None, **overrides) -> Options:
    """The preset's options with the caller's overrides applied."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise NstError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return override(PRESETS[name], **overrides)


def override(options: Options, **overrides) -> Options:
    """`options` with the caller's non-None overrides applied (an explicit iteration count applies to every
    scale unless iterations per scale are given too)."""
    if overrides.get("iterations") is not None and overrides.get("scale_iterations") is None:
        overrides["scale_iterations"] = ""
    return options.with_overrides(**overrides)


def parse_layers(text: str, flag: str = "layers") -> dict[str, float]:
    """'relu1_1:1,relu2_1:0.5' (weights default to 1) -> {'relu1_1': 1.0, 'relu2_1': 0.5}."""
    layers: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, weight = item.partition(":")
        try:
            layers[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise NstError(f"--{flag}: {item!r} is not NAME or NAME:WEIGHT (for example relu2_1:0.5)") from None
    return layers
