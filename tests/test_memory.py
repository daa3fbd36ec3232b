"""The memory estimate made before a run: what it counts, the one-line refusal with what would fit, and
that a refused run does no work."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine import NstError, memory
from nst.engine.memory import check_fits, estimate_peak_mb, largest_side, optimizer_bytes_per_pixel
from nst.engine.runtime import Device

from .conftest import stripes, synthetic


def test_optimizer_arrays_are_counted():
    # scipy L-BFGS-B: 2m + 5 float64 work vectors and two float64 bounds per pixel value
    assert optimizer_bytes_per_pixel("lbfgsb", 10) == 3 * 8 * 27
    # nst's L-BFGS: 2 (m + 1) float32 step slots and 7 float32 images (x, g, its projection, d, trial, best)
    assert optimizer_bytes_per_pixel("lbfgs", 10) == 3 * 4 * 29
    assert optimizer_bytes_per_pixel("adam", 10) == 3 * 4 * 3  # x, m, v in float32
    small, big = (estimate_peak_mb(512 * 512, "fused", "lbfgs", h) for h in (10, 100))
    assert big - small == pytest.approx(512 * 512 * 3 * 4 * 180 / 2**20)


def test_refusal_names_what_would_fit(monkeypatch):
    need = estimate_peak_mb(4096 * 3072, "fused", "lbfgs", 30) * memory.MARGIN
    monkeypatch.setattr(memory, "available_mb", lambda: need / 3)
    with pytest.raises(NstError) as info:
        check_fits(3072, 4096, "fused", "lbfgs", 30)
    message = str(info.value)
    assert message.startswith("a 4096x3072 transfer needs about") and "\n" not in message
    side = largest_side(3072, 4096, need / 3, "fused", "lbfgs", 30)
    assert f"--size {side}" in message and 1000 < side < 4096
    check_fits(side * 3 // 4, side, "fused", "lbfgs", 30)  # what it suggests does fit
    with pytest.raises(NstError):
        check_fits((side + 64) * 3 // 4, side + 64, "fused", "lbfgs", 30)


def test_adam_is_suggested_when_only_the_optimizer_is_too_big(monkeypatch):
    pixels = 2048 * 2048
    between = (estimate_peak_mb(pixels, "fused", "adam") + estimate_peak_mb(pixels, "fused", "lbfgs", 30)) / 2
    monkeypatch.setattr(memory, "available_mb", lambda: between * memory.MARGIN)
    with pytest.raises(NstError, match="--optimizer adam"):
        check_fits(2048, 2048, "fused", "lbfgs", 30)
    check_fits(2048, 2048, "fused", "adam", 30)


def test_gpu_memory_is_checked_on_cuda(monkeypatch):
    from nst.engine import gpumemory

    monkeypatch.setattr(gpumemory, "gpu_free_mb", lambda device_id: 2000.0)
    cuda = Device("cuda", (), "cuda")
    check_fits(256, 256, "fused", "lbfgs", 10, cuda)
    with pytest.raises(NstError, match="GPU memory.*--size"):
        check_fits(2048, 2048, "fused", "lbfgs", 10, cuda)
    monkeypatch.setattr(memory, "available_mb", lambda: 10.0**6)  # the host has room: only the GPU is short
    tile = lambda core: (core + 64) ** 2  # noqa: E731  (a tile's pixels with its halo)
    with pytest.raises(NstError, match="try --tile 256, --size"):
        check_fits(2048, 2048, "split", "lbfgs", 10, cuda, tile_pixels=tile)
    check_fits(2048, 2048, "split", "lbfgs", 10, cuda, network_pixels=tile(256), tile_pixels=tile)  # tiled: fits
    with pytest.raises(NstError, match="try --tile 256, --size"):  # tiled, but too large a tile
        check_fits(2048, 2048, "split", "lbfgs", 10, cuda, network_pixels=tile(1024), tile_pixels=tile)


def test_a_refused_run_does_no_work_and_the_check_can_be_skipped(st, monkeypatch):
    monkeypatch.setattr(memory, "available_mb", lambda: 100.0)
    calls = []
    with pytest.raises(NstError, match="needs about"):
        st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=2, callback=calls.append)
    assert calls == []
    monkeypatch.setenv("NST_MEMORY_CHECK", "0")
    st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=2, callback=calls.append)
    assert len(calls) == 2


def test_scipy_lbfgsb_refusal_suggests_nst_lbfgs(monkeypatch):
    pixels = 2048 * 2048
    between = (estimate_peak_mb(pixels, "fused", "lbfgs", 30) + estimate_peak_mb(pixels, "fused", "lbfgsb", 30)) / 2
    monkeypatch.setattr(memory, "available_mb", lambda: between * memory.MARGIN)
    with pytest.raises(NstError, match="--optimizer lbfgs"):
        check_fits(2048, 2048, "fused", "lbfgsb", 30)


def _png_header_only(path, width: int, height: int, depth: int = 8, colour: int = 2) -> None:
    """A small PNG file whose header declares width x height (its pixel data is a stub)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\0" * 120_000, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_a_png_declaring_a_huge_size_is_refused_from_its_header(st, tmp_path, monkeypatch):
    import cv2

    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 11500, 11500)
    monkeypatch.setattr(memory, "available_mb", lambda: 4000.0)
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded before the memory check"))
    with pytest.raises(NstError) as info:
        st.transfer(str(bomb), [stripes(40, 40)], size=64, iterations=1)
    message = str(info.value)
    assert "bomb.png is 11500x11500" in message and "shrink the image" in message and "\n" not in message
    need = memory.decoded_size(bomb, "content image").decode_mb
    assert 11500**2 * 48 / 2**20 < need < 11500**2 * 50 / 2**20  # 8-bit RGB: the lighter decoding
    _png_header_only(bomb, 11500, 11500, depth=16, colour=6)
    assert memory.decoded_size(bomb, "content image").decode_mb > 11500**2 * 68 / 2**20
    with pytest.raises(NstError, match="style image 1 .*bomb.png is 11500x11500"):
        memory.check_decoding([str(bomb)], "style image", 512, "fused")


