"""Measures of a stylised picture that no nst objective minimises, each lower-is-better.

colour     sliced Wasserstein distance between the result's and the style's pixels in CIELab
speckle    mean |luminance - its 3x3 median|: isolated bright or dark pixels, grain
style      sliced Wasserstein distance between the VGG-19 feature distributions (relu1_1 ... relu5_1) of the
           result and the style, each layer divided by the style features' spread, averaged over layers
content    mean |difference| of the cosine self-similarity matrices of the result's and the content's
           relu3_1 and relu4_1 features on the same sampled positions (STROTSS's structure term)

All sampling (pixels, positions, projections) is seeded, so a measure of the same images is repeatable.
"""

from __future__ import annotations

import numpy as np

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STRUCTURE_LAYERS = ("relu3_1", "relu4_1")
PROJECTIONS = 128
SAMPLES = 16384  # pixels or feature positions drawn for each distribution
POSITIONS = 1024  # feature positions whose self-similarities are compared


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int = PROJECTIONS, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between two point sets (N, D) and (M, D): the root mean squared
    difference of their sorted 1-D projections on random unit directions, compared at equal quantiles."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((a.shape[1], projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    n = min(len(a), len(b), SAMPLES)
    pa = _quantiles(_sample(a, rng) @ directions, n)
    pb = _quantiles(_sample(b, rng) @ directions, n)
    return float(np.sqrt(np.mean((pa - pb) ** 2)))


def _quantiles(projected: np.ndarray, n: int) -> np.ndarray:
    """The n mid-point quantiles of each column (nearest rank: the samples are large)."""
    ranks = np.floor((np.arange(n) + 0.5) / n * len(projected)).astype(np.int64)
    return np.sort(projected, axis=0)[ranks]


def _sample(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(points) <= SAMPLES:
        return points.astype(np.float64)
    return points[rng.choice(len(points), SAMPLES, replace=False)].astype(np.float64)


def lab_pixels(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (0..255) -> (H*W, 3) CIELab (L 0..100, a and b about -128..127)."""
    import cv2

    lab = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return lab.reshape(-1, 3)


def colour_distance(result: np.ndarray, style: np.ndarray) -> float:
    """How far the result's palette is from the style's: sliced W2 in CIELab units."""
    return sliced_wasserstein(lab_pixels(result), lab_pixels(style))


def speckle(result: np.ndarray) -> float:
    """Mean absolute difference between the luminance and its 3x3 median (0..255 units): zero on smooth
    areas and clean edges, large where single pixels stand out from their neighbours."""
    import cv2

    rgb = np.clip(result, 0, 255).astype(np.float32)
    luminance = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.mean(np.abs(luminance - cv2.medianBlur(luminance, 3))))


def _positions(features: np.ndarray) -> np.ndarray:
    """(1, C, H, W) -> (H*W, C)."""
    return features.reshape(features.shape[1], -1).T


def style_distance(result_features: dict, style_features: dict) -> float:
    """Mean over the style layers of sliced W2 between feature distributions, divided by the style's spread
    (the root mean variance of its channels), so every layer counts alike."""
    distances = []
    for layer in STYLE_LAYERS:
        style = _positions(style_features[layer])
        spread = float(np.sqrt(style.var(axis=0).mean())) or 1.0
        distances.append(sliced_wasserstein(_positions(result_features[layer]), style) / spread)
    return float(np.mean(distances))


def _self_similarity(features: np.ndarray, index: np.ndarray) -> np.ndarray:
    points = _positions(features)[index].astype(np.float64)
    points /= np.linalg.norm(points, axis=1, keepdims=True) + 1e-8
    return points @ points.T


def structure_distance(result_features: dict, content_features: dict) -> float:
    """Mean over relu3_1 and relu4_1 of the mean |cos self-similarity(result) - cos self-similarity(content)|
    on the same positions (the result and the content have the same size)."""
    distances = []
    for layer in STRUCTURE_LAYERS:
        count = result_features[layer].shape[2] * result_features[layer].shape[3]
        rng = np.random.default_rng(1)
        index = np.sort(rng.choice(count, min(count, POSITIONS), replace=False))
        a = _self_similarity(result_features[layer], index)
        b = _self_similarity(content_features[layer], index)
        distances.append(float(np.mean(np.abs(a - b))))
    return float(np.mean(distances))


class Measures:
    """The four measures of results against their content and style, with VGG-19 features from nst's own
    forward graph (plain max pooling, zero padding: the measuring network stays fixed whatever is measured)."""

    def __init__(self, threads: int | None = None) -> None:
        from nst import StyleTransfer

        self.st = StyleTransfer(threads=threads)
        self.opts = self.st.options(
            "johnson",
            content_layers={layer: 1.0 for layer in STRUCTURE_LAYERS},
            style_layers={layer: 1.0 for layer in STYLE_LAYERS},
            path="split",
        )

    def features(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """relu1_1 ... relu5_1 of an HxWx3 RGB image (0..255)."""
        from nst.kernels import hwc_to_nchw

        runner = self.st.runner(self.opts, "split")
        acts = runner.forward(hwc_to_nchw(np.ascontiguousarray(rgb, np.float32), 1.0))
        out = {layer: acts[layer].copy() for layer in STYLE_LAYERS}
        runner.release()
        return out

    def measure(self, result: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict[str, float]:
        """All four measures of `result`; `content` must have the result's size, `style` any size (the
        benchmark gives it the result's longest side, as the classic sized its style)."""
        if content.shape != result.shape:
            raise ValueError(f"content {content.shape} and result {result.shape} differ in size")
        feats = self.features(result)
        return {
            "colour": colour_distance(result, style),
            "speckle": speckle(result),
            "style": style_distance(feats, self.features(style)),
            "content": structure_distance(feats, self.features(content)),
        }


def main() -> None:
    """Measure one result: python -m benchmarks.picture_measures RESULT CONTENT STYLE (prints JSON)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result")
    parser.add_argument("content", help="the content image (resized to the result's size)")
    parser.add_argument("style", help="the style image (resized to the result's longest side)")
    args = parser.parse_args()
    from nst.engine.images import fit_image, read_image, resize

    result = read_image(args.result)
    style = read_image(args.style)
    style = resize(style, *fit_image(style, max(result.shape[:2])))
    content = resize(read_image(args.content), *result.shape[:2])
    print(json.dumps(Measures().measure(result, content, style), indent=1))


if __name__ == "__main__":
    main()
