"""numba kernels for the arithmetic around the network: Gram matrices, losses and their gradients,
total variation, the nn loss's hypercolumns and cosine distance, the Adam and L-BFGS steps and image layout
conversions.  Each has a plain numpy reference in tests/."""

from .adam import adam_step
from .content import content_loss_grad
from .gram import gram, gram_loss, style_loss_grad
from .imageops import hwc_to_nchw, nchw_to_hwc_float, nchw_to_hwc_uint8
from .lbfgs import lbfgs_direction, projected_gradient, projected_step, store_step
from .masks import normalize_l1, scale_columns
from .neighbours import cosine_loss_grad, resize_adjoint_add, resize_into
from .tv import tv_loss_grad

__all__ = [
    "adam_step",
    "content_loss_grad",
    "gram",
    "gram_loss",
    "style_loss_grad",
    "hwc_to_nchw",
    "nchw_to_hwc_float",
    "nchw_to_hwc_uint8",
    "tv_loss_grad",
    "cosine_loss_grad",
    "resize_into",
    "resize_adjoint_add",
    "normalize_l1",
    "scale_columns",
    "lbfgs_direction",
    "projected_gradient",
    "projected_step",
    "store_step",
]
