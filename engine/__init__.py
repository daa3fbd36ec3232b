"""nst engine: neural style transfer on ONNX Runtime.

    from engine import StyleTransfer
    st = StyleTransfer(device="cpu")
    rgb = st.transfer("content.jpg", ["style.jpg"], size=512, iterations=300)
"""
from .errors import NstError
from .objective import Losses, Objective
from .presets import PRESETS, Options
from .progress import MetricsWriter, Progress, SaveEvery, SeedReport
from .transfer import StyleTransfer

__version__ = "0.1.0"
__all__ = ["NstError", "Losses", "Objective", "Options", "PRESETS", "MetricsWriter", "Progress", "SaveEvery",
           "SeedReport", "StyleTransfer", "__version__"]
