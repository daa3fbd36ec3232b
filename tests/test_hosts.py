"""The three hosts of a bundle (hosts/python, hosts/node, hosts/web in headless Chromium) agree: the same
bundle and images, 20 Adam steps at 128 px, the same losses at every step and final images within a level."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.hosts_speed import CHROMIUM, browse, serve

from .conftest import need

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PYTHON_HOST = [sys.executable, str(ROOT / "hosts" / "python" / "stylize_bundle.py")]
NODE_HOST = ["node", str(ROOT / "hosts" / "node" / "stylize.mjs")]
ARGS = ["--size", "128", "--iterations", "20", "--scales", "1", "--threads", "2"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """A public-domain content and style pair as 128 px PNGs."""
    folder = tmp_path_factory.mktemp("pair")
    content, style = folder / "content.png", folder / "style.png"
    Image.open(EXAMPLES / "woman-with-hat-matisse.jpg").convert("RGB").resize((96, 128)).save(content)
    Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((128, 101)).save(style)
    return content, style


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def run_host(command: list[str], out: Path) -> tuple[list[dict], np.ndarray]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    return records(done.stdout), np.asarray(Image.open(out).convert("RGB"), np.float64)


@pytest.fixture(scope="module")
def python_run(bundle_dir, pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("py") / "out.png"
    return run_host([*PYTHON_HOST, *map(str, pair), "-o", str(out), "--bundle", str(bundle_dir), *ARGS], out)


def assert_same(run, reference, rel):
    (got, image), (want, want_image) = run, reference
    assert [r["iteration"] for r in got] == [r["iteration"] for r in want] and len(want) > 1
    np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in want], rtol=rel)
    assert image.shape == want_image.shape and np.abs(image - want_image).mean() <= 1.0


def test_python_host_runs_the_transfer(python_run):
    losses = [r["loss"] for r in python_run[0]]
    # The default's W2 loss starts lower relative to its optimum than Gram's did: it falls by about half in 20 steps.
    assert len(losses) == 20 and losses[-1] < 0.7 * losses[0] and losses == sorted(losses, reverse=True)


def test_python_host_refuses_a_changed_bundle(bundle_dir, pair, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["files"]["step.onnx"] = "0" * 64
    (broken / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.png"
    done = subprocess.run([*PYTHON_HOST, *map(str, pair), "-o", str(out), "--bundle", str(broken)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode != 0 and "does not match" in done.stderr and not out.exists()


def node_ready() -> None:
    need(shutil.which("node") is not None, "node is not on PATH")
    modules = ROOT / "hosts" / "node" / "node_modules"
    need(all((modules / name).is_dir() for name in ("onnxruntime-node", "sharp")), "run npm ci in hosts/node")


def test_node_host_matches_python(bundle_dir, pair, python_run, tmp_path):
    node_ready()
    out = tmp_path / "out.png"
    script = ROOT / "hosts" / "node" / "stylize.mjs"
    run = run_host(["node", str(script), *map(str, pair), "-o", str(out), "--bundle", str(bundle_dir), *ARGS], out)
    assert_same(run, python_run, 1e-4)


def test_node_host_bad_input_is_one_line(bundle_dir, pair, tmp_path):
    node_ready()
    script = ROOT / "hosts" / "node" / "stylize.mjs"
    for extra in (["--bundle", str(tmp_path / "none")], ["--bundle", str(bundle_dir), "--size", "x"]):
        done = subprocess.run(["node", str(script), *map(str, pair), "-o", str(tmp_path / "o.png"), *extra],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


@pytest.fixture(scope="module")
def web_folder(tmp_path_factory, pair):
    """`nst export --web` into a fresh folder, with the pair beside the page."""
    need((ROOT / "hosts" / "web" / "node_modules" / "onnxruntime-web").is_dir(), "run npm ci in hosts/web")
    from nst.bundle.export import export_folder

    folder = tmp_path_factory.mktemp("web")
    export_folder(folder, web=True)
    for path in pair:
        shutil.copy(path, folder / path.name)
    return folder


def browser_ready() -> None:
    need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "playwright for Python is not installed (pip install -e '.[test]')")


def test_browser_matches_python(web_folder, pair, python_run):
    query = "content=content.png&style=style.png&size=128&iterations=20&scales=1&threads=2&backend=wasm&autorun=1"
    browser_ready()
    started = time.perf_counter()
    run = browse(web_folder, query, "window.nstRun.done")
    assert run["error"] is None, run["error"]
    assert run["isolated"] and run["backend"] == "wasm, 2 thread(s)", "COOP/COEP headers give WebAssembly threads"
    h, w = run["size"]
    image = np.asarray(run["pixels"], np.float64).reshape(h, w, 4)[:, :, :3]
    assert_same((run["records"], image), python_run, 1e-3)
    assert time.perf_counter() - started < 900


def test_browser_page_reads_as_the_server_page(web_folder):
    """A person's run of the page: 256 px shown and kept (a warning above it), a bundled painting, one
    progress bar by work, no scale under the engine's 64 px floor, the result beside the photo, sharp when
    enlarged, in nst serve's own stylesheet."""
    from playwright.sync_api import sync_playwright

    browser_ready()
    server, url = serve(web_folder)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 820})
            page.goto(url)
            page.wait_for_function("document.getElementById('status').textContent.startsWith('Choose')")
            assert page.input_value("#size") == "256" and page.text_content("#size-out") == "256"
            for hidden in ("#frame", "#compare", "#bar", "#download", "#iterations"):
                assert not page.is_visible(hidden), hidden
            css = (ROOT / "nst" / "serve" / "static" / "style.css").read_text()
            assert page.evaluate("fetch('style.css').then(r => r.text())") == css  # one stylesheet, copied
            assert "monospace" not in page.evaluate("getComputedStyle(document.getElementById('status')).fontFamily")
            page.eval_on_selector("#size", "el => { el.value = 512; el.dispatchEvent(new Event('input')); }")
            assert "tens of minutes" in page.text_content("#size-hint")
            assert "warn" in page.get_attribute("#size-hint", "class")
            page.set_input_files("#content", str(web_folder / "content.png"))
            page.click("img[alt='The Shipwreck']")  # a painting bundled with the page
            page.eval_on_selector("#size", "el => { el.value = 96; el.dispatchEvent(new Event('input')); }")
            page.click("#advanced summary")
            page.fill("#iterations", "2")
            page.click("#start")
            page.wait_for_function("window.nstRun.done", timeout=600_000)
            run = page.evaluate("JSON.parse(JSON.stringify(window.nstRun))")
            assert run["error"] is None, run["error"]
            sides = sorted({r["size"] for r in run["records"]})
            assert sides == [64, 96] and len(run["records"]) == 4  # 24 and 48 px raised to 64, run once
            assert page.text_content("#status").startswith("Done after ")
            assert page.is_visible("#compare") and not page.is_visible("#bar")
            natural, shown = page.evaluate("[after.naturalWidth, after.getBoundingClientRect().width]")
            assert max(run["size"]) == 96 and natural == run["size"][1] and shown % natural == 0 and shown > natural
            assert page.evaluate("getComputedStyle(after).imageRendering") == "pixelated"
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def webgpu_folder(tmp_path_factory, pair):
    """The page with a W2 bundle on the shallow layers: SwiftShader emulates every kernel, and the 512-channel
    layers' Newton-Schulz products would take minutes a step there."""
    need((ROOT / "hosts" / "web" / "node_modules" / "onnxruntime-web").is_dir(), "run npm ci in hosts/web")
    from nst.bundle.export import export_folder

    folder = tmp_path_factory.mktemp("webgpu")
    export_folder(folder, web=True, style_loss="w2", style_layers="relu1_1,relu2_1,relu3_1")
    for path in pair:
        shutil.copy(path, folder / path.name)
    return folder


