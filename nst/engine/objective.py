"""The style-transfer objective: ONNX forward, numba losses on the host, ONNX backward.

`Objective.loss_and_grad(image)` is all an optimizer needs, so hosts can drive their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from nst import kernels
from nst.kernels.wasserstein import W2Target, moments, w2_loss_grad

from .presets import CONVENTIONS, Options
from .runtime import GraphRunner, Runner


@dataclass
class Losses:
    """The weighted terms of one evaluation; total = content + style + tv."""

    total: float
    content: float
    style: float
    tv: float

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.total, "content": self.content, "style": self.style, "tv": self.tv}


@runtime_checkable
class Differentiable(Protocol):
    """What an optimizer needs from every objective kind (split, fused, masked, tiled): the loss and its
    image gradient, the terms of the last evaluation, and the options it was built with."""

    runner: Runner
    options: Options
    evaluations: int
    last: Losses | None

    def loss_and_grad(self, image: np.ndarray) -> tuple[float, np.ndarray]: ...

    def record(self, content: float, style: float, tv: float) -> Losses: ...


def _flat(activation: np.ndarray) -> np.ndarray:
    """(1, C, H, W) -> (C, H*W) view."""
    return activation.reshape(activation.shape[1], -1)


def style_targets(
    runner: Runner, styles: list[np.ndarray], blend: list[float], options: Options
) -> dict[str, np.ndarray]:
    """Blended style targets per style layer, from (1, 3, H, W) style images: normalised Gram matrices, or
    for the w2 loss the features' raw moments (`wasserstein.moments`), which blend linearly too."""
    convention = CONVENTIONS[options.convention]
    targets: dict[str, np.ndarray] = {}
    for style, weight in zip(styles, blend):
        acts = runner.forward(style)
        for layer in options.style_layers:
            a = acts[layer]
            if options.style_loss == "w2":
                g = moments(_flat(a)) * np.float32(weight)
            else:
                g = kernels.gram(_flat(a)) * np.float32(weight / convention.gram_divisor(*a.shape[1:]))
            targets[layer] = g if layer not in targets else targets[layer] + g
    runner.release()
    return targets


def content_targets(runner: Runner, content: np.ndarray, options: Options) -> tuple[dict[str, np.ndarray], dict]:
    """Content activations per content layer for a (1, 3, H, W) content image, and the shape of every
    loss-layer activation at this size (the generated image has the content's size)."""
    acts = runner.forward(content)
    targets = {layer: acts[layer].copy() for layer in options.content_layers}
    shapes = {layer: a.shape for layer, a in acts.items()}
    runner.release()
    return targets, shapes


