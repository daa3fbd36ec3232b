"""The bundle's nn style loss (docs/nnst.md, docs/bundle.md): its graphs against the engine's NeighbourObjective
(style columns, matches, loss and gradient), the step's gradient against finite differences, and the Python,
Node and browser hosts running the same nn transfer."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from nst.bundle.export import NN_FILES, export_folder, nn_schedule
from nst.engine.graphs.hypercolumns import emit_columns
from nst.engine.graphs.onnxbuild import Builder, make_model
from nst.engine.neighbours import Hypercolumns
from nst.engine.presets import NN_LAYERS, PRESETS

from .conftest import stripes, synthetic
from .test_hosts import (
    EXAMPLES,
    NODE_HOST,
    PYTHON_HOST,
    ROOT,
    assert_same,
    browse,
    browser_ready,
    need,
    node_ready,
    python_library,
    run_host,
)


@pytest.fixture(scope="module")
def nn_bundle(tmp_path_factory):
    """A bundle exported with --preset nnst."""
    folder = tmp_path_factory.mktemp("nn_bundle")
    export_folder(folder, preset="nnst")
    return folder


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1)[None])


def test_nn_manifest_and_graphs(nn_bundle):
    manifest = json.loads((nn_bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == {"features.onnx", "step.onnx", *NN_FILES}
    for name in manifest["files"]:
        model = onnx.load(str(nn_bundle / name))
        onnx.checker.check_model(model)
        assert {op.domain for op in model.opset_import} == {""} and {n.domain for n in model.graph.node} <= {""}
    assert manifest["style_loss"] == "nn" and list(manifest["style_layers"]) == list(NN_LAYERS)
    d, nnst = manifest["defaults"], PRESETS["nnst"]
    assert (d["alpha"], d["lr"], d["style_weight"]) == (nnst.alpha, nnst.lr, nnst.style_weight)
    assert d["scales"] == [0.125, 0.25, 0.5, 1.0] == nn_schedule()["scales"] and d["iterations"] == [200] * 4
    assert (d["detail"], d["pyramid"], d["colour_correction"]) == (False, False, False)
    assert manifest["limits"]["block_bytes"] > 0
    step = session(nn_bundle / "step.onnx")
    assert [i.name for i in step.get_inputs()][-3:] == ["nn.style", "nn.centre", "nn.index"]
    assert [o.name for o in session(nn_bundle / "features.onnx").get_outputs()] == ["nn.columns"]


@pytest.mark.parametrize("height, width", [(64, 85), (7, 9), (3, 5)])  # grids of 16x21, 1x2 and 1x1
def test_hypercolumn_graph_equals_the_engines(height, width):
    """The in-graph interpolation matrices (from shapes) give the engine's hypercolumns."""
    shapes = {"relu1_1": (1, 3, 16, 21), "relu2_1": (1, 5, 8, 10), "relu3_1": (1, 4, 1, 5)}
    layers = {"relu1_1": 1.0, "relu2_1": 0.5, "relu3_1": 2.0}
    b = Builder()
    columns, _ = emit_columns(b, "image", layers, {k: s[1] for k, s in shapes.items()})
    b.op("Identity", [columns], "out", "columns")
    inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, None, None, None]) for k in ["image", *shapes]]
    outputs = [helper.make_tensor_value_info("columns", TensorProto.FLOAT, None)]
    graph = ort.InferenceSession(
        make_model(b, inputs, outputs, "t").SerializeToString(), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    acts = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    got = graph.run(None, {"image": np.zeros((1, 3, height, width), np.float32), **acts})[0]
    want = Hypercolumns(shapes, layers, height, width).all(acts).T  # the graph keeps (C, P) inside
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def engine_case(st):
    """The engine's nn objective at 64 px from noise (so alpha blends two different images), no pyramid."""
    content, style = synthetic(48, 64, seed=2), stripes(64, 55)  # at the size already: the engine keeps them
    prepared = st.prepare(
        content, [style], preset="nnst", size=64, scales=1, scale_iterations="3", pyramid=False, init="noise", seed=4
    )
    return prepared, nchw(content), nchw(style)


def host_targets(bundle_dir, content, style, start, block_bytes=None):
    host = python_library()
    bundle = host.Bundle(str(bundle_dir), threads=2)
    if block_bytes:
        bundle.manifest["limits"]["block_bytes"] = block_bytes
    return bundle, bundle.nn_targets(content, [style], start)


def step_feeds(x, targets, style_weight, t=1, m=None, v=None, lr=0.51):
    feeds = {"image": x, "m": np.zeros_like(x) if m is None else m, "v": np.zeros_like(x) if v is None else v}
    scalars = {"t": t, "lr": lr, "content_weight": 0.0, "style_weight": style_weight, "tv_weight": 0.0}
    return feeds | {k: np.array(value, np.float32) for k, value in scalars.items()} | targets


def test_nn_bundle_matches_the_engine(engine_case, nn_bundle):
    """Style columns, centre and matches (two blocks of positions) equal the engine's; the step's loss and
    gradient equal NeighbourObjective.loss_and_grad to float32 rounding."""
    prepared, content, style = engine_case
    objective, x0 = prepared.objective, prepared.x0
    # 1 MiB blocks hold 97 of the 192 positions: the matching runs in two blocks.
    _, targets = host_targets(nn_bundle, content, style, x0, block_bytes=1 << 20)
    np.testing.assert_allclose(targets["nn.style"], objective.matcher.style, atol=1e-6)
    np.testing.assert_allclose(targets["nn.centre"], objective.matcher.centre, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(targets["nn.index"], objective.index)
    rng = np.random.default_rng(1)
    x = np.clip(content + rng.normal(0, 20, content.shape), 0, 255).astype(np.float32)
    weight = prepared.options.style_weight
    *_, m, _, loss, content_loss, style_loss, tv_loss = session(nn_bundle / "step.onnx").run(
        None, step_feeds(x, targets, weight)
    )
    want_loss, want_grad = objective.loss_and_grad(x)
    assert float(loss) == pytest.approx(want_loss, rel=1e-6) and float(style_loss) == float(loss)
    assert float(content_loss) == 0 and float(tv_loss) == 0
    grad = m / np.float32(0.1)  # Adam's first moment after one step from zero: (1 - beta1) g
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-5 * np.abs(want_grad).max())


def test_nn_step_gradient_matches_finite_differences(nn_bundle):
    """The nn step's image gradient (through the hypercolumns' resizing and the network) against central
    differences of the loss it reports, with random matches."""
    rng = np.random.default_rng(2)
    content, style = nchw(synthetic(40, 44, seed=5)), nchw(stripes(40, 40))
    _, targets = host_targets(nn_bundle, content, style, content)
    targets["nn.index"] = rng.integers(0, targets["nn.style"].shape[0], targets["nn.index"].shape, dtype=np.int64)
    step = session(nn_bundle / "step.onnx")
    x = np.clip(content + rng.normal(0, 20, content.shape), 20, 235).astype(np.float32)
    _, m, *_ = step.run(None, step_feeds(x, targets, 1e4))
    grad = m / np.float32(0.1)
    for _ in range(3):
        # Leaning on the gradient's sign, as the Gram bundle's test: noise alone drowns in float32 rounding.
        d = (np.sign(grad) + rng.normal(0, 1, x.shape)).astype(np.float32)
        plus, minus = x + np.float32(0.01) * d, x - np.float32(0.01) * d
        change = float(step.run(["loss"], step_feeds(plus, targets, 1e4))[0])
        change -= float(step.run(["loss"], step_feeds(minus, targets, 1e4))[0])
        predicted = float(np.vdot(grad.astype(np.float64), plus.astype(np.float64) - minus))
        assert change == pytest.approx(predicted, rel=5e-3)


@pytest.fixture(scope="module")
def nn_pair(tmp_path_factory):
    """A public-domain pair small enough for the nn transfer in every host (96 px)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("nn_pair")
    content, style = folder / "content.png", folder / "style.png"
    Image.open(EXAMPLES / "woman-with-hat-matisse.jpg").convert("RGB").resize((72, 96)).save(content)
    Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((96, 76)).save(style)
    return content, style


ARGS = ["--size", "96", "--iterations", "4", "--threads", "2"]  # 64 px then 96 px: a matching at each


@pytest.fixture(scope="module")
def python_nn_run(nn_bundle, nn_pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("nn_py") / "out.png"
    return run_host([*PYTHON_HOST, *map(str, nn_pair), "-o", str(out), "--bundle", str(nn_bundle), *ARGS], out)


def test_python_host_runs_the_nn_transfer(python_nn_run):
    got, image = python_nn_run
    assert [r["size"] for r in got] == [64] * 4 + [96] * 4 and image.shape == (96, 72, 3)
    losses = [r["style_loss"] for r in got]
    assert losses[3] < losses[0] and losses[7] < losses[4]  # each scale's steps lower its loss
    assert all(r["content_loss"] == 0 and r["loss"] == r["style_loss"] for r in got)


def test_node_host_runs_the_nn_transfer_as_python(nn_bundle, nn_pair, python_nn_run, tmp_path):
    node_ready()
    out = tmp_path / "out.png"
    run = run_host([*NODE_HOST, *map(str, nn_pair), "-o", str(out), "--bundle", str(nn_bundle), *ARGS], out)
    assert_same(run, python_nn_run, 1e-5)


@pytest.mark.parametrize("host", ["python", "node"])
def test_hosts_refuse_a_damaged_nn_manifest(host, nn_bundle, nn_pair, tmp_path):
    """An nn bundle whose alpha is out of range, or whose matching graph is missing, is refused in one line."""
    if host == "node":
        node_ready()
    said = []
    for damage in ("alpha", "missing"):
        folder = tmp_path / damage
        folder.mkdir()
        manifest = json.loads((nn_bundle / "manifest.json").read_text())
        if damage == "alpha":
            manifest["defaults"]["alpha"] = 2
        for name in manifest["files"]:
            if not (damage == "missing" and name == "matching.onnx"):
                (folder / name).symlink_to(nn_bundle / name)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        command = [*(PYTHON_HOST if host == "python" else NODE_HOST), *map(str, nn_pair), "--bundle", str(folder)]
        done = subprocess.run([*command, "-o", str(tmp_path / "o.png")], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "nst export" in done.stderr
        said.append(done.stderr)
    assert "defaults.alpha is not a number in 0..1" in said[0] and "not a readable bundle" in said[1]
    assert not (tmp_path / "o.png").exists()


@pytest.fixture(scope="module")
def nn_site(nn_pair, tmp_path_factory):
    """`nst export --preset nnst --web` with the pair beside the page."""
    need((ROOT / "hosts" / "web" / "node_modules" / "onnxruntime-web").is_dir(), "run npm ci in hosts/web")
    folder = tmp_path_factory.mktemp("nn_site")
    export_folder(folder, preset="nnst", web=True)
    for path in nn_pair:
        shutil.copy(path, folder / path.name)
    return folder


def browser_run(site, query: str, webgpu: bool = False) -> tuple[list[dict], np.ndarray]:
    run = browse(site, query, "window.nstRun.done", webgpu=webgpu)
    assert run["error"] is None, run["error"]
    h, w = run["size"]
    return run["records"], np.asarray(run["pixels"], np.float64).reshape(h, w, 4)[:, :, :3]


def test_browser_runs_the_nn_transfer_as_python(nn_site, python_nn_run):
    """The page (WebAssembly, 2 threads) on an nn bundle: the Python host's losses and image."""
    browser_ready()
    query = "content=content.png&style=style.png&size=96&iterations=4&threads=2&backend=wasm&autorun=1"
    assert_same(browser_run(nn_site, query), python_nn_run, 1e-4)


def test_browser_webgpu_runs_the_nn_transfer_as_python(nn_site, tmp_path):
    """WebGPU (Chromium's software adapter without a GPU, every kernel emulated: so small and short)."""
    browser_ready()
    out = tmp_path / "p.png"
    args = ["--size", "42", "--iterations", "3", "--scales", "1", "--bundle", str(nn_site / "bundle"), "-o", str(out)]
    want = run_host([*PYTHON_HOST, str(nn_site / "content.png"), str(nn_site / "style.png"), *args], out)
    query = "content=content.png&style=style.png&size=42&iterations=3&scales=1&backend=webgpu&autorun=1"
    assert_same(browser_run(nn_site, query, webgpu=True), want, 1e-4)
