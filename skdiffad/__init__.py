"""skdiffad: diffusion-model anomaly detection for scikit-learn and PyOD users."""

from .generation import AnomalyGenerator
from .image import DiffusionImageDetector
from .tabular import TabDiffusionDetector
from .timeseries import DiffusionTSDetector

__version__ = "0.1.0"

__all__ = ["AnomalyGenerator", "DiffusionImageDetector", "DiffusionTSDetector", "TabDiffusionDetector", "__version__"]
