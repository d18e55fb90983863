"""terraseg: semantic segmentation of satellite and aerial imagery.

The package imports nothing heavy at top level: ``import terraseg`` does not import torch, so the
ONNX prediction backend and the data tools stay light.
"""

__version__ = "0.1.0"

from terraseg.errors import TerrasegError  # noqa: E402,F401
