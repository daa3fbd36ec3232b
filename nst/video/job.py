"""A video job: input, frame range, output and settings checked up front, run (here or on Ray), encoded."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from nst.engine.errors import NstError
from nst.engine.images import file_sha256, write_bytes

from .chunks import LEAD, TAIL
from .encode import encode, frames_folder, is_video
from .frames import FrameSource, check_fps, parse_frames
from .record import holds_frames, input_record, merge_input
from .settings import DEFAULT_TEMPORAL_WEIGHT
from .stylize import FrameRecord, VideoOptions, VideoStylizer, frame_path, stylize_frames

SETTINGS = ".nst-video.json"  # in the frames folder: what made its frames, so a rerun cannot mix settings


@dataclass
class VideoJob:
    """Everything a run needs, as plain data (so it can be shipped to Ray workers)."""

    input: Path
    styles: list[str]
    output: Path
    indices: range
    video: VideoOptions
    preset: str | None
    options: dict
    bit_depth: int
    fps: float
    audio: bool

    @classmethod
    def plan(
        cls,
        input: str | Path,
        styles: list[str],
        output: str | Path,
        frames: str | None = None,
        temporal_weight: float | None = None,
        independent: bool = False,
        flow: str = "dis",
        warm_iterations: int | None = None,
        fps: float | None = None,
        preset: str | None = None,
        options: dict | None = None,
        bit_depth: int = 8,
    ) -> VideoJob:
        """Check the input, range and output before any work; the frames folder is created here."""
        video = VideoOptions(
            DEFAULT_TEMPORAL_WEIGHT if temporal_weight is None else temporal_weight, flow, independent, warm_iterations
        )
        video.check()
        if fps is not None:
            check_fps(fps)
        source = FrameSource(input)
        indices = parse_frames(frames, source.count)
        options = {k: v for k, v in (options or {}).items() if v is not None}
        _check_transfer(preset, options, styles)
        out = Path(output)
        out = out.resolve() if out.is_symlink() else out  # written through the link, as nst transfer does
        job = cls(
            Path(input), list(styles), out, indices, video, preset, options, bit_depth, fps or source.fps,
            source.audio,
        )  # fmt: skip
        job._check_output(source)
        return job

    @property
    def folder(self) -> Path:
        return frames_folder(self.output)

    def _check_output(self, source: FrameSource) -> None:
        """Refuse an output that cannot be written or would overwrite the input, and frames that cannot be read,
        before the frames folder is made."""
        out, folder = self.output, self.folder
        if not (out.parent if str(out.parent) else Path(".")).is_dir():
            raise NstError(f"{out}: the folder {out.parent} does not exist; create it first")
        if is_video(out) and out.exists():
            raise NstError(f"{out}: already exists; remove it or choose another output name")
        if folder.exists() and not folder.is_dir():
            raise NstError(f"{folder}: is a file; give a folder or a .mp4/.avi name as the output")
        if folder.is_dir() and self.input.is_dir() and folder.resolve() == self.input.resolve():
            raise NstError(f"{folder}: is the folder of the input frames; give -o another folder (a subfolder works)")
        if self.bit_depth not in (8, 16) or (self.bit_depth == 16 and is_video(out)):
            raise NstError(f"--bit-depth {self.bit_depth}: video files take 8; a folder of PNG frames 8 or 16")
        source.check(self.indices)
        self._record(source)

    def _record(self, source: FrameSource) -> None:
        """Keep what makes the frames (settings and input) in the folder; refuse a folder made otherwise, since a
        rerun resumes into it."""
        folder = self.folder
        # The styles by their bytes, as nst batch records them: a style file changed under the same name would
        # otherwise mix two looks in one clip, and the same file elsewhere is the same style.
        settings = {"styles": [file_sha256(s) for s in self.styles], "preset": self.preset}
        settings = json.loads(json.dumps(settings | {"options": self.options, "video": asdict(self.video)}))
        marker = folder / SETTINGS
        try:
            old = json.loads(marker.read_text()) if marker.exists() else None
        except (OSError, ValueError):
            raise NstError(f"{marker}: cannot be read; give another output or delete that folder") from None
        if old is not None and {k: v for k, v in old.items() if k != "input"} != settings:
            if holds_frames(folder):
                raise NstError(
                    f"{folder}: holds frames made with other settings; give another output or delete that folder"
                )
            old = None  # no frame was made under it (a run refused or stopped before its first): nothing to keep
        new = input_record(source, self.indices)
        done = lambda i: any(frame_path(folder / sub, i).exists() for sub in ("", LEAD, TAIL))  # Ray's overlaps too
        settings["input"] = merge_input(old and old.get("input"), new, done, folder) if folder.is_dir() else new
        try:
            folder.mkdir(exist_ok=True)
            write_bytes(marker, json.dumps(settings, indent=1).encode())
        except OSError as exc:
            why = exc.strerror or exc
            raise NstError(f"{folder}: cannot be written ({why}); give -o a place you can write") from None

    def stylizer(self, st) -> VideoStylizer:
        return VideoStylizer(st, self.styles, self.video, self.preset, **self.options)

    def frames(self, indices: range | None = None):
        """(index, frame) pairs of the job's range (or of `indices`), decoded one at a time."""
        return FrameSource(self.input).frames(self.indices if indices is None else indices)

    def done_count(self, asides: bool = True) -> int:
        """Frames made and kept for a rerun: in the folder, and (asides) set aside by a Ray chunk for blending."""
        places = ("", LEAD, TAIL) if asides else ("",)
        return sum(any(frame_path(self.folder / sub, i).exists() for sub in places) for i in self.indices)

    def run(
        self,
        st,
        on_frame: Callable[[FrameRecord | None, int], object] | None = None,
        callback: Callable | None = None,
    ) -> list[FrameRecord]:
        """Stylise every frame of the range not yet written, in order, in this process."""
        return stylize_frames(self.stylizer(st), self.frames(), self.folder, on_frame, callback, self.bit_depth)

    def finish(self) -> str | None:
        """Encode a video output from the frames (then drop them); returns a warning to show, if any."""
        if not is_video(self.output):
            return None
        missing = [i for i in self.indices if not frame_path(self.folder, i).exists()]
        if missing:
            raise NstError(f"{self.folder}: frame {missing[0]} is missing; rerun to finish it before encoding")
        files = [frame_path(self.folder, i) for i in self.indices]
        audio = (self.input, self.indices.start / self.fps) if self.audio else None
        warning = encode(files, self.output, self.fps, audio)
        shutil.rmtree(self.folder)
        return warning


def _check_transfer(preset: str | None, options: dict, styles: list[str]) -> None:
    """The transfer's options and style images, checked before the frames folder is made (resolving options
    costs no model session)."""
    from nst.engine.images import read_image
    from nst.engine.transfer import StyleTransfer

    StyleTransfer().options(preset, **options)
    for style in styles:
        read_image(style)
