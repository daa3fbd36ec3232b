"""Stylise a run of frames in order: each frame starts from the previous output warped by optical flow and
is held to it by the temporal term; `independent` stylises every frame alone (the flickering baseline).

Frames are written as `<out_dir>/<input index, 6 digits>.png`, atomically; a frame already there is kept
and the next one warm-starts from it, so a rerun (or a run stopped by Ctrl-C) resumes where it ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from nst import kernels
from nst.engine.colour import preserve_colours
from nst.engine.images import as_image, fit_image, read_image, resize, save_result
from nst.engine.transfer import to_uint8

from .flow import FLOWS, FramePair
from .settings import DEFAULT_TEMPORAL_WEIGHT
from .temporal import TemporalObjective


@dataclass(frozen=True)
class VideoOptions:
    """How frames are tied together: temporal weight (0: warm start only), the flow method, whether every
    frame is stylised alone, and iterations for warm-started frames (None: as many as the first frame)."""

    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT
    flow: str = "dis"
    independent: bool = False
    warm_iterations: int | None = None

    def check(self) -> None:
        """Before any work: a known flow, a finite temporal weight of 0 or more, at least one warm iteration."""
        from nst.engine.checks import FLOAT32_MAX
        from nst.engine.errors import NstError

        if self.flow not in FLOWS:
            raise NstError(f"--flow {self.flow!r}: use one of {', '.join(FLOWS)}")
        if not 0 <= self.temporal_weight <= FLOAT32_MAX:  # NaN fails this too
            raise NstError(
                f"--temporal-weight {self.temporal_weight}: give 0 (warm start only) or a larger number a float32 holds"
            )
        if self.warm_iterations is not None and self.warm_iterations < 1:
            raise NstError(f"--warm-iterations {self.warm_iterations}: give at least 1 (default: a third of the first)")


@dataclass
class FrameRecord:
    """One frame done: where it went, how long it took, its last losses and per-iteration totals."""

    index: int
    path: Path
    seconds: float
    warm: bool
    losses: dict = field(default_factory=dict)
    curve: list = field(default_factory=list)  # content + style + tv after each iteration


def warm_iterations(opts) -> int:
    """Iterations of a warm-started frame by default: a third of the first frame's full-size pass, about
    what a warm start needs to reach the loss that pass ends at (docs/video.md)."""
    from nst.engine.schedule import scale_schedule

    return max(1, round(scale_schedule(opts)[1][-1] / 3))


def frame_path(out_dir: str | Path, index: int) -> Path:
    return Path(out_dir) / f"{index:06d}.png"


class VideoStylizer:
    """The per-run state: options, decoded styles, and the previous input frame and output."""

    def __init__(self, st, styles: list, video: VideoOptions, preset: str | None = None, **overrides) -> None:
        video.check()
        self.st = st
        self.video = video
        self.opts = st.options(preset, **overrides)
        self.styles = [as_image(s, f"style image {i + 1}") for i, s in enumerate(styles)]
        self.previous: tuple[np.ndarray, np.ndarray] | None = None  # (input frame, 8-bit output) at output size

    def size_of(self, frame: np.ndarray) -> tuple[int, int]:
        return fit_image(frame, self.opts.size)

    def forget(self) -> None:
        """The next frame starts afresh (a new chunk or shot)."""
        self.previous = None

    def remember(self, frame: np.ndarray, output: np.ndarray) -> None:
        """Take `output` (HxWx3, as written) of input `frame` as the previous frame."""
        h, w = self.size_of(frame)
        self.previous = (resize(frame, h, w), resize(np.asarray(output, np.float32), h, w))

    def frame(self, frame: np.ndarray, callback: Callable | None = None) -> tuple[np.ndarray, bool, list, dict]:
        """Stylise one input frame (HxWx3 float 0..255); returns the output, whether it was warm-started,
        the per-iteration totals without the temporal term and the last evaluation's losses."""
        content = resize(frame, *self.size_of(frame))
        curve: list[float] = []
        last: dict = {}

        def track(p):
            curve.append(p.losses["content"] + p.losses["style"] + p.losses["tv"])
            last.update(p.losses)
            return callback(p) if callback else None

        warm = not self.video.independent and self.previous is not None
        if not warm:
            result = self.st.stylize(content, self.styles, callback=track, **vars(self.opts))
        else:
            result = self._warm(content, track)
        self.remember(content, to_uint8(result).astype(np.float32))
        return result, warm, curve, last

    def _warm(self, content: np.ndarray, callback: Callable) -> np.ndarray:
        """One scale at the output size, from the previous output warped onto this frame."""
        if self.previous is None:
            raise ValueError("a warm start needs the previous frame")
        prev_input, prev_output = self.previous
        if prev_input.shape != content.shape:  # the flow pairs frames of one size (FrameSource checks folders)
            from nst.engine.errors import NstError

            (h0, w0), (h, w) = prev_input.shape[:2], content.shape[:2]
            raise NstError(f"a frame of {w}x{h} px follows one of {w0}x{h0}; a clip's frames need one size")
        pair = FramePair(prev_input, content, self.video.flow)
        warped = pair.warp(prev_output)
        iterations = self.video.warm_iterations or warm_iterations(self.opts)
        step = self.opts.with_overrides(scales=1, scale_iterations="", iterations=iterations)
        content_img, style_imgs = self.st.load(content, self.styles, step)
        prepared = self.st.prepare_images(content_img, style_imgs, step, warped)
        if self.video.temporal_weight > 0:
            target = kernels.hwc_to_nchw(warped, 1.0)
            prepared.objective = TemporalObjective(prepared.objective, target, pair.mask, self.video.temporal_weight)
        result = kernels.nchw_to_hwc_float(self.st.run(prepared, callback))
        if step.preserve_colors != "none":
            result = preserve_colours(result, content, step.preserve_colors)
        return result


def stylize_frames(
    stylizer: VideoStylizer,
    frames,
    out_dir: str | Path,
    on_frame: Callable[[FrameRecord | None, int], object] | None = None,
    callback: Callable | None = None,
    bit_depth: int = 8,
    place: Callable[[int], Path] | None = None,
) -> list[FrameRecord]:
    """Stylise `frames` ((index, HxWx3) pairs in order) into `out_dir` (or where `place(index)` says: a
    chunk's overlap frames go aside to be blended); frames already written are kept (`on_frame(None,
    index)` for each) and the next frame warm-starts from them."""
    out = Path(out_dir)
    records: list[FrameRecord] = []
    for index, frame in frames:
        target = place(index) if place else frame_path(out, index)
        existing = next((p for p in (frame_path(out, index), target) if p.exists()), None)
        if existing is not None:
            if not stylizer.video.independent:
                stylizer.remember(frame, to_uint8(read_image(existing)).astype(np.float32))
            if on_frame:
                on_frame(None, index)
            continue
        start = time.perf_counter()
        result, warm, curve, losses = stylizer.frame(frame, callback)
        save_result(target, result, bit_depth)
        record = FrameRecord(index, target, time.perf_counter() - start, warm, losses, curve)
        records.append(record)
        if on_frame:
            on_frame(record, index)
    return records
