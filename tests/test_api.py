"""The Python API hosts embed: arrays in and out, callbacks, early stop, reuse, determinism, no heavy imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nst.engine import NstError, StyleTransfer

from .conftest import stripes, synthetic

SMALL = dict(size=48, iterations=6)


def test_transfer_returns_uint8_rgb_of_the_requested_size(st):
    out = st.transfer(synthetic(60, 90), [stripes(50, 50)], **SMALL)
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgsb", "adam"])
def test_optimizers_lower_the_loss_within_the_budget(st, optimizer):
    seen = []
    st.transfer(
        synthetic(40, 40),
        [stripes(40, 40)],
        size=40,
        iterations=12,
        optimizer=optimizer,
        init="random",
        lr=5.0,
        callback=lambda p: seen.append(p.losses["loss"]),
    )
    assert len(seen) == 12  # exactly the budget of objective evaluations
    assert min(seen[-3:]) < 0.7 * seen[0]


def test_callback_gets_progress_and_can_stop(st):
    calls = []

    def callback(p):
        calls.append((p.iteration, p.iterations, set(p.losses), p.image().shape))
        if p.iteration == 2:
            p.stop()

    st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=50, callback=callback)
    assert [c[0] for c in calls] == [0, 1, 2]
    assert calls[0][1] == 50 and calls[0][2] == {"loss", "content", "style", "tv"} and calls[0][3] == (40, 40, 3)


def test_one_instance_serves_many_transfers_without_rebuilding(st):
    st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=1)
    runners = st._runners.values()
    st.transfer(synthetic(44, 40, seed=3), [stripes(30, 60)], size=40, iterations=1)
    assert [id(r) for r in st._runners.values()] == [id(r) for r in runners]


def test_same_seed_same_image_twice(st):
    a = st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=5, init="random", seed=11)
    b = st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=5, init="random", seed=11)
    c = st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=5, init="random", seed=12)
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)


def test_style_blend_blends_gram_targets(st):
    content, s1, s2 = synthetic(40, 40), stripes(40, 40), synthetic(40, 40, seed=9)
    t1 = st.prepare(content, [s1], size=40).objective.style_target
    t2 = st.prepare(content, [s2], size=40).objective.style_target
    blend = st.prepare(content, [s1, s2], size=40, style_blend="3,1").objective.style_target
    for layer in t1:
        np.testing.assert_allclose(blend[layer], 0.75 * t1[layer] + 0.25 * t2[layer], rtol=1e-4, atol=1e-6)


def test_objective_for_hosts_own_optimizer(st):
    obj = st.objective(synthetic(40, 40), [stripes(40, 40)], size=40)
    x = np.full((1, 3, 40, 40), 128.0, np.float32)
    loss, grad = obj.loss_and_grad(x)
    assert isinstance(loss, float) and grad.shape == x.shape and grad.dtype == np.float32
    loss2, _ = obj.loss_and_grad(x - 2.0 * grad / np.abs(grad).max())
    assert loss2 < loss


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"style_layers": "relu9_9"}, "unknown layer 'relu9_9'"),
        ({"content_layers": "conv4_2"}, "unknown layer"),
        ({"optimizer": "sgd"}, "unknown optimizer"),
        ({"size": 10}, "out of range"),
        ({"iterations": 0}, "at least 1"),
        ({"history": 0}, "--history 0"),
        ({"style_blend": "1,2,3"}, "3 weight"),
        ({"content_weight": -1.0}, "non-negative"),
        ({"colour": "blue"}, "unknown option"),
        ({"init": "/no/such/init.png"}, "no such file"),
        ({"style_loss": "w3"}, "unknown style loss"),
        ({"padding": "mirror"}, "unknown padding"),
        ({"average": 1.0}, "--average 1.0 is out of range"),
        ({"style_size": 8}, "--style-size 8 is out of range"),
        ({"scale_ratio": 1.0}, "--scale-ratio 1.0"),
        ({"beta2": 1.0}, "beta2=1.0"),
    ],
)
def test_bad_options_fail_before_work(st, kwargs, message):
    with pytest.raises(NstError, match=message):
        st.transfer(synthetic(40, 40), [stripes(40, 40)], **kwargs)


def test_cuda_absent_is_a_clear_error():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is present here")
    with pytest.raises(NstError, match="CUDAExecutionProvider"):
        StyleTransfer(device="cuda")


def test_engine_never_imports_torch_tensorflow_or_h5py(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from nst.engine import StyleTransfer\n"
        "img = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)\n"
        "StyleTransfer().transfer(img, [img[::-1]], size=40, iterations=2)\n"
        "bad = [m for m in ('torch', 'tensorflow', 'h5py') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_lbfgs_keeps_pixels_in_range(st):
    seen = []
    out = st.transfer(
        synthetic(48, 48),
        [stripes(48, 48)],
        size=48,
        iterations=30,
        style_weight=1e4,
        init="random",
        callback=lambda p: seen.append(p.losses["loss"]),
    )
    assert len(seen) == 30 and min(seen) < 0.2 * seen[0]
    assert out.min() >= 0 and out.max() <= 255


def test_lbfgs_history_reaches_the_optimizer(st, monkeypatch):
    from nst.engine import PRESETS, optimize

    seen = []
    real = optimize.lbfgs
    monkeypatch.setattr(
        optimize, "lbfgs", lambda *a, **k: seen.append(a[4] if len(a) > 4 else k["history"]) or real(*a, **k)
    )
    runs = [
        st.stylize(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=8, init="random", history=h)
        for h in (1, 30)
    ]
    assert seen == [1, 30]
    assert np.abs(runs[0] - runs[1]).max() > 1.0  # a one-step memory takes other steps
    assert PRESETS["nst"].history == 40 and PRESETS["johnson"].history == 10
    assert PRESETS["nst"].optimizer == "lbfgs" and PRESETS["johnson"].optimizer == "lbfgsb"


def test_averaging_returns_the_mean_of_the_iterates(st, monkeypatch):
    """With --average the result is the bias-corrected moving average of the evaluated images."""
    from nst.engine import transfer as transfer_module

    seen: list[np.ndarray] = []
    real = transfer_module.IterateAverage.update
    monkeypatch.setattr(
        transfer_module.IterateAverage, "update", lambda self, x: (seen.append(np.array(x)), real(self, x))
    )
    out = st.stylize(
        synthetic(40, 40), [stripes(40, 40)], size=40, iterations=6, average=0.5, optimizer="adam", lr=20.0
    )
    weights = np.array([0.5 ** (len(seen) - 1 - i) * 0.5 for i in range(len(seen))])
    want = np.tensordot(weights / weights.sum(), np.stack(seen), axes=1)[0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, np.clip(want, 0, 255), atol=1e-3)
    last = st.stylize(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=6, optimizer="adam", lr=20.0)
    assert np.abs(last - out).max() > 1.0  # without averaging the last iterate comes back


def test_style_size_and_style_at_final_fix_the_style_side_at_every_scale(st, monkeypatch):
    from nst.engine import transfer as transfer_module

    sides: list[int] = []
    real = transfer_module.StyleTransfer.prepare_images

    def spy(self, content_img, style_imgs, opts, init_image=None):
        sides.append(transfer_module.style_side(opts))
        return real(self, content_img, style_imgs, opts, init_image)

    monkeypatch.setattr(transfer_module.StyleTransfer, "prepare_images", spy)
    st.transfer(synthetic(64, 128), [stripes(80, 80)], size=128, scales=2, iterations=2, style_size=80)
    st.transfer(synthetic(64, 128), [stripes(80, 80)], size=128, scales=2, iterations=2, style_at_final=False)
    st.transfer(synthetic(64, 128), [stripes(80, 80)], size=128, scales=2, iterations=2, style_at_final=True)
    final = dict(size=128, scales=2, iterations=2, style_at_final=True, style_scale=0.75)
    st.transfer(synthetic(64, 128), [stripes(80, 80)], **final)
    assert sides == [80, 80, 64, 128, 128, 128, 96, 96]


def test_presets_ck_follows_its_tool():
    from nst.engine.presets import resolve_options
    from nst.engine.schedule import scale_schedule

    ck = resolve_options("ck")
    assert scale_schedule(ck) == ([128, 181, 256, 362, 512], [1000, 500, 500, 500, 500])
    assert (ck.style_loss, ck.optimizer, ck.average, ck.padding, ck.beta2) == ("w2", "adam", 0.99, "replicate", 0.99)
    assert ck.lr == pytest.approx(0.02 * 255) and sum(ck.style_layers.values()) == pytest.approx(1.0)
    assert ck.style_layers["relu1_1"] / ck.style_layers["relu5_1"] == pytest.approx(256)
