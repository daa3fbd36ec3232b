"""The exported bundle (docs/bundle.md): its contract, its losses against the engine's, its gradient."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nst.bundle.export import MAX_BYTES, SCHEDULE, export_folder
from nst.engine.errors import NstError

from .conftest import stripes, synthetic

SCALARS = ("lr", "content_weight", "style_weight", "tv_weight")


def session(folder, name):
    return ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])


def step_feeds(x, targets, opts, t=1, m=None, v=None, lr=5.0):
    feeds = {"image": x, "m": np.zeros_like(x) if m is None else m, "v": np.zeros_like(x) if v is None else v}
    feeds |= {"t": np.array(t, np.float32), "lr": np.array(lr, np.float32)}
    feeds |= {k: np.array(getattr(opts, k), np.float32) for k in SCALARS[1:]}
    return feeds | targets


def test_contract(bundle_dir):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["format"] == "nst-bundle" and manifest["version"] == 1
    total = 0
    for name, digest in manifest["files"].items():
        data = (bundle_dir / name).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == digest
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
        assert {op.domain for op in model.opset_import} == {""} and {n.domain for n in model.graph.node} <= {""}
    assert total <= MAX_BYTES
    assert manifest["content_layers"] == {"relu4_2": 1.0} and len(manifest["style_layers"]) == 4
    assert set(manifest["defaults"]) >= {"lr", "content_weight", "style_weight", "tv_weight", "iterations", "scales"}
    assert manifest["defaults"]["scales"] == SCHEDULE["scales"] and "CC BY 4.0" in manifest["licence"]["weights"]
    features, step = session(bundle_dir, "features.onnx"), session(bundle_dir, "step.onnx")
    targets = [o.name for o in features.get_outputs()]
    assert targets == ["content.relu4_2"] + [f"gram.{layer}" for layer in manifest["style_layers"]]
    want = ["image", "m", "v", "t", *SCALARS, *targets]
    assert [i.name for i in step.get_inputs()] == want
    outputs = ["image_next", "m_next", "v_next", "loss", "content_loss", "style_loss", "tv_loss"]
    assert [o.name for o in step.get_outputs()] == outputs


def test_export_refuses_to_overwrite_and_bad_layers(tmp_path):
    (tmp_path / "manifest.json").write_text("mine")
    with pytest.raises(NstError, match="already holds manifest.json"):
        export_folder(tmp_path)
    assert (tmp_path / "manifest.json").read_text() == "mine"
    with pytest.raises(NstError):
        export_folder(tmp_path / "new", style_layers="relu9_9")
    with pytest.raises(NstError, match="at least one layer"):
        export_folder(tmp_path / "new", style_layers="")  # not silently the preset's
    with pytest.raises(NstError, match="float32 can hold"):
        export_folder(tmp_path / "new", style_layers="relu1_1:1e40")
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(NstError, match="cannot create this folder"):
        export_folder(tmp_path / "afile" / "sub")
    assert not (tmp_path / "new").exists()


def test_files_are_written_all_or_none(tmp_path):
    """A later file that cannot be written leaves none of the earlier ones behind (nor temporary files)."""
    from nst.engine.images import write_files

    (tmp_path / "b").write_bytes(b"mine")
    with pytest.raises(NstError, match="does not exist"):
        write_files({tmp_path / "a": b"1", tmp_path / "b": b"2", tmp_path / "missing" / "c": b"3"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and (tmp_path / "b").read_bytes() == b"mine"
    write_files({tmp_path / "a": b"1", tmp_path / "b": b"2"})
    assert (tmp_path / "a").read_bytes() == b"1" and (tmp_path / "b").read_bytes() == b"2"


def engine_case(st, size=64, pooling="max"):
    """The engine's prepared fused objective (nst preset, Adam) for a synthetic pair."""
    kwargs = dict(size=size, iterations=20, optimizer="adam", path="fused", scales=1, lr=5.0, pooling=pooling)
    content, style = synthetic(size * 3 // 4, size), stripes(size, size - 9)
    return st.prepare(content, [style], preset="nst", **kwargs), (content, style, kwargs)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_features_and_first_step_match_the_engine(st, bundle_dir, tmp_path, pooling):
    if pooling != "max":
        bundle_dir = tmp_path / "bundle"
        export_folder(bundle_dir, pooling=pooling)
    prepared, (content, style, _) = engine_case(st, 77, pooling)  # odd sizes: pooling rounds differently
    objective, x0 = prepared.objective, prepared.x0
    style_x = np.ascontiguousarray(style.astype(np.float32).transpose(2, 0, 1)[None])
    features = session(bundle_dir, "features.onnx")
    for name, value in zip([o.name for o in features.get_outputs()], features.run(None, {"image": x0})):
        if name.startswith("content."):
            want = objective.content_target[name[8:]]
            np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    grams = dict(zip([o.name for o in features.get_outputs()], features.run(None, {"image": style_x})))
    for layer, want in objective.style_target.items():
        np.testing.assert_allclose(grams[f"gram.{layer}"], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    targets = {f"content.{k}": v for k, v in objective.content_target.items()}
    targets |= {f"gram.{k}": v for k, v in objective.style_target.items()}
    _, _, _, loss, content_loss, style_loss, tv_loss = session(bundle_dir, "step.onnx").run(
        None, step_feeds(x0, targets, prepared.options)
    )
    objective.loss_and_grad(x0)
    want = objective.last
    # The default's W2 takes the style's square root once by eigh in the engine, at each step by Newton-Schulz
    # in the bundle: they agree to about 1e-5.
    assert float(style_loss) == pytest.approx(want.style, rel=1e-4)
    assert float(tv_loss) == pytest.approx(want.tv, rel=1e-6)
    assert float(content_loss) == pytest.approx(want.content, rel=1e-6, abs=1e-6 * want.total)
    assert float(loss) == pytest.approx(want.total, rel=1e-4)


def test_w2_and_replicate_padding_bundle_matches_the_engine(st, tmp_path):
    """A bundle exported with --style-loss w2 --padding replicate: its targets (raw moments) equal the
    engine's, and its first step's losses the engine's host path (eigh there, Newton-Schulz here)."""
    folder = tmp_path / "w2"
    export_folder(folder, style_loss="w2", padding="replicate")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["style_loss"], manifest["padding"]) == ("w2", "replicate")
    content, style = synthetic(48, 64), stripes(64, 55)
    prepared = st.prepare(
        content,
        [style],
        preset="nst",
        size=64,
        scales=1,
        iterations=5,
        path="split",
        style_loss="w2",
        padding="replicate",
    )
    objective, x0 = prepared.objective, prepared.x0
    style_x = np.ascontiguousarray(style.astype(np.float32).transpose(2, 0, 1)[None])
    features = session(folder, "features.onnx")
    names = [o.name for o in features.get_outputs()]
    targets = {k: v for k, v in zip(names, features.run(None, {"image": x0})) if k.startswith("content.")}
    moments = {k: v for k, v in zip(names, features.run(None, {"image": style_x})) if k.startswith("gram.")}
    for layer, want in objective.style_target.items():
        np.testing.assert_allclose(moments[f"gram.{layer}"], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    *_, loss, content_loss, style_loss, tv_loss = session(folder, "step.onnx").run(
        None, step_feeds(x0, targets | moments, prepared.options)
    )
    objective.loss_and_grad(x0)
    want = objective.last
    assert float(style_loss) == pytest.approx(want.style, rel=2e-3)
    assert float(content_loss) == pytest.approx(want.content, rel=1e-5, abs=1e-6 * want.total)
    assert float(tv_loss) == pytest.approx(want.tv, rel=1e-6)


def test_twenty_steps_stay_within_one_percent_of_device_adam(st, bundle_dir):
    prepared, (content, style, kwargs) = engine_case(st, 128)
    engine = []
    st.stylize(content, [style], preset="nst", callback=lambda p: engine.append(p.losses["loss"]), **kwargs)
    features, step = session(bundle_dir, "features.onnx"), session(bundle_dir, "step.onnx")
    names = [o.name for o in features.get_outputs()]
    x = prepared.x0
    style_x = np.ascontiguousarray(style.astype(np.float32).transpose(2, 0, 1)[None])
    targets = {k: v for k, v in zip(names, features.run(None, {"image": x})) if k.startswith("content.")}
    targets |= {k: v for k, v in zip(names, features.run(None, {"image": style_x})) if k.startswith("gram.")}
    m = v = np.zeros_like(x)
    losses = []
    for t in range(1, 21):
        x, m, v, loss, *_ = step.run(None, step_feeds(x, targets, prepared.options, t, m, v))
        losses.append(float(loss))
    np.testing.assert_allclose(losses, engine, rtol=1e-2)
    assert losses[-1] < 0.5 * losses[0]


def test_step_gradient_matches_finite_differences(bundle_dir):
    """With zero moments at t = 1, m_next = (1 - beta1) g: the step's gradient of the loss it reports."""
    rng = np.random.default_rng(0)
    content = synthetic(36, 40).astype(np.float32).transpose(2, 0, 1)[None].copy()
    style = stripes(40, 40).astype(np.float32).transpose(2, 0, 1)[None].copy()
    features, step = session(bundle_dir, "features.onnx"), session(bundle_dir, "step.onnx")
    names = [o.name for o in features.get_outputs()]
    targets = {k: v for k, v in zip(names, features.run(None, {"image": content})) if k.startswith("content.")}
    targets |= {k: v for k, v in zip(names, features.run(None, {"image": style})) if k.startswith("gram.")}

    class Opts:
        content_weight, style_weight, tv_weight = 5.0, 100.0, 0.01

    x = np.clip(content + rng.normal(0, 20, content.shape), 20, 235).astype(np.float32)
    x_next, m_next, *_ = step.run(None, step_feeds(x, targets, Opts))
    grad = m_next / np.float32(0.1)
    for _ in range(3):
        # Random directions leaning on the gradient's sign: a pure-noise direction is nearly orthogonal to
        # the gradient, and the small change it makes drowns in float32 rounding and ReLU/max-pool kinks.
        d = (np.sign(grad) + rng.normal(0, 1, x.shape)).astype(np.float32)
        plus, minus = x + np.float32(0.002) * d, x - np.float32(0.002) * d  # the float32 points give the step
        change = float(step.run(["loss"], step_feeds(plus, targets, Opts))[0])
        change -= float(step.run(["loss"], step_feeds(minus, targets, Opts))[0])
        predicted = float(np.vdot(grad.astype(np.float64), plus.astype(np.float64) - minus))
        assert change == pytest.approx(predicted, rel=2e-3)
    moved = np.abs(grad) > 1e-3  # there Adam's first step is lr times the gradient's sign
    np.testing.assert_allclose(x_next[moved], np.clip(x - 5.0 * np.sign(grad), 0, 255)[moved], atol=1e-2)


def test_cli_export_writes_a_bundle_and_errors_in_one_line(tmp_path):
    import subprocess
    import sys

    def nst(*args):
        command = [sys.executable, "-m", "nst", "export", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    done = nst(tmp_path / "b", "--style-layers", "relu1_1,relu2_1:0.5", "--pooling", "avg")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["style_layers"] == {"relu1_1": 1.0, "relu2_1": 0.5} and manifest["pooling"] == "avg"
    # shallow layers only: the graphs hold just the weights up to relu4_2
    assert sum((tmp_path / "b" / name).stat().st_size for name in manifest["files"]) < 30e6
    for args in ([tmp_path / "b"], [tmp_path / "c", "--style-layers", "relu1_1:x"]):
        done = nst(*args)
        assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
