"""How far float16 weight storage moves the features, against float32 weights, on real images (the
repository's examples/, or the .jpg images of --images DIR; the committed results came from the photos and
paintings of a folder outside the repository until re-measured).

Needs the original Keras file (export-time only, like nst/models/export_vgg.py):
    python -m benchmarks.fp16_weights --weights PATH/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5
Writes benchmarks/results/fp16_weights.json: per ReLU layer, the relative L2 difference
||A16 - A32|| / ||A32|| (median and worst over the images), and the relative difference of the
johnson objective's loss between the two.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.images import add_images_option, image

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import onnxruntime as ort

    from nst.engine import StyleTransfer
    from nst.engine.images import fit_size, read_image, resize
    from nst.kernels import hwc_to_nchw
    from nst.models import export_vgg

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fp16_weights.json")
    add_images_option(parser)
    args = parser.parse_args()
    content, style = image(args.images, "woman-with-hat-matisse.jpg"), image(args.images, "starry_night.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "vgg19_fp32.onnx"
        model = export_vgg.build_model(export_vgg.read_weights(args.weights), "float32")
        fp32.write_bytes(model.SerializeToString())
        sessions = {
            name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            for name, path in (("fp16", ROOT / "nst" / "models" / "vgg19_features.onnx"), ("fp32", fp32))
        }
        names = [o.name for o in sessions["fp32"].get_outputs()]
        errors: dict[str, list[float]] = {n: [] for n in names}
        images = sorted(args.images.glob("*.jpg"))
        for path in images:
            img = read_image(path)
            x = hwc_to_nchw(resize(img, *fit_size(*img.shape[:2], args.size)), 1.0)
            a16 = sessions["fp16"].run(None, {"image": x})
            a32 = sessions["fp32"].run(None, {"image": x})
            for n, u, v in zip(names, a16, a32):
                errors[n].append(float(np.linalg.norm(u - v) / np.linalg.norm(v)))
        losses = {}
        for name, model_path in (("fp16", None), ("fp32", str(fp32))):
            st = StyleTransfer(model=model_path)
            prepared = st.prepare(str(content), [str(style)], size=args.size, init="noise", seed=1)
            losses[name] = prepared.objective.loss_and_grad(prepared.x0)[0]
    result = {
        "images": [p.name for p in images],
        "size": args.size,
        "relative_l2_difference": {
            n: {"median": float(np.median(e)), "worst": float(np.max(e))} for n, e in errors.items()
        },
        "johnson_loss_relative_difference": abs(losses["fp16"] - losses["fp32"]) / losses["fp32"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
