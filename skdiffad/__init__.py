"""skdiffad: diffusion-model anomaly detection for scikit-learn and PyOD users."""

from .tabular import TabDiffusionDetector
from .timeseries import DiffusionTSDetector

__version__ = "0.1.0"

__all__ = ["DiffusionTSDetector", "TabDiffusionDetector", "__version__"]