class Objective:
    """loss(image) and d loss / d image for one content, its styles and the chosen weights."""

    def __init__(
        self,
        runner: GraphRunner,
        content_target: dict[str, np.ndarray],
        style_target: dict[str, np.ndarray],
        options: Options,
    ) -> None:
        self.runner = runner
        self.content_target = content_target
        self.style_target = style_target
        self.options = options
        self.convention = CONVENTIONS[options.convention]
        self.evaluations = 0
        self.last: Losses | None = None
        self.w2 = (  # each layer's style Gaussian, its covariance's square root taken once
            {layer: W2Target.from_moments(t) for layer, t in style_target.items()} if options.style_loss == "w2" else {}
        )

    def _add(self, grads: dict[str, np.ndarray], shape: tuple[int, ...], layer: str, g: np.ndarray, strength: float):
        """Add one term's activation gradient into `grads` (scaled to unit L1 norm times `strength` if asked)."""
        if self.options.normalize_gradients:
            g = kernels.normalize_l1(g.reshape(-1), strength)
        g = g.reshape(shape)
        if layer in grads:
            grads[layer] += g
        else:
            grads[layer] = g

    def content_grads(self, acts: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        """The content loss and d loss / d activation of the content layers."""
        opts = self.options
        content = 0.0
        grads: dict[str, np.ndarray] = {}
        for layer, weight in opts.content_layers.items():
            a = acts[layer]
            scale = self.convention.content_scale(opts.content_weight * weight, *a.shape[1:])
            loss, g = kernels.content_loss_grad(a.ravel(), self.content_target[layer].ravel(), scale)
            content += loss
            self._add(grads, a.shape, layer, g, opts.content_weight * weight)
        return content, grads

    def layer_grads(self, acts: dict[str, np.ndarray]) -> tuple[float, float, dict[str, np.ndarray]]:
        """Content and style losses and d loss / d activation for every loss layer."""
        opts = self.options
        content, grads = self.content_grads(acts)
        style = 0.0
        for layer, weight in opts.style_layers.items():
            a = acts[layer]
            if opts.style_loss == "w2":  # relative to the style's variance, whatever the convention (wasserstein.py)
                loss, g = self.style_term(layer, _flat(a), 1.0, opts.style_weight * weight)
            else:
                norm = self.convention.gram_divisor(*a.shape[1:])
                scale = self.convention.style_scale(opts.style_weight * weight, a.shape[1])
                loss, g = self.style_term(layer, _flat(a), norm, scale)
            style += loss
            self._add(grads, a.shape, layer, g, opts.style_weight * weight)
        for layer, a in acts.items():  # a layer whose weights are all zero still needs an input
            if layer not in grads:
                grads[layer] = np.zeros_like(a)
        return content, style, grads

    def style_term(self, layer: str, features: np.ndarray, norm: float, scale: float) -> tuple[float, np.ndarray]:
        """One layer's style loss and its gradient for features (C, M) (w2: `norm` unused, `scale` its weight)."""
        if self.options.style_loss == "w2":
            return w2_loss_grad(features, self.w2[layer], scale)
        return kernels.style_loss_grad(features, self.style_target[layer], norm, scale)

    def network(self, image: np.ndarray) -> tuple[float, float, np.ndarray]:
        """Content loss, style loss and their image gradient: ONNX forward, numba losses, ONNX backward."""
        acts = self.runner.forward(image)
        content, style, grads = self.layer_grads(acts)
        return content, style, self.runner.backward(grads)

    def loss_and_grad(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        """Total loss and its gradient for a (1, 3, H, W) float32 RGB image in 0..255."""
        image = np.ascontiguousarray(image, dtype=np.float32)
        content, style, grad = self.network(image)
        tv = 0.0
        if self.options.tv_weight:
            tv, tv_grad = kernels.tv_loss_grad(image[0], self.options.tv_weight)
            grad[0] += tv_grad
        return self.record(content, style, tv).total, grad

    def record(self, content: float, style: float, tv: float) -> Losses:
        """Count an evaluation and keep its terms as `last`."""
        self.evaluations += 1
        self.last = Losses(content + style + tv, content, style, tv)
        return self.last


class FusedObjective(Objective):
    """The same objective evaluated by the fused graph: losses and Gram matrices inside ONNX Runtime."""

    def __init__(
        self,
        runner,
        content_target: dict[str, np.ndarray],
        style_target: dict[str, np.ndarray],
        options: Options,
        shapes: dict[str, tuple[int, ...]],
    ) -> None:
        super().__init__(runner, content_target, style_target, options)
        from .graphs.fused import content_inputs, style_inputs, w2_inputs

        feeds: dict[str, np.ndarray] = {}
        conv = self.convention
        for layer, weight in options.content_layers.items():
            target, scale = content_inputs(layer)
            feeds[target] = content_target[layer]
            feeds[scale] = np.array(conv.content_scale(options.content_weight * weight, *shapes[layer][1:]), np.float32)
        for layer, weight in options.style_layers.items():
            if options.style_loss == "w2":
                t = self.w2[layer]
                names = w2_inputs(layer)
                values = (t.mean[:, None], t.cov, t.cov_trace, t.eps, options.style_weight * weight / t.cov_trace)
                feeds.update({name: np.asarray(value, np.float32) for name, value in zip(names, values)})
                continue
            target, norm, scale = style_inputs(layer)
            c, h, w = shapes[layer][1:]
            feeds[target] = style_target[layer]
            feeds[norm] = np.array(conv.gram_divisor(c, h, w), np.float32)
            feeds[scale] = np.array(conv.style_scale(options.style_weight * weight, c), np.float32)
        self.runner = runner.bind(feeds)  # this objective's targets, on the device once

    def network(self, image: np.ndarray) -> tuple[float, float, np.ndarray]:
        return self.runner.evaluate(image)


class MaskedObjective(Objective):
    """Each style acts only where its mask is on: its loss reads features times the mask (scaled down to
    each layer) against that style's own Gram target, weighted by its blend weight."""

    def __init__(
        self,
        runner,
        content_target: dict[str, np.ndarray],
        style_targets_each: list[dict[str, np.ndarray]],
        masks: list[np.ndarray],
        blend: list[float],
        options: Options,
        shapes: dict,
    ) -> None:
        super().__init__(runner, content_target, {}, options)
        import cv2

        self.styles = []
        for target, mask, weight in zip(style_targets_each, masks, blend):
            if options.style_loss == "w2":
                target = {layer: W2Target.from_moments(t) for layer, t in target.items()}
            per_layer = {
                layer: np.ascontiguousarray(
                    cv2.resize(mask, (shapes[layer][3], shapes[layer][2]), interpolation=cv2.INTER_AREA).reshape(-1)
                )
                for layer in options.style_layers
            }
            self.styles.append((target, per_layer, weight))

    def style_term(self, layer: str, features: np.ndarray, norm: float, scale: float) -> tuple[float, np.ndarray]:
        loss = 0.0
        grad = np.zeros_like(features)
        for target, masks, weight in self.styles:
            mask = masks[layer]
            if self.options.style_loss == "w2":  # the Gaussian of the masked positions against this style's
                part, g = w2_loss_grad(features, target[layer], scale * weight, mask)
                loss += part
                grad += g
                continue
            part, g = kernels.style_loss_grad(
                kernels.scale_columns(features, mask), target[layer], norm, scale * weight
            )
            loss += part
            grad += kernels.scale_columns(g, mask)
        return loss, grad
