"""Transfer features beyond the core: multi-scale, colour preservation and matching, initialisations,
16-bit output.  Each test fails if its feature is missing or wrong."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nst.engine.colour import match_colours, preserve_colours
from nst.engine.errors import NstError
from nst.engine.images import read_image, save_result, write_image
from nst.engine.inputs import initial_image
from nst.engine.presets import resolve_options
from nst.engine.schedule import fitting_scales, next_scale_start, scale_schedule
from nst.kernels.colour import RGB_TO_YCBCR, affine_colour, match_histograms, rgb_to_ycbcr, ycbcr_to_rgb

from .conftest import stripes, synthetic


def test_multiscale_runs_coarse_to_fine_and_ends_at_the_size(st):
    seen = []
    out = st.transfer(
        synthetic(60, 90),
        [stripes(50, 50)],
        size=256,
        scales=3,
        scale_iterations="3,2,1",
        callback=lambda p: seen.append((p.scale, p.scales, p.iteration, p.image().shape)),
    )
    assert out.shape == (171, 256, 3)
    assert [s[0] for s in seen] == [0, 0, 0, 1, 1, 2] and seen[0][1] == 3
    assert [s[3][1] for s in seen] == [64, 64, 64, 128, 128, 256]


def test_progress_weighs_each_scale_by_its_work(st):
    """One overall fraction: the coarse scales (a sixteenth and a quarter of the pixels) are quick, so the
    bar is far from done when they end, and reaches 1 at the last iteration."""
    seen = []
    st.transfer(
        synthetic(60, 90),
        [stripes(50, 50)],
        size=256,
        scales=3,
        iterations=2,
        callback=lambda p: seen.append((p.scale, p.iteration, p.fraction)),
    )
    fractions = [f for _, _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    pixels = [43 * 64, 85 * 128, 171 * 256]
    end_of = {s: f for s, _, f in seen}  # each scale's last fraction
    assert end_of[0] == pytest.approx(pixels[0] / sum(pixels), abs=1e-3) and end_of[0] < 0.05
    assert end_of[1] == pytest.approx(sum(pixels[:2]) / sum(pixels), abs=1e-3) and end_of[1] < 0.25


def test_work_shares_and_time_left():
    from nst.engine.progress import overall_fraction, seconds_left, work_shares

    shares = work_shares([64 * 64, 128 * 128, 256 * 256], [100, 100, 100])
    assert shares == pytest.approx((1 / 21, 4 / 21, 16 / 21))
    assert overall_fraction(shares, 1, 50, 100) == pytest.approx(3 / 21)  # not the equal shares' 1/2
    assert seconds_left(30.0, 0.25) == pytest.approx(90.0) and seconds_left(1.0, 0.0) is None
    assert work_shares([0], [0]) == (1.0,)


def test_the_cli_shows_one_progress_line_for_the_whole_run():
    """Every scale advances the same bar (the part done by work), never a new bar per scale."""
    from nst.cli.progressbar import STEPS, ProgressBar, clock
    from nst.engine.progress import Progress, work_shares

    shares = work_shares([1, 4, 16], [10, 10, 10])
    bar = ProgressBar()
    for scale in range(3):
        for k in (0, 9):
            bar(Progress(k, 10, {"loss": 1.0}, 0.1, np.zeros(1), scale=scale, scales=3, shares=shares))
            expected = (sum(shares[:scale]) + shares[scale] * (k + 1) / 10) * STEPS
            assert bar._progress.tasks[0].completed == round(expected)
    assert len(bar._progress.tasks) == 1 and bar._progress.tasks[0].completed == STEPS
    assert clock(None) == "-:--" and clock(75) == "1:15" and clock(3725) == "1:02:05"


def test_scale_schedule():
    opts = resolve_options("johnson", size=512, scales=3, iterations=50)
    assert scale_schedule(opts) == ([128, 256, 512], [50, 50, 50])
    assert scale_schedule(resolve_options("nst")) == ([128, 256, 512], [200, 100, 140])
    assert scale_schedule(resolve_options("nst", size=100)) == ([64, 100], [100, 140])
    assert scale_schedule(resolve_options("nst", size=64)) == ([64], [140])  # small sizes collapse
    assert scale_schedule(resolve_options("nst", iterations=7)) == ([128, 256, 512], [7, 7, 7])
    opts = resolve_options("johnson", size=500, scales="200,300,500", scale_iterations="5,4,3")
    assert scale_schedule(opts) == ([200, 300, 500], [5, 4, 3])
    for bad in ({"scales": "300,200,500"}, {"scales": "128,256"}, {"scales": 3, "scale_iterations": "1,2"}):
        with pytest.raises(NstError):
            scale_schedule(resolve_options("johnson", size=500, **bad))


def test_wide_pictures_leave_out_the_coarse_scales_too_thin_for_the_network(st):
    """A 4:1 panorama at 256 px would be 16 px high at the quarter scale: that scale is left out, with one
    warning, and the run ends at the size asked (the nst preset's schedule)."""
    from nst.engine.errors import NstWarning

    seen = []
    with pytest.warns(NstWarning, match="coarse scale.*of 64 px: left out"):
        out = st.transfer(
            synthetic(40, 160), [stripes(50, 50)], "nst", size=256, iterations=1,
            callback=lambda p: seen.append((p.scales, p.image().shape[1])),
        )  # fmt: skip
    assert out.shape == (64, 256, 3) and seen == [(2, 128), (2, 256)]
    with pytest.warns(NstWarning, match="of 64, 128 px"):
        assert fitting_scales([64, 128, 256, 512], [4, 3, 2, 1], 20, 160) == ([256, 512], [2, 1])


def test_wide_clip_runs_from_the_command_line(tmp_path):
    """A 2.39:1 picture at --size 128 with the default preset: one warning line, exit 0."""
    write_image(tmp_path / "wide.png", synthetic(54, 129))
    write_image(tmp_path / "style.png", stripes(40, 40))
    r = subprocess.run(
        [sys.executable, "-m", "nst", "transfer", tmp_path / "wide.png", tmp_path / "style.png", "-o",
         tmp_path / "o.png", "--size", "128", "--iterations", "1", "-q"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0 and r.stderr.count("\n") == 1 and r.stderr.startswith("warning: "), r.stderr
    assert read_image(tmp_path / "o.png").shape == (54, 128, 3)


def test_finer_scale_start_adds_back_the_content_detail():
    from nst.engine.images import resize

    content = synthetic(96, 128).astype(np.float32)
    coarse = resize(content, 48, 64)
    # A coarse result equal to the content taken down: the finer scale starts at the content itself.
    np.testing.assert_allclose(next_scale_start(coarse, content), content, atol=1e-3)
    # Otherwise: the result enlarged, plus the content's detail band (zero-mean, fine only).
    result = np.clip(coarse + 40.0, 0, 255)
    start = next_scale_start(result, content)
    detail = content - resize(coarse, 96, 128)
    np.testing.assert_allclose(start, np.clip(resize(result, 96, 128) + detail, 0, 255), atol=1e-3)
    assert np.abs(detail).mean() > 1.0 and abs(detail.mean()) < 1.0


def test_content_detail_is_added_only_for_runs_started_from_the_content(st, monkeypatch):
    import nst.engine.transfer as transfer
    from nst.engine.images import resize

    calls = []
    monkeypatch.setattr(transfer, "next_scale_start", lambda r, c: calls.append(r.shape) or resize(r, *c.shape[:2]))
    for init in ("content", "random"):
        st.stylize(synthetic(48, 48), [stripes(48, 48)], size=96, scales=2, iterations=2, init=init)
    assert calls == [(64, 64, 3)]  # scales 64 and 96 px, once, for the content start only


def test_second_scale_starts_from_the_upsampled_first(st):
    seen = {}

    def callback(p):
        seen.setdefault(p.scale, []).append(p.image_float())

    result = st.stylize(
        synthetic(48, 48),
        [stripes(48, 48)],
        size=96,
        scales=2,
        iterations=3,
        init="random",
        optimizer="adam",
        callback=callback,
    )
    assert result.shape == (96, 96, 3)
    import cv2

    # Adam returns the image after its last step: the fine scale starts from that, upsampled.
    coarse_last = seen[0][-1]
    fine_first = seen[1][0]
    up = cv2.resize(coarse_last, (96, 96), interpolation=cv2.INTER_CUBIC)
    assert np.abs(fine_first - up).mean() < 15  # one Adam step (lr 10) away at most
    assert np.abs(fine_first - up).mean() < 0.3 * np.abs(fine_first - fine_first.mean()).mean()


def test_ycbcr_kernels_match_numpy():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (7, 9, 3)).astype(np.float32)
    want = img.astype(np.float64) @ RGB_TO_YCBCR.T.astype(np.float64) + [0, 128, 128]
    np.testing.assert_allclose(rgb_to_ycbcr(img), want, atol=1e-3)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(img)), img, atol=1e-3)
    m = rng.normal(size=(3, 3)).astype(np.float32)
    b, a = rng.normal(size=3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    np.testing.assert_allclose(affine_colour(img, m, b, a), (img - b) @ m.T + a, rtol=1e-5, atol=1e-3)


def test_histogram_matching_matches_numpy_quantiles():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 255, (40, 50, 3)).astype(np.float32)
    ref = (rng.beta(2, 5, (30, 30, 3)) * 255).astype(np.float32)
    out = match_histograms(src, ref)
    for k in range(3):
        np.testing.assert_allclose(
            np.percentile(out[:, :, k], [10, 50, 90]), np.percentile(ref[:, :, k], [10, 50, 90]), atol=2.0
        )


