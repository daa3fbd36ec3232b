"""Reading, checking, resizing and atomically writing images (opencv does the codecs).

Everything comes back as RGB float32 HxWx3 in 0..255, whatever the file held: grayscale, alpha
(composited on white), 16-bit, CMYK JPEG, BMP/WebP/GIF/TIFF, EXIF-rotated photos (turned upright).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from .errors import NstError
from .imageheader import dimensions, jpeg_reduction

MAX_PIXELS = 1 << 27  # 134 megapixels: larger headers are refused before decoding (decompression bombs)
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

WRITABLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_ALPHA_MAGIC = (b"\x89PNG", b"RIFF", b"II*\x00", b"MM\x00*", b"GIF8")


def _cv2():
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:  # a bad file becomes one NstError line, not OpenCV's log lines before it
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    return cv2


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _codec_messages():
    """Hold back what the codec libraries print on stderr (libpng writes its errors there itself) and yield a
    list that receives it; lines of other origin are passed on afterwards."""
    caught: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to guard
            yield caught
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode("utf-8", "replace").splitlines()
            caught += [line for line in lines if line.startswith("libpng")]
            others = [line for line in lines if not line.startswith("libpng")]
            if others:
                os.write(2, ("\n".join(others) + "\n").encode())


def _to_float_rgb(array: np.ndarray, what: str, float_white: float = 255.0) -> np.ndarray:
    """Any HxW / HxWx{1,3,4} integer or float array (RGB order) -> float32 HxWx3 in 0..255. A float array's
    white is `float_white`, never guessed from its values: a dark frame's maximum may be 1 or less."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise NstError(f"{what}: expected an HxWx3 RGB image array, got shape {a.shape}")
    if a.dtype == np.uint8:
        scale = 1.0
    elif a.dtype == np.uint16:
        scale = 255.0 / 65535.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise NstError(f"{what}: the image holds NaN or infinite values")
        scale = 255.0 / float_white
    else:
        raise NstError(f"{what}: unsupported pixel type {a.dtype}; use uint8, uint16 or float")
    rgb = a.astype(np.float32) * np.float32(scale)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    elif rgb.shape[2] == 4:
        alpha = rgb[:, :, 3:4] / 255.0
        rgb = rgb[:, :, :3] * alpha + 255.0 * (1.0 - alpha)  # composite on white
    if not np.all(np.isfinite(rgb)):
        raise NstError(f"{what}: the image holds NaN or infinite values")
    return np.ascontiguousarray(np.clip(rgb, 0.0, 255.0))


def read_image(path: str | os.PathLike, longest: int | None = None) -> np.ndarray:
    """Decode an image file to RGB float32 HxWx3 in 0..255, with a one-line NstError for any problem.
    `longest`: the side the caller needs; a JPEG much larger than that is decoded reduced, in the codec."""
    cv2 = _cv2()
    p = Path(path)
    if not p.exists():
        raise NstError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise NstError(f"{p}: is a folder, not an image file")
    if not p.is_file():  # reading a pipe waits for a writer, a device may never end
        raise NstError(f"{p}: not a regular file (a pipe or a device); give a PNG, JPEG, WebP, BMP, GIF or TIFF file")
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise NstError(f"{p}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if data.size == 0:
        raise NstError(f"{p}: the file is empty; give a PNG, JPEG, WebP, BMP, GIF or TIFF image")
    dims = dimensions(data[: 1 << 16].tobytes())
    if dims and dims[0] * dims[1] > MAX_PIXELS:
        raise NstError(
            f"{p}: the image is {dims[0]}x{dims[1]}, larger than {MAX_PIXELS // 1_000_000} megapixels; shrink it first"
        )
    try:
        factor = jpeg_reduction(data[: 1 << 16].tobytes(), longest)
        flags = getattr(cv2, f"IMREAD_REDUCED_COLOR_{factor}") if factor > 1 else cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
        with _codec_messages() as messages:
            bgr = cv2.imdecode(data, flags)  # applies EXIF orientation
            if bgr is not None and data[:4].tobytes() in _ALPHA_MAGIC:
                raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
                if raw is not None and raw.ndim == 3 and raw.shape[2] == 4 and raw.shape[:2] == bgr.shape[:2]:
                    bgr = raw
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):
            raise NstError(
                f"{p}: the image is larger than {MAX_PIXELS // 1_000_000} megapixels; shrink it first"
            ) from None
        raise NstError(f"{p}: cannot be decoded as an image; it may be corrupt or truncated") from None
    if bgr is None:
        reason = f" ({messages[0]})" if messages else ""
        raise NstError(
            f"{p}: not a readable image (corrupt, truncated or an unsupported format){reason}; "
            "give a PNG, JPEG, WebP, BMP, GIF or TIFF file"
        )
    if bgr.ndim == 3:
        bgr = bgr[:, :, [2, 1, 0, 3][: bgr.shape[2]]]  # BGR(A) -> RGB(A)
    return _to_float_rgb(bgr, str(p))


