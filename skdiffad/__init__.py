"""skdiffad: diffusion-model anomaly detection for scikit-learn and PyOD users."""

from .tabular import TabDiffusionDetector

__version__ = "0.1.0"

__all__ = ["TabDiffusionDetector", "__version__"]
