"""Output: a folder of PNG frames, or a video file encoded from them (ffmpeg when on PATH, with the input's
audio; else OpenCV's writer, without audio), moved into place when complete."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from nst.engine.errors import NstError
from nst.engine.images import move_into_place

# Video containers by extension: the ffmpeg video and audio codecs, and OpenCV's fourcc without ffmpeg.
CONTAINERS = {".mp4": ("libx264", "aac", "mp4v"), ".avi": ("mjpeg", "pcm_s16le", "MJPG")}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CONTAINERS


def frames_folder(output: str | Path) -> Path:
    """Where the frames of a video output are kept until it is encoded (and where a rerun resumes)."""
    p = Path(output)
    return p if not is_video(p) else p.with_name(p.name + ".frames")


def encode(frames: list[Path], output: str | Path, fps: float, audio: tuple[Path, float] | None = None) -> str | None:
    """Encode `frames` (PNG files in order) into `output` atomically; `audio` = (source, start seconds) copies
    that much of the source's sound track.  Returns a warning when the sound could not be copied."""
    out = Path(output)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    try:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            _ffmpeg(ffmpeg, frames, Path(tmp), fps, audio)
            warning = None
        else:
            _opencv(frames, Path(tmp), fps)
            warning = "ffmpeg is not on PATH: the video was written without the input's sound" if audio else None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    move_into_place(tmp, out)
    return warning


def _ffmpeg(ffmpeg: str, frames: list[Path], tmp: Path, fps: float, audio: tuple[Path, float] | None) -> None:
    video_codec, audio_codec, _ = CONTAINERS[tmp.suffix.lower()]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        for f in frames:  # the concat demuxer takes any names, in this order
            listing.write(f"file '{f.resolve()}'\nduration {1.0 / fps:.9f}\n")
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", listing.name]
    if audio:
        cmd += ["-ss", f"{audio[1]:.6f}", "-i", str(audio[0]), "-map", "0:v", "-map", "1:a?", "-c:a", audio_codec]
    cmd += ["-r", f"{fps}", "-c:v", video_codec, "-t", f"{len(frames) / fps:.6f}"]
    # yuv420p (what players take) needs even sides: pad by one pixel where a side is odd.
    even = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p"]
    cmd += even if video_codec == "libx264" else ["-q:v", "3"]
    try:
        done = subprocess.run([*cmd, str(tmp)], capture_output=True, text=True)
    finally:
        os.unlink(listing.name)
    if done.returncode != 0:
        raise NstError(f"ffmpeg could not encode {tmp.suffix} video: {done.stderr.strip().splitlines()[-1:]}")


def _opencv(frames: list[Path], tmp: Path, fps: float) -> None:
    import cv2

    def read(frame: Path) -> np.ndarray:
        image = cv2.imread(str(frame))
        if image is None:
            raise NstError(f"{frame}: this stylised frame cannot be read; delete it and run again to remake it")
        return image

    h, w = read(frames[0]).shape[:2]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*CONTAINERS[tmp.suffix.lower()][2]), fps, (w, h))
    if not writer.isOpened():
        raise NstError(f"OpenCV cannot write {tmp.suffix} video here; install ffmpeg or write a folder of frames")
    try:
        for f in frames:
            writer.write(np.ascontiguousarray(read(f)))
    finally:
        writer.release()
