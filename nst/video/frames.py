"""Where frames come from (a video file or a folder of images) and which of them a run takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nst.engine.errors import NstError

DEFAULT_FPS = 25.0


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
        else:
            raise NstError(f"{self.path}: no such video file or folder of frames")

    def _probe(self) -> tuple[int, float]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            if not cap.isOpened():
                raise NstError(f"{self.path}: OpenCV cannot read this as a video; give a video file or a folder")
            fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
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
                    raise NstError(f"{self.path}: frame {i} could not be decoded")
                yield i, bgr[:, :, ::-1].astype(np.float32)
        finally:
            cap.release()
