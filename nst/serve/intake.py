"""What a client may send: the options it may set (checked by the engine's own rules) and images sized from
their headers before anything decodes them.  Every refusal is one line, as the CLI would print it."""

from __future__ import annotations

import json
from pathlib import Path

from nst.engine.checks import check_options, check_sides, style_blend
from nst.engine.choices import MIN_SIDE
from nst.engine.errors import NstError
from nst.engine.imageheader import dimensions
from nst.engine.images import fit_size
from nst.engine.presets import Options, resolve_options
from nst.engine.schedule import scale_schedule

from .config import ServeConfig
from .messages import for_client

# Transfer settings only: nothing that names a file (init, style_masks) or reaches the machine (device, path).
ALLOWED = (
    "preset",
    "size",
    "iterations",
    "style_weight",
    "content_weight",
    "tv_weight",
    "style_blend",
    "style_scale",
    "style_at_final",
    "preserve_colors",
    "match_colors",
    "seed",
    "optimizer",
    "style_loss",
    "alpha",
    "colour_correction",
    "average",
    "padding",
    "format",
)
NEIGHBOUR_SIDE = 512  # the nn loss's matching grows with the square of the pixels: at most this size
LONGEST_VALUE = 64  # characters of a string option: more than any valid one, and never echoed back whole
FORMATS = ("png", "jpg", "webp")  # what a result can be sent as
HEADER_FORMATS = "PNG, JPEG, WebP, BMP or GIF"  # what engine.imageheader sizes before decoding
_DEFAULTS = Options()


class Refused(Exception):
    """A request the server will not take: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str, headers: dict | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


def _expected(key: str):
    """The JSON type a key takes: the engine default's type (a float field also takes an integer)."""
    if key in ("preset", "format"):
        return str
    if key == "style_blend":
        return (list, str)
    default = getattr(_DEFAULTS, key)
    return (int, float) if isinstance(default, float) else type(default)


def _path_like(value) -> bool:
    if isinstance(value, list):
        return any(_path_like(v) for v in value)
    return isinstance(value, str) and (any(c in value for c in "/\\:") or value.startswith(("~", ".")))


def _checked_value(key: str, value):
    expected = _expected(key)
    if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
        names = {int: "an integer", str: "a string", bool: "true or false"}.get(
            expected, "a number or a list of numbers"
        )
        raise Refused(422, f"options.{key}: {json.dumps(value)[:60]} is not {names}")
    if isinstance(value, str) and len(value) > LONGEST_VALUE:
        raise Refused(422, f"options.{key}: a string of {len(value)} characters; valid ones are short, see the docs")
    if isinstance(value, list) and len(value) > LONGEST_VALUE:
        raise Refused(422, f"options.{key}: a list of {len(value)} items; give one per style image")
    if _path_like(value):
        raise Refused(422, f"options.{key}: {str(value)[:60]!r} looks like a path; a client never names a server file")
    if key == "style_blend" and isinstance(value, list) and not all(isinstance(v, (int, float)) for v in value):
        raise Refused(422, "options.style_blend: give a list of numbers such as [3, 7]")
    return value


class _Repeated(Exception):
    """A key given twice in one JSON object (json.loads would keep the last silently)."""


def _no_repeats(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise _Repeated(key)
    return dict(pairs)


def parse_options(text: str | None) -> dict:
    """The client's `options` field (a JSON object) -> its settings, each key allowed and of the right type."""
    if text is None or not text.strip():
        return {}
    try:
        raw = json.loads(text, object_pairs_hook=_no_repeats)
    except _Repeated as exc:
        raise Refused(422, f"options.{str(exc)[:40]}: given twice; send each option once") from None
    except (ValueError, RecursionError):
        raise Refused(422, 'options: not valid JSON; send an object such as {"size": 256}') from None
    if not isinstance(raw, dict):
        raise Refused(422, 'options: send a JSON object such as {"size": 256}')
    unknown = sorted(set(raw) - set(ALLOWED))
    if unknown:
        raise Refused(422, f"options.{unknown[0]}: not accepted here; send only: {', '.join(ALLOWED)}")
    return {key: _checked_value(key, value) for key, value in raw.items()}


def resolve(client: dict, styles: int, relu_names: list[str], config: ServeConfig) -> tuple[Options, str]:
    """The engine's options for a client's settings (and the result format), within the server's caps."""
    engine = {k: v for k, v in client.items() if k not in ("preset", "format")}
    fmt = client.get("format", "png")
    if fmt not in FORMATS:
        raise Refused(422, f"options.format {fmt!r}: use one of {', '.join(FORMATS)}")
    try:
        opts = resolve_options(client.get("preset"), **engine)
        check_options(opts, relu_names)
        style_blend(opts.style_blend, styles)
        total = sum(scale_schedule(opts)[1])
    except NstError as exc:
        raise Refused(422, for_client(str(exc), ALLOWED)) from None
    if opts.size > config.max_size:
        raise Refused(422, f"options.size {opts.size} is above this server's limit of {config.max_size}; ask less")
    if opts.style_loss == "nn" and max(opts.size, round(opts.size * opts.style_scale)) > NEIGHBOUR_SIDE:
        raise Refused(
            422,
            f"options.style_loss nn at size {opts.size} (style scale {opts.style_scale:g}) is above this server's "
            f"limit of {NEIGHBOUR_SIDE} px for it: its matching grows with the square of the pixels; ask less",
        )
    style_side = round(opts.size * opts.style_scale)  # the style images' side: their work grows with its square
    if style_side > config.max_size:
        raise Refused(
            422,
            f"options.style_scale {opts.style_scale:g} makes the style images {style_side} px at size {opts.size}, "
            f"above this server's limit of {config.max_size}; ask at most {config.max_size / opts.size:.2f}",
        )
    if total > config.max_iterations:
        raise Refused(
            422, f"{total} iterations in all is above this server's limit of {config.max_iterations}; ask fewer"
        )
    return opts, fmt


def check_header(data: bytes, label: str, max_megapixels: float) -> tuple[int, int]:
    """(width, height) from an upload's header, refused when unknown or too many pixels to decode."""
    if not data:
        raise Refused(422, f"{label}: the file is empty; send a {HEADER_FORMATS} image")
    dims = dimensions(data[: 1 << 16])
    if not dims or min(dims) < 1:
        raise Refused(422, f"{label}: not a {HEADER_FORMATS} image (its size is read before decoding); send one")
    if dims[0] * dims[1] > max_megapixels * 1e6:
        raise Refused(
            422,
            f"{label}: the image is {dims[0]}x{dims[1]}, more than this server's {max_megapixels:g} megapixels; "
            "shrink it first",
        )
    return dims


def check_content_sides(width: int, height: int, size: int, max_size: int) -> None:
    """Refuse at upload a content image the transfer would refuse later: too narrow for the network at the
    asked size, or at any size this server allows."""
    if min(fit_size(height, width, max_size)) < MIN_SIDE:
        raise Refused(
            422,
            f"content image: at {width}x{height} its short side would be under {MIN_SIDE} px even at this server's "
            f"largest options.size {max_size}; crop it to at most {max_size // MIN_SIDE}:1",
        )
    try:
        check_sides(height, width, size)
    except NstError as exc:
        raise Refused(422, for_client(str(exc), ALLOWED)) from None


def check_decodes(path: Path, label: str) -> None:
    """Decode a stored upload as the CLI would; its one-line error names the upload, not the server's file."""
    from nst.engine.images import read_image

    try:
        read_image(path)
    except NstError as exc:
        raise Refused(422, for_client(str(exc).replace(str(path), label), ALLOWED)) from None
