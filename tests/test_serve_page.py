"""The web page of `nst serve` in Debian's headless chromium (driven by Playwright): token, upload, live progress,
result, download; NST_UPDATE_SCREENSHOTS=1 writes the screenshot to docs/serve_page.png."""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import pytest

from .serving import need

need("fastapi", "nst serve needs its extra")
sync_api = need("playwright.sync_api", "the page test drives chromium with Playwright")

from nst.serve.launch import ServerProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "page-token"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_page_transfers_and_downloads(tmp_path, browser):
    from PIL import Image

    with ServerProcess(tmp_path / "data", token=TOKEN, args=("--workers", 1)) as server:
        page = browser.new_page(viewport={"width": 1100, "height": 820})
        page.goto(server.url + "/")
        page.wait_for_selector("#token-box:not([hidden])")  # the server asked for its token
        # Before any run: no broken image, no empty bar; the jargon waits under "Advanced".
        for hidden in ("#live", "#frame", "#compare", "#bar", "#download", "#iterations", "#loss"):
            assert not page.is_visible(hidden), hidden
        page.fill("#token", TOKEN)
        page.click("#token-save")
        page.set_input_files("#photo", str(ROOT / "examples" / "chelsea.jpg"))
        page.click("img[alt='The Starry Night']")
        page.eval_on_selector("#size", "el => { el.value = 128; el.dispatchEvent(new Event('input')); }")
        page.click("#advanced summary")
        page.fill("#iterations", "5")
        page.click("#start")
        page.wait_for_selector("#download:not([hidden])", timeout=600_000)
        # "It took m:ss" is read from the time line the run showed ("m:ss so far, about m:ss left").
        assert re.fullmatch(r"Done\. Slide to compare .* It took \d+:\d\d\.", page.text_content("#message"))
        assert page.evaluate("losses.length") >= 2  # the loss curve has points
        assert page.get_attribute("#bar", "value") == "1"
        # The result beside the photo, at its own size or a whole multiple of it, in sharp pixels when enlarged.
        assert page.is_visible("#compare") and not page.is_visible("#live")
        natural, shown = page.evaluate("[after.naturalWidth, after.getBoundingClientRect().width]")
        assert natural == 128 and shown % natural == 0 and shown >= natural, (natural, shown)
        rendering = page.evaluate("getComputedStyle(after).imageRendering")
        assert rendering == ("pixelated" if shown > natural else "auto"), rendering
        page.eval_on_selector("#split", "el => { el.value = 20; el.dispatchEvent(new Event('input')); }")
        assert page.evaluate("getComputedStyle(after).clipPath") == "inset(0px 0px 0px 20%)"
        with page.expect_download() as info:
            page.click("#download")
        data = Path(info.value.path()).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and max(image.size) == 128
            assert image.convert("RGB").getextrema() != ((0, 0), (0, 0), (0, 0))  # not a black image
        # The README's picture is refreshed only when asked for: a test run leaves the checkout as it was.
        shot = ROOT / "docs" / "serve_page.png" if os.environ.get("NST_UPDATE_SCREENSHOTS") else tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        page.close()