def as_image(source, what: str = "image", longest: int | None = None, float_white: float = 255.0) -> np.ndarray:
    """A path or an HxWx3 array -> RGB float32 HxWx3 in 0..255 (`longest`: as for read_image). Float arrays
    hold 0..`float_white` (255 for images, as `stylize` returns them; 1 for masks)."""
    if isinstance(source, (str, os.PathLike)):
        return read_image(source, longest)
    if isinstance(source, np.ndarray):
        return _to_float_rgb(source, what, float_white)
    raise NstError(f"{what}: expected a file path or an HxWx3 uint8 RGB array, got {type(source).__name__}")


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (what a result was made from), read in blocks; one NstError line if unreadable."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise NstError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return h.hexdigest()


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (a batch's content images, a video's frames)."""
    root = Path(folder)
    if not root.is_dir():
        raise NstError(f"{root}: not a folder; give the folder that holds the images")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NstError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def fit_size(h: int, w: int, longest: int) -> tuple[int, int]:
    """(height, width) with the longest side equal to `longest`, aspect ratio kept."""
    scale = longest / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def fit_image(image: np.ndarray, longest: int) -> tuple[int, int]:
    """`fit_size` for an HxW(xC) image."""
    h, w = image.shape[:2]
    return fit_size(h, w, longest)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an HxWx3 float32 image (area filter when shrinking, bicubic when enlarging)."""
    cv2 = _cv2()
    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return np.clip(cv2.resize(image, (width, height), interpolation=interp), 0.0, 255.0)


def check_writable(path: str | os.PathLike, probe: bool = True) -> Path:
    """Fail early when an image cannot be written: unknown extension, missing or read-only folder."""
    p = Path(path)
    if p.is_dir():
        raise NstError(f"{p}: is a folder; give an output file name such as out.png")
    if p.suffix.lower() not in WRITABLE:
        raise NstError(f"{p}: unknown output format {p.suffix or '(none)'!r}; use one of {', '.join(WRITABLE)}")
    return check_folder(p, probe)


def image_suffix(suffix: str) -> str:
    """An output format given as '.png' or 'png' -> '.png'; anything unknown is one NstError line."""
    text = suffix if suffix.startswith(".") else f".{suffix}"
    if text.lower() not in WRITABLE:
        raise NstError(f"--suffix {suffix!r}: unknown output format; use one of {', '.join(WRITABLE)}")
    return text