def test_browser_webgpu_matches_python(webgpu_folder, pair, tmp_path):
    """WebGPU (without a GPU, Chromium's SwiftShader adapter, which emulates every kernel: so small and short)."""
    web_folder = webgpu_folder
    browser_ready()
    args = ["--size", "42", "--iterations", "3", "--scales", "1"]
    bundle = web_folder / "bundle"
    want = run_host([*PYTHON_HOST, *map(str, pair), "--bundle", str(bundle), *args, "-o",
                     str(tmp_path / "p.png")], tmp_path / "p.png")  # fmt: skip
    query = "content=content.png&style=style.png&size=42&iterations=3&scales=1&backend=webgpu&autorun=1"
    run = browse(web_folder, query, "window.nstRun.done", webgpu=True)
    assert run["error"] is None, run["error"]
    assert run["backend"].startswith("webgpu") and run["adapter"]["vendor"], run.get("adapter")
    h, w = run["size"]
    image = np.asarray(run["pixels"], np.float64).reshape(h, w, 4)[:, :, :3]
    assert_same((run["records"], image), want, 1e-3)


def test_browser_refuses_webgpu_it_lacks(web_folder):
    browser_ready()
    run = browse(web_folder, "content=content.png&style=style.png&backend=webgpu&autorun=1", "window.nstRun.done")
    assert "no WebGPU adapter" in run["error"]