def test_preserve_colours_keeps_the_content_chroma(st):
    content = synthetic(48, 64, seed=4)
    out = st.transfer(content, [stripes(48, 48)], size=64, iterations=4, preserve_colors="ycbcr")
    chroma_out = rgb_to_ycbcr(out.astype(np.float32))[:, :, 1:]
    chroma_in = rgb_to_ycbcr(content.astype(np.float32))[:, :, 1:]
    assert np.abs(chroma_out - chroma_in).max() < 1.5  # equal within uint8 rounding
    plain = st.transfer(content, [stripes(48, 48)], size=64, iterations=8)
    assert np.abs(rgb_to_ycbcr(plain.astype(np.float32))[:, :, 1:] - chroma_in).mean() > 3.0


def test_preserve_colours_in_lab():
    rng = np.random.default_rng(2)
    result, content = rng.uniform(30, 220, (2, 10, 12, 3)).astype(np.float32)
    import cv2

    out = preserve_colours(result, content, "lab")
    lab = lambda im: cv2.cvtColor(np.ascontiguousarray(im / 255, dtype=np.float32), cv2.COLOR_RGB2Lab)
    # Lab colours outside the RGB cube are clipped, so compare on average.
    assert np.abs(lab(out)[:, :, 0] - lab(result)[:, :, 0]).mean() < 1.5
    assert np.abs(lab(out)[:, :, 1:] - lab(content)[:, :, 1:]).mean() < 2.0


