"""Inputs people really have decode upright to RGB; bad files give one clear NstError; writes are atomic."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from nst.engine.errors import NstError
from nst.engine.images import as_image, check_writable, fit_size, read_image, resize, write_image

from .conftest import synthetic

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture
def picture():
    return synthetic(40, 60)


def _close(a, b, tol):
    assert a.shape == b.shape
    assert np.abs(a.astype(np.float64) - b).mean() < tol


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp", ".tif", ".jpg"])
def test_common_formats(tmp_path, picture, ext):
    path = tmp_path / f"p{ext}"
    PIL.fromarray(picture).save(
        path, **({"lossless": True} if ext == ".webp" else {"quality": 95} if ext == ".jpg" else {})
    )
    _close(read_image(path), picture, 4.0 if ext == ".jpg" else 0.01)


def test_gif(tmp_path):
    flat = np.zeros((20, 30, 3), np.uint8)
    flat[:, :15] = (255, 0, 0)
    flat[:, 15:] = (0, 0, 255)
    PIL.fromarray(flat).save(tmp_path / "p.gif")
    _close(read_image(tmp_path / "p.gif"), flat, 1.0)


def test_grayscale(tmp_path, picture):
    gray = picture[:, :, 1]
    PIL.fromarray(gray).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.shape == (40, 60, 3)
    np.testing.assert_array_equal(img[:, :, 0], img[:, :, 2])
    _close(img[:, :, 0], gray, 0.01)


def test_rgba_is_composited_on_white(tmp_path, picture):
    alpha = np.zeros((40, 60), np.uint8)
    alpha[:, 30:] = 255
    PIL.fromarray(np.dstack([picture, alpha])).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.shape == (40, 60, 3)
    assert np.all(img[:, :30] == 255.0)
    _close(img[:, 30:], picture[:, 30:], 0.01)


def test_16_bit_png_keeps_precision(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 3).reshape(8, 8, 3)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), ramp[:, :, ::-1])
    img = read_image(tmp_path / "d.png")
    np.testing.assert_allclose(img, ramp * (255 / 65535), atol=1e-3)
    assert len(np.unique(img)) > 64  # not quantised to 8 bits


def test_cmyk_jpeg(tmp_path):
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:] = (200, 50, 30)
    PIL.fromarray(flat).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    _close(read_image(tmp_path / "c.jpg"), flat, 4.0)


def test_exif_rotated_photo_comes_out_upright(tmp_path, picture):
    im = PIL.fromarray(picture)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    img = read_image(tmp_path / "r.jpg")
    assert img.shape == (60, 40, 3)
    _close(img, np.rot90(picture, k=-1), 4.0)


def test_a_dark_float_array_stays_dark():
    """A fade's frame, brightest value 1 of 255, is not taken as a 0..1 image and multiplied to white."""
    dark = np.zeros((8, 8, 3), np.float32)
    dark[2:4, 2:4] = 1.0
    np.testing.assert_array_equal(as_image(dark), dark)
    mask = np.zeros((8, 8), np.float32)
    mask[:, :4] = 1.0  # a float mask holds weights 0..1: white where it is 1
    assert as_image(mask, float_white=1.0)[0, 0, 0] == 255.0


def test_a_float_mask_beyond_one_is_refused():
    from nst.engine.inputs import load_masks

    with pytest.raises(NstError, match="weights in 0..1"):
        load_masks([np.full((8, 8), 255.0)], 1, 8, 8)
    np.testing.assert_array_equal(load_masks([np.full((8, 8), 0.5)], 1, 8, 8)[0], np.full((8, 8), 0.5, np.float32))