def test_the_style_scale_is_counted(st, monkeypatch):
    opts = st.options(size=512, style_scale=8.0, scales=1, iterations=1)
    content, style = synthetic(384, 512), stripes(320, 512)
    demand = memory.transfer_demand(opts, content, [style], "fused", lambda core: 0)
    assert demand["style_pixels"] == 4096 * 2560 and demand["h"] * demand["w"] == 384 * 512
    settings = {k: demand[k] for k in ("network_pixels", "inputs", "style_pixels")}
    with_style = estimate_peak_mb(384 * 512, "fused", opts.optimizer, opts.history, **settings)
    without = estimate_peak_mb(384 * 512, "fused", opts.optimizer, opts.history, inputs=demand["inputs"])
    assert with_style - without > 4096 * 2560 * 500 / 2**20  # the style pass at 4096 px, not the content's size
    monkeypatch.setattr(memory, "available_mb", lambda: without * memory.MARGIN * 1.05)
    with pytest.raises(NstError, match=r"a 512x384 transfer needs about .*--style-scale \d"):
        memory.check_transfer(opts, content, [style], "fused", None, lambda core: 0)
    memory.check_transfer(st.options(size=512, scales=1, iterations=1), content, [style], "fused", None, None)


def test_a_large_jpeg_is_decoded_reduced(tmp_path, monkeypatch):
    import PIL.Image

    from nst.engine.imageheader import jpeg_reduction
    from nst.engine.images import fit_size, read_image, resize, write_image

    picture = synthetic(768, 1024)
    write_image(tmp_path / "big.jpg", picture)
    write_image(tmp_path / "big.png", picture)
    head = (tmp_path / "big.jpg").read_bytes()[:65536]
    assert [jpeg_reduction(head, n) for n in (None, 1024, 600, 512, 300, 256, 100)] == [1, 1, 1, 2, 2, 4, 8]
    assert jpeg_reduction((tmp_path / "big.png").read_bytes()[:65536], 100) == 1  # PNG: no reduced decoding
    small = read_image(tmp_path / "big.jpg", 256)
    assert small.shape == (192, 256, 3)
    assert memory.decoded_size(tmp_path / "big.jpg", "content image", 256).pixels == 192 * 256
    full = read_image(tmp_path / "big.jpg")
    assert full.shape == (768, 1024, 3)
    assert np.abs(small - resize(full, 192, 256)).mean() < 3.0  # the codec's reduction looks like a resize
    im = PIL.Image.fromarray(picture)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: still turned upright when reduced
    im.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    turned = read_image(tmp_path / "turned.jpg", 256)
    assert turned.shape == (256, 192, 3)
    expected = resize(np.rot90(picture, k=-1).astype(np.float32), *fit_size(1024, 768, 256))
    assert np.abs(turned - expected).mean() < 4.0


def test_the_model_covers_the_measured_input_peaks():
    import json
    from pathlib import Path

    results = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/memory_model.json").read_text())
    for row in results["inputs"]["decode"]:
        assert row["model"] >= row["bytes_per_pixel"]
    for row in results["inputs"]["style"]:
        assert 1.0 <= row["estimate_over_measured"] < 1.35, row


def test_nn_refusal_suggests_tiles_that_fit(st, monkeypatch):
    """nnst at 1024 px counts the nn term's arrays; where the whole image does not fit, its tiles may."""
    from nst.engine.memory import neighbour_channels
    from nst.engine.neighbour_tiles import MARGIN
    from nst.engine.tiling import tile_pixels

    opts = st.options("nnst", size=1024)
    layers = list(opts.style_layers)
    args = dict(style_pixels=1024 * 811, neighbour_channels=neighbour_channels(opts))
    assert args["neighbour_channels"] == 2688  # the authors' hypercolumn
    whole = estimate_peak_mb(1024 * 768, "split", "adam", **args)
    tiles = estimate_peak_mb(
        1024 * 768, "split", "adam", network_pixels=tile_pixels(st.spec, layers, 512, MARGIN), **args
    )
    assert tiles < 0.8 * whole and tiles - estimate_peak_mb(1024 * 768, "split", "adam") > 2688 * 1024 * 811 / 4 / 2**20
    monkeypatch.setattr(memory, "available_mb", lambda: (tiles + whole) / 2 * memory.MARGIN)
    with pytest.raises(NstError, match="try --tile 512") as info:
        check_fits(
            768, 1024, "split", "adam", 10, tile_pixels=lambda core: tile_pixels(st.spec, layers, core, MARGIN), **args
        )
    assert "--path" not in str(info.value)  # the nn loss has no fused path to suggest
    check_fits(768, 1024, "split", "adam", 10, network_pixels=tile_pixels(st.spec, layers, 512, MARGIN), **args)