def test_node_and_python_resize_and_schedule_alike(bundle_dir, pair, tmp_path):
    """Coarse to fine at 96 px (resized images, each finer start): the same losses."""
    node_ready()
    args = ["--size", "96", "--iterations", "2", "--threads", "2"]
    common = [*map(str, pair), "--bundle", str(bundle_dir), *args, "-o"]
    python = run_host([*PYTHON_HOST, *common, str(tmp_path / "p.png")], tmp_path / "p.png")
    script = ROOT / "hosts" / "node" / "stylize.mjs"
    node = run_host(["node", str(script), *common, str(tmp_path / "n.png")], tmp_path / "n.png")
    # 1/4 and 1/2 of 96 px (24 and 48) are both raised to nst's 64 px floor, so that size runs once
    assert [r["size"] for r in python[0]] == [64, 64, 96, 96] == [r["size"] for r in node[0]]
    # The resampling's sums round a pixel differently now and then, which Adam and the W2 term's Newton-Schulz
    # iterations amplify: a few 1e-4 apart, not bit for bit.
    np.testing.assert_allclose([r["loss"] for r in node[0]], [r["loss"] for r in python[0]], rtol=3e-4)
    assert np.abs(node[1] - python[1]).mean() <= 1.0
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["defaults"]["style_at_final"] = not manifest["defaults"].get("style_at_final", False)
    flipped = bundle_copy(bundle_dir, tmp_path / "flipped", manifest)
    common = [*map(str, pair), "--bundle", str(flipped), *args, "-o"]
    python_f = run_host([*PYTHON_HOST, *common, str(tmp_path / "pf.png")], tmp_path / "pf.png")
    node_f = run_host(["node", str(script), *common, str(tmp_path / "nf.png")], tmp_path / "nf.png")
    np.testing.assert_allclose([r["loss"] for r in node_f[0]], [r["loss"] for r in python_f[0]], rtol=1e-4)
    losses = lambda run: np.array([r["style_loss"] for r in run[0]])  # noqa: E731
    assert np.abs(losses(python_f)[:2] / losses(python)[:2] - 1).min() > 0.01  # the coarse scale's targets differ


