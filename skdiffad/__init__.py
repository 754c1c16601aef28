"""skdiffad: diffusion-model anomaly detection for scikit-learn and PyOD users."""

from .fusion import FusionDetector
from .generation import AnomalyGenerator
from .image import DiffusionImageDetector
from .tabular import TabDiffusionDetector
from .timeseries import DiffusionTSDetector

__version__ = "0.1.0"

__all__ = ["AnomalyGenerator", "DiffusionImageDetector", "DiffusionTSDetector", "FusionDetector",
           "TabDiffusionDetector", "__version__"]
