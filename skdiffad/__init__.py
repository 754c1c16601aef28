"""skdiffad: diffusion-model anomaly detection for scikit-learn and PyOD users."""

from ._persistence import load
from ._version import __version__
from .fusion import FusionDetector
from .generation import AnomalyGenerator
from .image import DiffusionImageDetector
from .tabular import TabDiffusionDetector
from .timeseries import DiffusionTSDetector
from .video import DiffusionVideoDetector

__all__ = ["AnomalyGenerator", "DiffusionImageDetector", "DiffusionTSDetector",
           "DiffusionVideoDetector", "FusionDetector", "TabDiffusionDetector", "__version__",
           "load"]