def check_folder(path: str | os.PathLike, probe: bool = True) -> Path:
    """Fail early when an output file cannot be written: missing folder, one that takes no new files (read-only,
    or a system folder such as /proc: `probe` creates and removes a file to know), or a folder's name. A
    symbolic link is written through (the path returned is its target's); a pipe or device is refused."""
    p = Path(path)
    if p.is_symlink():
        p = p.resolve()
    folder = p.parent if str(p.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise NstError(f"{p}: {folder} is a file, not a folder; choose another output path")
    if not folder.is_dir():
        raise NstError(f"{p}: the folder {folder} does not exist; create it first")
    if p.is_dir():
        raise NstError(f"{p}: is a folder; give an output file name such as out.png")
    if p.exists() and not p.is_file():
        raise NstError(f"{p}: is not a regular file (a pipe or a device); give an output file name such as out.png")
    if not os.access(folder, os.W_OK):
        raise NstError(f"{p}: the folder {folder} is not writable; choose another output path")
    if probe:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".nst-probe.", dir=folder)
        except OSError as exc:
            reason = exc.strerror or exc
            raise NstError(
                f"{p}: the folder {folder} takes no new files ({reason}); choose another output path"
            ) from None
        os.close(fd)
        os.unlink(tmp)
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> Path:
    """Encode an HxWx3 RGB uint8/uint16 image and move it into place atomically (never half-written)."""
    cv2 = _cv2()
    p = check_writable(path, probe=False)  # writing the temporary file is the probe
    params = []
    if p.suffix.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif p.suffix.lower() == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    ok, buf = cv2.imencode(p.suffix.lower(), np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise NstError(f"{p}: opencv could not encode this image as {p.suffix}")
    return write_bytes(p, buf.tobytes())


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write a file atomically: a temporary file in the same folder, moved into place when complete."""
    p, fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise NstError(f"{p}: could not be written ({exc.strerror or exc}); nothing was changed") from None
        raise
    return move_into_place(tmp, p)


def write_files(files: dict[Path, bytes]) -> None:
    """Write several files all or none: each to a temporary file beside it, renamed into place only when every
    one is complete, so a full disk or an interrupt leaves no half-written set behind."""
    staged: list[tuple[str, Path]] = []
    path = None
    try:
        for path, data in files.items():
            p, fd, tmp = temporary_beside(path)
            staged.append((tmp, p))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
    except BaseException as exc:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise NstError(f"{path}: could not be written ({exc.strerror or exc}); nothing was changed") from None
        raise
    for tmp, p in staged:
        move_into_place(tmp, p)


def temporary_beside(path: str | os.PathLike) -> tuple[Path, int, str]:
    """(path, fd, temporary name): an open temporary file in `path`'s folder, to be moved into place."""
    p = check_folder(path, probe=False)  # the temporary file is the probe
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent if str(p.parent) else ".")
    except OSError as exc:
        raise NstError(f"{p}: could not be written ({exc.strerror or exc}); nothing was changed") from None
    return p, fd, tmp


def move_into_place(tmp: str, path: Path) -> Path:
    """Give a finished temporary file the usual permissions and rename it over `path` in one step."""
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise NstError(f"{path}: could not be written ({exc.strerror or exc}); nothing was changed") from None
        raise
    return path


def check_output(path: str | os.PathLike, bit_depth: int = 8, quality: int = 95) -> Path:
    """All output checks that can be made before a run: path, format, bit depth, quality."""
    p = check_writable(path)
    check_format(p.suffix, bit_depth, quality, p)
    return p


def check_format(suffix: str, bit_depth: int = 8, quality: int = 95, path: Path | None = None) -> None:
    """The checks of an output format that need no file: bit depth and quality for this suffix."""
    if bit_depth not in (8, 16):
        raise NstError(f"--bit-depth {bit_depth}: use 8 or 16")
    if bit_depth == 16 and suffix.lower() not in (".png", ".tif", ".tiff"):
        raise NstError(f"{path or suffix}: 16-bit output needs a .png or .tif file name")
    if not 1 <= quality <= 100:
        raise NstError(f"--quality {quality}: use 1..100")


def save_result(path: str | os.PathLike, image: np.ndarray, bit_depth: int = 8, quality: int = 95) -> Path:
    """Write an HxWx3 float32 0..255 result as 8-bit, or 16-bit (PNG/TIFF) keeping the optimiser's precision."""
    p = check_output(path, bit_depth, quality)
    top = 255.0 if bit_depth == 8 else 65535.0
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scaled = np.clip(np.floor(image.astype(np.float64) * (top / 255.0) + 0.5), 0, top).astype(dtype)
    return write_image(p, scaled, quality)
