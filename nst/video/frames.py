"""Where frames come from (a video file or a folder of images) and which of them a run takes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from nst.engine.errors import NstError

DEFAULT_FPS = 25.0
# FFmpeg's decoder logs each damaged packet on stderr; the damage is reported in one line by check() instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
FPS_RANGE = (0.01, 1000.0)  # a frame every 100 s to 1000 a second: what players and ffmpeg's muxers take


def check_fps(fps: float) -> None:
    """`--fps` must be a frame rate a video file can hold (NaN and infinity are not)."""
    lo, hi = FPS_RANGE
    if not (math.isfinite(fps) and lo <= fps <= hi):
        raise NstError(f"--fps {fps}: give a frame rate from {lo:g} to {hi:g}")


def parse_frames(text: str | None, count: int) -> range:
    """`--frames A:B` (either end may be left out) -> the frame indices A..B-1 within `count` frames."""
    if not text:
        return range(count)
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else count
    except ValueError:
        raise NstError(f"--frames {text!r}: give A:B, e.g. 0:100 (frames A to B-1)") from None
    if not 0 <= start < min(stop, count):
        raise NstError(f"--frames {text!r}: the input has frames 0:{count}; give a range inside it")
    return range(start, min(stop, count))


def same_size(folder: Path, files: list[Path], start: int) -> None:
    """Refuse frames (file `start + k` of a folder) that differ in size, read from their headers."""
    from nst.engine.imageheader import dimensions

    first = None
    for k, path in enumerate(files):
        try:
            with open(path, "rb") as fh:
                size = dimensions(fh.read(1 << 16))
        except OSError:
            size = None  # decoding it will say what is wrong
        if size is None:
            continue
        if first is None:
            first = (k, size)
        elif size != first[1]:
            (j, (w0, h0)), (w, h) = first, size
            raise NstError(
                f"{folder}: frame {start + k} ({path.name}) is {w}x{h} but frame {start + j} ({files[j].name}) is "
                f"{w0}x{h0}; a clip's frames need one size: resize them, or give --frames for a run of one size"
            )


def decodable(folder: Path, files: list[Path], start: int) -> None:
    """Refuse a range with a frame file that does not decode (a truncated PNG has a whole header), naming the
    frames before it that do: found here, not after hours of work on the ones before."""
    from nst.engine.images import read_image

    for k, path in enumerate(files):
        try:
            read_image(path)
        except NstError as exc:
            reason = str(exc).split(";")[0]  # what is wrong, without the advice for a single image
            hint = f"give --frames {start}:{start + k}, or " if k else ""
            what = f"{folder}: frame {start + k} cannot be used ({reason})"
            raise NstError(f"{what}; {hint}repair or remove it") from None


def readable_range(start: int, readable: int) -> str:
    """A --frames value within the first `readable` frames, from `start` where that lies inside them."""
    return f"{start}:{readable}" if start < readable else f"0:{readable}"


class FrameSource:
    """Frames of a video file or of a folder of images (sorted by name), as HxWx3 float32 RGB 0..255."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.audio = False
        if self.path.is_dir():
            from nst.engine.images import list_images

            self.files = list_images(self.path)
            self.count, self.fps = len(self.files), DEFAULT_FPS
        elif self.path.is_file():
            self.files = None
            self.count, self.fps = self._probe()
            self.audio = True  # whether it really has a track is ffmpeg's to find out (`-map 1:a?`)
        elif self.path.exists():  # a pipe or a device: reading it could wait forever
            raise NstError(f"{self.path}: not a regular file (a pipe or a device); give a video file or a folder")
        else:
            raise NstError(f"{self.path}: no such video file or folder of frames")

    def _probe(self) -> tuple[int, float]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise NstError(f"{self.path}: OpenCV cannot read this as a video; give a video file or a folder")
            fps = cap.get(cv2.CAP_PROP_FPS)
            fps = fps if math.isfinite(fps) and FPS_RANGE[0] <= fps <= FPS_RANGE[1] else DEFAULT_FPS
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            if count <= 0:  # some containers do not say: count by reading
                count = 0
                while cap.grab():
                    count += 1
        finally:
            cap.release()
        if count == 0:
            raise NstError(f"{self.path}: the video has no frames")
        return count, float(fps)

    def check(self, indices: range) -> None:
        """Before any work: every frame of the range can be decoded (a truncated file ends early) and, in a
        folder, all have one size (the flow pairs each frame with the one before)."""
        if self.files is None:
            readable = self._readable(indices.stop)
            if readable < indices.stop:
                raise NstError(
                    f"{self.path}: only frames 0:{readable} of {self.count} can be decoded (the file is truncated or "
                    f"damaged): give --frames {readable_range(indices.start, readable)}, or repair the file"
                )
            return
        same_size(self.path, [self.files[i] for i in indices], indices.start)
        decodable(self.path, [self.files[i] for i in indices], indices.start)

    def _readable(self, stop: int) -> int:
        """How many of the first `stop` frames can be decoded (the container's count may promise more)."""
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            count = 0
            while count < stop and cap.grab():
                count += 1
        finally:
            cap.release()
        return count

    def frames(self, indices: range):
        """Yield (index, frame) for the consecutive `indices`, decoding one frame at a time."""
        if self.files is not None:
            from nst.engine.images import read_image

            for i in indices:
                yield i, read_image(self.files[i])
            return
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, indices.start)
            for i in indices:
                ok, bgr = cap.read()
                if not ok:
                    raise NstError(
                        f"{self.path}: frame {i} could not be decoded (the file is truncated or damaged); "
                        f"frames before it can be read: give --frames {readable_range(indices.start, i)}"
                    )
                yield i, bgr[:, :, ::-1].astype(np.float32)
        finally:
            cap.release()