def test_meancov_matching_gives_the_content_statistics():
    rng = np.random.default_rng(3)
    style = rng.uniform(0, 120, (40, 40, 3)).astype(np.float32)
    style[:, :, 2] = style[:, :, 0] * 0.5 + 20 + rng.normal(0, 3, (40, 40))
    content = (rng.normal([150, 100, 60], [20, 15, 10], (50, 50, 3))).astype(np.float32)
    out = match_colours(style, content, "meancov")
    assert out.shape == style.shape
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), content.reshape(-1, 3).mean(axis=0), atol=1.0)
    np.testing.assert_allclose(
        np.cov(out.reshape(-1, 3), rowvar=False), np.cov(content.reshape(-1, 3), rowvar=False), rtol=0.05, atol=3.0
    )


def test_match_colors_changes_the_style_targets(st):
    content = synthetic(40, 40)
    style = stripes(40, 40)
    plain = st.prepare(content, [style], size=40).objective.style_target
    matched = st.prepare(content, [style], size=40, match_colors="histogram").objective.style_target
    assert not np.allclose(plain["relu1_1"], matched["relu1_1"])


@pytest.mark.parametrize("kind", ["noise", "random", "noisy-content"])
def test_initialisations(kind):
    content = np.full((1, 3, 20, 30), 100.0, np.float32)
    mean = np.array([123.68, 116.779, 103.939], np.float32).reshape(1, 3, 1, 1)
    x = initial_image(kind, content, mean, 3)
    assert x.shape == content.shape and x.dtype == np.float32
    np.testing.assert_array_equal(x, initial_image(kind, content, mean, 3))
    assert not np.array_equal(x, initial_image(kind, content, mean, 4))
    if kind == "noisy-content":  # 0.6 U(-20, 20) + 0.4 (content - mean) + mean
        np.testing.assert_allclose(
            x - (0.4 * (content - mean) + mean), np.clip(x - (0.4 * (content - mean) + mean), -12, 12)
        )
    if kind == "random":
        assert x.min() >= 0 and x.max() <= 255 and x.std() > 60


def test_sixteen_bit_output_keeps_precision(tmp_path):
    ramp = np.linspace(0, 255, 30 * 40 * 3, dtype=np.float32).reshape(30, 40, 3)
    save_result(tmp_path / "deep.png", ramp, bit_depth=16)
    back = read_image(tmp_path / "deep.png")
    assert len(np.unique(back)) > 256
    np.testing.assert_allclose(back, ramp, atol=0.01)
    with pytest.raises(NstError, match="16-bit"):
        save_result(tmp_path / "deep.jpg", ramp, bit_depth=16)


def test_jpeg_quality_is_applied(tmp_path):
    img = synthetic(64, 64).astype(np.float32)
    save_result(tmp_path / "lo.jpg", img, quality=20)
    save_result(tmp_path / "hi.jpg", img, quality=98)
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size