def test_arrays_are_accepted(picture):
    np.testing.assert_array_equal(as_image(picture), picture.astype(np.float32))
    np.testing.assert_allclose(as_image(picture.astype(np.float64)), picture)  # float arrays are 0..255 too
    assert as_image(picture[:, :, 0]).shape == (40, 60, 3)
    with pytest.raises(NstError, match="HxWx3"):
        as_image(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(NstError, match="NaN"):
        as_image(np.full((4, 4, 3), np.nan, np.float32))


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not an image"), "not a readable image"),
        (lambda p: p.mkdir(), "folder"),
    ],
)
def test_bad_files(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(NstError, match=message) as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_a_pipe_or_a_device_is_refused_not_read(tmp_path):
    """A FIFO would block the read forever and /dev/zero has no end; neither is an 'empty' file."""
    os.mkfifo(tmp_path / "pipe.png")
    for path in (tmp_path / "pipe.png", "/dev/zero"):
        with pytest.raises(NstError, match="not a regular file"):
            read_image(path)


def test_transfer_refuses_a_pipe_as_input(tmp_path):
    """From the command line: refused in one line, not left waiting in the memory check's header read."""
    import subprocess
    import sys

    os.mkfifo(tmp_path / "pipe.png")
    write_image(tmp_path / "style.png", synthetic(40, 40))
    r = subprocess.run([sys.executable, "-m", "nst", "transfer", tmp_path / "pipe.png", tmp_path / "style.png", "-o",
                        tmp_path / "o.png", "--size", "64"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "pipe.png: not a regular file" in r.stderr and len(r.stderr.splitlines()) == 1


def test_truncated_file(tmp_path, picture):
    PIL.fromarray(synthetic(200, 300)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    with pytest.raises(NstError, match="corrupt|truncated"):
        read_image(tmp_path / "cut.png")


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming a huge size, followed by no real data."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    """A header claiming 50000x50000 (7.5 GB decoded) is refused before opencv sees it."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(50000, 50000) + b"\0" * 100)
    with pytest.raises(NstError, match="50000x50000.*megapixels"):
        read_image(bomb)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".gif", ".bmp", ".webp"])
def test_header_dimensions(tmp_path, picture, ext):
    from nst.engine.imageheader import dimensions

    path = tmp_path / f"p{ext}"
    PIL.fromarray(picture).save(path)
    assert dimensions(path.read_bytes()) == (60, 40)


def test_unreadable_file(tmp_path, picture):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = tmp_path / "locked.png"
    PIL.fromarray(picture).save(path)
    path.chmod(0)
    with pytest.raises(NstError, match="cannot be read"):
        read_image(path)


def test_fit_size_and_resize(picture):
    assert fit_size(40, 60, 30) == (20, 30)
    assert fit_size(60, 40, 30) == (30, 20)
    small = resize(picture.astype(np.float32), 20, 30)
    big = resize(picture.astype(np.float32), 80, 120)
    assert small.shape == (20, 30, 3) and big.shape == (80, 120, 3)
    assert big.min() >= 0 and big.max() <= 255


def test_write_is_atomic_and_leaves_nothing_behind(tmp_path, picture, monkeypatch):
    out = tmp_path / "out.png"
    out.write_bytes(b"the user's old file")
    real_fdopen = os.fdopen

    def failing_fdopen(fd, mode):
        fh = real_fdopen(fd, mode)
        fh.write = lambda data: (_ for _ in ()).throw(OSError(28, "No space left on device"))
        return fh

    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    with pytest.raises(NstError, match="No space left"):
        write_image(out, picture)
    monkeypatch.undo()
    assert out.read_bytes() == b"the user's old file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    write_image(out, picture)
    np.testing.assert_array_equal(read_image(out), picture)


@pytest.mark.parametrize("name,message", [("out.xyz", "unknown output format"), ("missing/out.png", "does not exist")])
def test_check_writable(tmp_path, name, message):
    with pytest.raises(NstError, match=message):
        check_writable(tmp_path / name)


def test_outputs_that_are_folders_pipes_or_links(tmp_path, picture):
    """A folder or a pipe is refused by what it is; a link is written through, and stays a link."""
    import os

    (tmp_path / "afile").write_text("mine")
    with pytest.raises(NstError, match="afile is a file, not a folder"):
        check_writable(tmp_path / "afile" / "out.png")
    with pytest.raises(NstError, match="is a folder"):
        check_writable(tmp_path)
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(NstError, match="not a regular file"):
        check_writable(tmp_path / "pipe.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "target.png")
    write_image(tmp_path / "link.png", picture)
    assert (tmp_path / "link.png").is_symlink() and read_image(tmp_path / "target.png").shape == picture.shape


def test_16_bit_output(tmp_path):
    ramp = (np.linspace(0, 65535, 48).reshape(4, 4, 3)).astype(np.uint16)
    write_image(tmp_path / "deep.png", ramp)
    np.testing.assert_allclose(read_image(tmp_path / "deep.png"), ramp * (255 / 65535), atol=1e-3)


def test_written_files_get_the_usual_permissions(tmp_path, picture):
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "out.png", picture)
    finally:
        os.umask(old)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o644