def hosts(name: str) -> list[str]:
    if name == "node":
        node_ready()
    return PYTHON_HOST if name == "python" else NODE_HOST


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> dict[str, Path]:
    """A thin PNG, a file that is no image, a JPEG turned by its EXIF tag, a 16-bit grey PNG, a PNG with alpha,
    a GIF with a transparent colour, a CMYK JPEG, a PNG whose header claims 400 megapixels, a PNG with a
    damaged EXIF block, a 32-bit integer TIFF."""
    folder = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((6, 200, 3)) * 255).astype(np.uint8)).save(folder / "thin.png")
    (folder / "text.png").write_text("not an image")
    turned = Image.open(EXAMPLES / "woman-with-hat-matisse.jpg").convert("RGB").resize((64, 48))
    exif = turned.getexif()
    exif[0x0112] = 6  # shown turned a quarter clockwise
    turned.save(folder / "turned.jpg", exif=exif, quality=90)
    Image.fromarray((rng.random((40, 50)) * 65535).astype(np.uint16)).save(folder / "grey16.png")
    noise = (rng.random((48, 64, 4)) * 255).astype(np.uint8)
    Image.fromarray(noise, "RGBA").save(folder / "alpha.png")  # every level of transparency
    gif = Image.fromarray(noise[:, :, :3]).quantize(16)
    gif.save(folder / "clear.gif", transparency=3)  # one palette colour transparent
    Image.fromarray(noise).convert("RGB").convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    huge = io.BytesIO()
    Image.new("RGB", (1, 1)).save(huge, "PNG")
    for name, side in (("huge", 20000), ("vast", 100000)):  # headers claiming 400 and 10000 megapixels
        ihdr = b"IHDR" + struct.pack(">II", side, side) + huge.getvalue()[24:29]
        patched = huge.getvalue()[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + huge.getvalue()[33:]
        (folder / f"{name}.png").write_bytes(patched)
    os.mkfifo(folder / "fifo.png")  # reading it would wait for a writer forever
    Image.fromarray(noise[:, :, :3]).save(folder / "badexif.png", exif=b"Exif\x00\x00not a TIFF block")
    Image.fromarray((rng.random((48, 64)) * 1e9).astype(np.int32)).save(folder / "int32.tif")
    return {path.stem: path for path in folder.iterdir()}


def display_p3_png(path: Path) -> Path:
    """An RGB PNG tagged with a Display P3 profile (written by sharp: Pillow has none to embed)."""
    script = (
        "const sharp = require('module').createRequire(process.argv[1] + '/')('sharp');"
        "const px = Buffer.from(Array.from({length: 48 * 64 * 3}, (_, i) => (i * 37) % 256));"
        "sharp(px, {raw: {width: 64, height: 48, channels: 3}}).withIccProfile('p3').png().toFile(process.argv[2])"
        ".catch((e) => { console.error(e.message); process.exit(1); });"
    )
    subprocess.run(["node", "-e", script, str(ROOT / "hosts" / "node"), str(path)], check=True, timeout=60)
    return path


@pytest.mark.parametrize("host", ["python", "node"])
def test_hosts_refuse_bad_requests_in_one_line(host, bundle_dir, pair, odd_images, tmp_path):
    """Each refused before any step, one line, status 2, nothing written; inputs untouched."""
    content, style = map(str, pair)
    out = str(tmp_path / "o.png")
    cases = {
        "size 0": [content, style, "-o", out, "--size", "0"],
        "size 100000": [content, style, "-o", out, "--size", "100000"],
        "iterations 0": [content, style, "-o", out, "--iterations", "0"],
        "scales 9": [content, style, "-o", out, "--scales", "9"],
        "give a size of 1050 or more": [str(odd_images["thin"]), style, "-o", out, "--size", "64"],
        "cannot be read as an image": [str(odd_images["text"]), style, "-o", out],
        "does not exist": [content, style, "-o", str(tmp_path / "none" / "o.png")],
        "one of the inputs": [content, style, "-o", content],
        "is a folder": [content, style, "-o", str(tmp_path)],
        "not a folder": [content, style, "-o", out + "/"],
        "ending in .png": [content, style, "-o", str(tmp_path / "o.psd")],
        "--bogus": [content, style, "-o", out, "--bogus"],
        "--threads 100000": [content, style, "-o", out, "--threads", "100000"],
        "over 134 megapixels": [str(odd_images["huge"]), style, "-o", out],
        "give an 8- or 16-bit PNG, JPEG, WebP, GIF or TIFF image": [str(odd_images["int32"]), style, "-o", out],
        "too long": [content, style, "-o", str(tmp_path / ("a" * 300 + ".png"))],
        "vast.png: the image is 100000x100000, over 134 megapixels": [str(odd_images["vast"]), style, "-o", out],
        '--size needs a whole number written in digits, not " 64"': [content, style, "-o", out, "--size", " 64"],
        '--size needs a whole number written in digits, not "-64"': [content, style, "-o", out, "--size", "-64"],
        '--threads needs a whole number written in digits, not "-1"': [content, style, "-o", out, "--threads", "-1"],
        "fifo.png: not a regular file": [str(odd_images["fifo"]), style, "-o", out],
        "/dev/zero: not a regular file": [content, "/dev/zero", "-o", out],
        "fifo.png is not a regular file (a pipe or a device)": [content, style, "-o", str(odd_images["fifo"])],
        "the folder /proc takes no new files": [content, style, "-o", "/proc/nst-out.png"],
    }
    before = Path(content).read_bytes()
    for expected, args in cases.items():
        done = subprocess.run([*hosts(host), *args, "--bundle", str(bundle_dir)], capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith("error: "), (expected, done.stderr[-500:])
        assert expected in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
        assert not done.stdout and list(tmp_path.iterdir()) == []
        refusals.setdefault(expected, {})[host] = done.stderr.replace(str(tmp_path), "TMP")
    assert Path(content).read_bytes() == before


refusals: dict[str, dict[str, str]] = {}  # what each host said to each case above


def test_hosts_refuse_alike():
    """Both hosts refuse every case of the table above with the same line, bar the argument parsers' own
    wording of an unknown option and the decoders' own reason (Pillow's, sharp's) for a file they cannot read."""
    both = {case: said for case, said in refusals.items() if len(said) == 2}
    if len(both) < len(refusals) or not both:
        pytest.skip("needs both hosts' runs of test_hosts_refuse_bad_requests_in_one_line")
    same = lambda line: re.sub(r"as an image \(.*\);", "as an image (...);", line)
    differ = [case for case, said in both.items() if same(said["python"]) != same(said["node"]) and case != "--bogus"]
    assert not differ, {case: both[case] for case in differ}


@pytest.mark.parametrize(
    "images",
    [("turned", "grey16"), ("alpha", "clear"), ("cmyk", "p3"), ("badexif", "turned")],
    ids=["exif-turn,16-bit-grey", "alpha,gif-transparency", "cmyk,display-p3", "damaged-exif,exif-turn"],
)
def test_hosts_decode_alike(images, bundle_dir, odd_images, tmp_path):
    """Python (Pillow) and Node (sharp) see the same pixels: EXIF turns applied, 16-bit grey to its high byte,
    transparency composited on white, CMYK inverted plainly, ICC profiles not applied (as Chromium is asked),
    a damaged EXIF block ignored. `--size=64` and `-o=FILE` are understood by both."""
    node_ready()
    files = {**odd_images, "p3": display_p3_png(tmp_path / "p3.png")}
    args = [str(files[name]) for name in images] + ["--bundle", str(bundle_dir)]
    args += ["--size=64", "--iterations", "2", "--scales", "1"]
    python = run_host([*PYTHON_HOST, *args, f"-o={tmp_path / 'p.png'}"], tmp_path / "p.png")
    node = run_host([*NODE_HOST, *args, f"-o={tmp_path / 'n.png'}"], tmp_path / "n.png")
    assert python[1].shape == node[1].shape == ((64, 48, 3) if images[0] == "turned" else (48, 64, 3))
    np.testing.assert_allclose([r["loss"] for r in node[0]], [r["loss"] for r in python[0]], rtol=1e-6)


BOMB_LIMIT = Image.MAX_IMAGE_PIXELS


def test_hosts_write_lossless_tiff_alike(bundle_dir, pair, tmp_path):
    node_ready()
    args = [*map(str, pair), "--bundle", str(bundle_dir), "--size", "64", "--iterations", "2", "--scales", "1", "-o"]
    python = run_host([*PYTHON_HOST, *args, str(tmp_path / "p.tif")], tmp_path / "p.tif")
    node = run_host([*NODE_HOST, *args, str(tmp_path / "n.tif")], tmp_path / "n.tif")
    assert np.array_equal(python[1], node[1])


def python_library():
    """hosts/python/nst_bundle.py, the Python host's library, as a host application would import it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nst_bundle", ROOT / "hosts" / "python" / "nst_bundle.py")
    host = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(host)
    return host


def test_python_library_raises_what_the_command_line_prints(bundle_dir, pair, odd_images, tmp_path):
    """Embedded, the Python host's library raises BundleError (one line) where the command exits."""
    host = python_library()
    bundle = host.Bundle(str(bundle_dir), threads=1)
    with pytest.raises(host.BundleError, match="^size 0: give a whole number"):
        host.plan(bundle.manifest, 0, None, None)
    with pytest.raises(host.BundleError, match="is not a readable bundle"):
        host.Bundle(str(tmp_path))
    with pytest.raises(host.BundleError, match="cannot be read as an image"):
        host.load(str(odd_images["text"]), 10**6)
    for size, scales, iterations in [(64.5, None, None), (64, 1.5, None), (64, None, True), ("64", None, None)]:
        with pytest.raises(host.BundleError, match="give"):
            host.plan(bundle.manifest, size, scales, iterations)
    assert Image.MAX_IMAGE_PIXELS == BOMB_LIMIT  # Pillow's own check, left as it was for the application
    content, style = (host.load(str(p), 10**6) for p in pair)
    size, scales, iterations = host.plan(bundle.manifest, 64, 1, 2)
    records = []
    image = host.stylize(bundle, content, [style], size, iterations, scales, bundle.manifest["defaults"],
                         records.append)  # fmt: skip
    assert image.shape == (1, 3, 64, 48) and [r["iteration"] for r in records] == [0, 1]
    go = lambda c, styles: host.stylize(bundle, c, styles, size, iterations, scales, bundle.manifest["defaults"],
                                        records.append)  # fmt: skip
    with pytest.raises(host.BundleError, match="at least one style"):
        go(content, [])
    with pytest.raises(host.BundleError, match="the content image holds values outside 0..255"):
        go(np.full_like(content, np.nan), [style])
    with pytest.raises(host.BundleError, match=r"the style image is uint8 \(64, 48, 3\): give a \(1, 3, H, W\)"):
        go(content, [np.zeros((64, 48, 3), np.uint8)])
    with pytest.raises(host.BundleError, match="the content image is float64"):
        go(content.astype(np.float64), [style])


def test_python_host_composites_on_white_and_inverts_cmyk(odd_images):
    """What the hosts agree on is what nst reads: transparency over white, CMYK by plain inversion."""
    host = python_library()
    rgba = np.asarray(Image.open(odd_images["alpha"]), np.float64)
    a = rgba[..., 3:] / 255
    want = rgba[..., :3] * a + 255 * (1 - a)
    np.testing.assert_allclose(host.load(str(odd_images["alpha"]), 10**6)[0].transpose(1, 2, 0), want, atol=1e-3)
    cmyk = np.asarray(Image.open(odd_images["cmyk"]), np.float64) / 255
    want = 255 * (1 - cmyk[..., :3]) * (1 - cmyk[..., 3:])
    np.testing.assert_allclose(host.load(str(odd_images["cmyk"]), 10**6)[0].transpose(1, 2, 0), want, atol=1e-3)


def damaged(**defaults):
    return lambda m: {**m, "defaults": {**m["defaults"], **defaults}}


DAMAGE = {
    "no defaults": lambda m: {k: v for k, v in m.items() if k != "defaults"},
    "uneven schedule": damaged(scales=[1.0]),
    "no limits": lambda m: {k: v for k, v in m.items() if k != "limits"},
    "a scale of 100": damaged(scales=[0.25, 0.5, 100]),
    "a size of 1e9": damaged(size=10**9),
    "lr NaN": damaged(lr=float("nan")),
    "style_at_final as text": damaged(style_at_final="yes"),
    "iterations as text": damaged(iterations=["200", "150", "200"]),
    "a weight of 1e39": damaged(content_weight=1e39),
    "a layer weight NaN": lambda m: {**m, "content_layers": {"relu4_2": float("nan")}},  # json writes NaN
    "no layers": lambda m: {k: v for k, v in m.items() if not k.endswith("_layers")},
}


@pytest.mark.parametrize("host", ["python", "node"])
@pytest.mark.parametrize("damage", DAMAGE)
def test_hosts_refuse_a_damaged_manifest_in_one_line(host, damage, bundle_dir, pair, tmp_path):
    broken = tmp_path / "bundle"
    broken.mkdir()
    for name in ("features.onnx", "step.onnx"):
        (broken / name).symlink_to(bundle_dir / name)
    manifest = DAMAGE[damage](json.loads((bundle_dir / "manifest.json").read_text()))
    (broken / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.png"
    quick = ["--size", "64", "--iterations", "1", "--scales", "1"]  # a host that takes it is done soon
    done = subprocess.run([*hosts(host), *map(str, pair), "-o", str(out), "--bundle", str(broken), *quick],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "nst export" in done.stderr and not out.exists()
    damage_said.setdefault(damage, {})[host] = done.stderr.replace(str(tmp_path), "TMP")


damage_said: dict[str, dict[str, str]] = {}  # what each host said to each damage above


def test_hosts_refuse_damage_alike():
    """The same line from both hosts for each damaged manifest (NaN, which Python's json reads and the Node
    host's JSON.parse does not, included)."""
    if not damage_said or any(len(said) < 2 for said in damage_said.values()):
        pytest.skip("needs both hosts' runs of test_hosts_refuse_a_damaged_manifest_in_one_line")
    assert all(said["python"] == said["node"] for said in damage_said.values()), damage_said


def bundle_copy(bundle_dir: Path, folder: Path, manifest: dict | None = None, step: bytes | None = None) -> Path:
    """A bundle in `folder`: links to `bundle_dir`'s graphs, or `step` as step.onnx (its hash in the manifest)."""
    folder.mkdir()
    manifest = manifest or json.loads((bundle_dir / "manifest.json").read_text())
    (folder / "features.onnx").symlink_to(bundle_dir / "features.onnx")
    if step is None:
        (folder / "step.onnx").symlink_to(bundle_dir / "step.onnx")
    else:
        (folder / "step.onnx").write_bytes(step)
        manifest["files"]["step.onnx"] = hashlib.sha256(step).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_hosts_refuse_a_pipe_in_the_bundle(bundle_dir, pair, tmp_path):
    """A bundle file that is a pipe is named, not read (the read would wait for a writer forever)."""
    node_ready()
    folder = tmp_path / "bundle"
    folder.mkdir()
    for name in ("features.onnx", "step.onnx"):
        (folder / name).symlink_to(bundle_dir / name)
    os.mkfifo(folder / "manifest.json")
    said = []
    for host in ("python", "node"):
        done = subprocess.run([*hosts(host), *map(str, pair), "-o", str(tmp_path / "o.png"), "--bundle", str(folder)],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 2 and "(manifest.json is not a regular file)" in done.stderr, done.stderr
        said.append(done.stderr)
    assert said[0] == said[1] and len(said[0].splitlines()) == 1


@pytest.mark.parametrize("host", ["python", "node"])
def test_hosts_stop_on_a_loss_that_overflows(host, pair, tmp_path):
    """Weights too large for float32 overflow the gradient: the run stops in one line, as nst's does, instead
    of writing a black image with exit 0 (and the Python host printing "loss": NaN, which is not JSON). A Gram
    bundle's: the W2 term divides its weight by the style's variance, so 3e38 stays finite there."""
    from nst.bundle.export import export_folder

    bundle_dir = tmp_path / "gram"
    export_folder(bundle_dir, preset="johnson")
    manifest = damaged(style_weight=3e38)(json.loads((bundle_dir / "manifest.json").read_text()))
    broken = bundle_copy(bundle_dir, tmp_path / "bundle", manifest)
    out = tmp_path / "out.png"
    command = [*hosts(host), *map(str, pair), "-o", str(out), "--bundle", str(broken), "--size", "64"]
    done = subprocess.run([*command, "--iterations", "2", "--scales", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("error: the loss is not finite at step 0"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and not out.exists()
    assert all(json.loads(line, parse_constant=pytest.fail) for line in done.stdout.splitlines())


@pytest.fixture(scope="module")
def renamed_step(bundle_dir) -> bytes:
    """step.onnx as another version might have it: its input tv_weight renamed."""
    import onnx

    model = onnx.load(str(bundle_dir / "step.onnx"))
    for value in model.graph.input:
        if value.name == "tv_weight":
            value.name = "weight_tv"
    for node in model.graph.node:
        node.input[:] = ["weight_tv" if name == "tv_weight" else name for name in node.input]
    return model.SerializeToString()


@pytest.mark.parametrize("host", ["python", "node"])
def test_hosts_check_the_graphs_against_the_manifest(host, bundle_dir, pair, renamed_step, tmp_path):
    """A graph of another version is named on open, in one line, not in a traceback after the first step."""
    other = bundle_copy(bundle_dir, tmp_path / "bundle", step=renamed_step)
    out = tmp_path / "out.png"
    done = subprocess.run([*hosts(host), *map(str, pair), "-o", str(out), "--bundle", str(other), "--size", "64"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "step.onnx does not fit manifest.json (it has no input tv_weight)" in done.stderr and not out.exists()


@pytest.mark.parametrize("host", ["python", "node"])
def test_hosts_leave_files_alone(host, bundle_dir, pair, tmp_path):
    """A file at a temporary name a host might pick is untouched; nothing lands under $HOME (onnxruntime's
    telemetry, which the hosts turn off, would keep a device id there)."""
    content = tmp_path / "content.png"
    shutil.copy(pair[0], content)
    (tmp_path / ".part-out.png").symlink_to(content.name)
    home = tmp_path / "home"
    home.mkdir()
    command = [*hosts(host), str(content), str(pair[1]), "-o", str(tmp_path / "out.png"), "--bundle", str(bundle_dir)]
    done = subprocess.run([*command, "--size", "64", "--iterations", "1", "--scales", "1"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HOME": str(home)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert content.read_bytes() == pair[0].read_bytes() and (tmp_path / ".part-out.png").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".part-out.png", "content.png", "home", "out.png"]
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("host", ["python", "node"])
def test_interrupted_host_writes_nothing(host, bundle_dir, pair, tmp_path):
    """Ctrl-C mid-run: status 130, one line, no output and no temporary file."""
    import signal

    command = [*hosts(host), *map(str, pair), "-o", str(tmp_path / "o.png"), "--bundle", str(bundle_dir)]
    run = subprocess.Popen([*command, "--size", "128", "--iterations", "500", "--scales", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert run.stdout.readline().startswith("{")  # a step has run
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130 and stderr.strip() == "error: interrupted; nothing was written"
    assert list(tmp_path.iterdir()) == []


def test_browser_says_what_is_wrong(web_folder):
    browser_ready()
    run = browse(web_folder, "content=content.png&style=style.png&size=0&autorun=1", "window.nstRun.done")
    assert run["error"].startswith("size 0: give a whole number of pixels")
    run = browse(web_folder, "content=content.png&style=missing.png&size=64&autorun=1", "window.nstRun.done")
    assert "missing.png: 404" in run["error"]
    run = browse(web_folder, "content=content.png&style=style.png&size=abc&autorun=1", "window.nstRun.done")
    assert run["error"].startswith('size "abc": give a whole number of pixels'), run["error"]


def test_browser_says_when_its_memory_is_full(web_folder):
    """WebAssembly's 4 GB cannot hold a step at 1600 px: the page says so and what to do, not bad_alloc."""
    browser_ready()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((1600, 1600, 3)) * 255).astype(np.uint8)).save(web_folder / "large.png")
    query = "content=large.png&style=style.png&size=1600&iterations=1&scales=1&threads=2&backend=wasm&autorun=1"
    run = browse(web_folder, query, "window.nstRun.done")
    assert run["error"] == (
        "1600 px is more than the browser's WebAssembly memory (4 GB) holds: give a smaller size, or use the Node "
        "or Python host"
    ), run["error"]


@pytest.mark.parametrize(
    "images, rel",
    [(("cmyk", "p3"), 1e-3), (("alpha", "clear"), 5e-3)],  # the canvas composites in 8 bits, not in floats
    ids=["cmyk,p3", "alpha,gif-transparency"],
)
def test_browser_decodes_as_the_hosts_do(images, rel, web_folder, odd_images, tmp_path):
    """Chromium, asked for no colour conversion, sees what Pillow sees; it composites transparency on white
    in its canvas's 8 bits, which may move such a pixel by a level (this noise has every level of alpha)."""
    browser_ready()
    node_ready()  # sharp writes the Display P3 PNG
    files = {**odd_images, "p3": display_p3_png(tmp_path / "p3.png")}
    for name in images:
        shutil.copy(files[name], web_folder / files[name].name)
    args = [str(files[name]) for name in images] + ["--bundle", str(web_folder / "bundle")]
    args += ["--size", "64", "--iterations", "2", "--scales", "1", "-o"]
    want = run_host([*PYTHON_HOST, *args, str(tmp_path / "p.png")], tmp_path / "p.png")
    content, style = (files[name].name for name in images)
    query = f"content={content}&style={style}&size=64&iterations=2&scales=1&backend=wasm&autorun=1"
    run = browse(web_folder, query, "window.nstRun.done")
    assert run["error"] is None, run["error"]
    h, w = run["size"]
    image = np.asarray(run["pixels"], np.float64).reshape(h, w, 4)[:, :, :3]
    assert_same((run["records"], image), want, rel)


def test_page_server_refuses_a_taken_port_in_one_line(web_folder):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, str(web_folder / "serve.py"), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and done.stderr.startswith("error: cannot listen")
    assert len(done.stderr.splitlines()) == 1


def test_python_host_scales_keep_the_engines_64_px_floor():
    """A coarse scale is at least 64 px on its longest side (as nst's schedule), and scales that come out the
    same size run once, with the later scale's iterations: 172 px used to start at 43 px."""
    host = python_library()
    manifest = {"limits": {"min_side": 32}}
    image = np.zeros((1, 3, 300, 451), np.float32)
    assert host.scale_plan(manifest, [image], 172, [0.25, 0.5, 1.0], [200, 150, 200]) == [
        (64, 200),
        (86, 150),
        (172, 200),
    ]
    assert host.scale_plan(manifest, [image], 128, [0.25, 0.5, 1.0], [200, 150, 200]) == [(64, 150), (128, 200)]
    assert host.scale_plan(manifest, [image], 48, [0.25, 0.5, 1.0], [1, 2, 3]) == [(48, 3)]  # never above size
