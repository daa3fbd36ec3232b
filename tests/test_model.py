"""The committed model file: its format, provenance, weights, and that the exporter rebuilds it byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from nst.engine.graphs.vgg import DEFAULT_MODEL, load_spec
from nst.models import export_vgg

ROOT = Path(__file__).resolve().parents[1]

RELUS = [
    "relu1_1",
    "relu1_2",
    "relu2_1",
    "relu2_2",
    "relu3_1",
    "relu3_2",
    "relu3_3",
    "relu3_4",
    "relu4_1",
    "relu4_2",
    "relu4_3",
    "relu4_4",
    "relu5_1",
]


@pytest.fixture(scope="module")
def model():
    return onnx.load(DEFAULT_MODEL)


def test_model_interface(model):
    onnx.checker.check_model(model)
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[1].dim_value == 3 and dims[2].dim_param and dims[3].dim_param  # H, W dynamic
    assert [o.name for o in model.graph.output] == RELUS
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 13 and ops.count("MaxPool") == 4 and ops.count("Relu") == 13


def test_weights_are_float16_and_genuine(model):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert inits["conv1_1.weight"].dtype == np.float16
    assert inits["conv5_1.weight"].shape == (512, 512, 3, 3)
    # The published MatConvNet/Caffe values of conv1_1's bias.
    np.testing.assert_allclose(inits["conv1_1.bias"][:3], [0.73017758, 0.06493629, 0.03428847], rtol=1e-6)
    assert DEFAULT_MODEL.stat().st_size < 30e6


def test_metadata_records_source_and_licence(model):
    meta = {e.key: e.value for e in model.metadata_props}
    assert meta["source_sha256"] == export_vgg.SDIST_SHA256
    assert meta["source_file_sha256"] == export_vgg.H5_SHA256
    assert meta["license"] == "CC BY 4.0" and "Simonyan" in meta["attribution"]
    assert meta["input"].startswith("RGB, 0..255")


def test_exporter_rebuilds_the_committed_file_byte_for_byte(model):
    """Deterministic export: the committed weights fed back through build_model give the same bytes."""
    spec = load_spec()
    weights = {layer.name: (layer.weight, layer.bias) for layer in spec.layers if layer.kind == "conv"}
    meta = {e.key: e.value for e in model.metadata_props}
    provenance = {k: meta[k] for k in ("source_package", "source_sha256", "source_file", "source_file_sha256")}
    rebuilt = export_vgg.build_model(weights, "float16", provenance).SerializeToString(deterministic=True)
    assert hashlib.sha256(rebuilt).hexdigest() == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()


def test_exporter_refuses_a_file_with_the_wrong_hash(tmp_path):
    fake = tmp_path / "weights.h5"
    fake.write_bytes(b"not the VGG weights")
    with pytest.raises(SystemExit, match="refusing"):
        export_vgg.read_weights(fake)


def test_graph_input_convention_is_rgb_minus_mean():
    """conv1_1 on a constant image equals the reference arithmetic with the RGB mean removed."""
    import onnxruntime as ort

    spec = load_spec()
    sess = ort.InferenceSession(str(DEFAULT_MODEL), providers=["CPUExecutionProvider"])
    rgb = np.array([200.0, 30.0, 90.0], np.float32)
    image = np.broadcast_to(rgb.reshape(1, 3, 1, 1), (1, 3, 8, 8)).astype(np.float32).copy()
    relu1_1 = sess.run(["relu1_1"], {"image": image})[0]
    conv = spec.layers[0]
    centered = rgb - np.array(export_vgg.MEAN_RGB)
    weight, bias = conv.weight.astype(np.float64), conv.bias.astype(np.float64)
    centre_value = np.maximum(np.einsum("oc,c->o", weight.sum(axis=(2, 3)), centered) + bias, 0)
    np.testing.assert_allclose(relu1_1[0, :, 4, 4], centre_value, rtol=1e-3, atol=1e-3)