def test_meancov_matching_of_a_grey_style_stays_finite():
    grey = np.repeat(np.linspace(0, 255, 400, dtype=np.float32).reshape(20, 20, 1), 3, axis=2)
    content = np.random.default_rng(0).uniform(0, 255, (20, 20, 3)).astype(np.float32)
    out = match_colours(grey, content, "meancov")
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 255


def test_luminance_transfer_matches_numpy():
    from nst.kernels.colour import YCBCR_TO_RGB, luminance_transfer

    rng = np.random.default_rng(5)
    result, content = rng.uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    y = result.astype(np.float64) @ RGB_TO_YCBCR[0].astype(np.float64)
    chroma = content.astype(np.float64) @ RGB_TO_YCBCR[1:].T.astype(np.float64)
    offsets = chroma @ YCBCR_TO_RGB[:, 1:].T.astype(np.float64)  # (H, W, 3)
    y = np.clip(y, (-offsets).max(axis=2), (255 - offsets).min(axis=2))
    want = np.clip(y[..., None] + offsets, 0, 255)
    np.testing.assert_allclose(luminance_transfer(result, content), want, atol=1e-3)


def test_a_zero_mask_means_no_style_gradient_outside_it(st):
    mask = np.zeros((48, 48), np.float32)
    mask[:, :24] = 1.0  # the style applies on the left half only
    prepared = st.prepare(
        synthetic(48, 48), [stripes(48, 48)], size=48, style_masks=(mask,), content_weight=0.0, tv_weight=0.0
    )
    objective = prepared.objective
    acts = objective.runner.forward(np.random.default_rng(0).uniform(0, 255, (1, 3, 48, 48)).astype(np.float32))
    _, style, grads = objective.layer_grads(acts)
    assert style > 0
    for layer in ("relu1_1", "relu2_1", "relu3_1"):
        g = grads[layer][0]
        half = g.shape[2] // 2
        assert np.abs(g[:, :, half + 1 :]).max() == 0.0  # right of the mask: nothing
        assert np.abs(g[:, :, : half - 1]).max() > 0.0


def test_masks_split_two_styles_by_region(st):
    left = np.zeros((48, 48), np.float32)
    left[:, :24] = 1
    content = synthetic(48, 48)
    masked = st.prepare(content, [stripes(48, 48), synthetic(48, 48, seed=7)], size=48, style_masks=(left, 1 - left))
    assert len(masked.objective.styles) == 2
    with pytest.raises(NstError, match="one per style"):
        st.prepare(content, [stripes(48, 48)], size=48, style_masks=(left, left))
    with pytest.raises(NstError, match="--path split"):
        st.prepare(content, [stripes(48, 48)], size=48, style_masks=(left,), path="fused")


def test_normalize_gradients_gives_each_layer_unit_l1_times_its_weight(st):
    prepared = st.prepare(
        synthetic(40, 40),
        [stripes(40, 40)],
        size=40,
        normalize_gradients=True,
        content_layers="relu4_2",
        style_layers="relu1_1:2,relu3_1:0.5",
        style_weight=10.0,
        content_weight=3.0,
    )
    acts = prepared.objective.runner.forward(
        np.random.default_rng(1).uniform(0, 255, (1, 3, 40, 40)).astype(np.float32)
    )
    _, _, grads = prepared.objective.layer_grads(acts)
    assert np.abs(grads["relu1_1"]).sum() == pytest.approx(20.0, rel=1e-3)
    assert np.abs(grads["relu3_1"]).sum() == pytest.approx(5.0, rel=1e-3)
    assert np.abs(grads["relu4_2"]).sum() == pytest.approx(3.0, rel=1e-3)


def test_mask_kernels_match_numpy():
    from nst.kernels import normalize_l1, scale_columns

    rng = np.random.default_rng(4)
    f = rng.normal(size=(5, 12)).astype(np.float32)
    m = rng.uniform(size=12).astype(np.float32)
    np.testing.assert_allclose(scale_columns(f, m), f * m[None, :], rtol=1e-6)
    g = rng.normal(size=50).astype(np.float32)
    np.testing.assert_allclose(normalize_l1(g, 3.0), 3.0 * g / (np.abs(g).sum() + 1e-8), rtol=1e-5)


def test_stopping_in_a_coarse_scale_ends_the_whole_run_at_the_requested_size(st):
    seen = []

    def callback(p):
        seen.append(p.scale)
        if p.iteration == 1:
            p.stop()

    out = st.transfer(synthetic(48, 64), [stripes(48, 48)], size=128, scales=2, iterations=5, callback=callback)
    assert seen == [0, 0] and out.shape == (96, 128, 3)
