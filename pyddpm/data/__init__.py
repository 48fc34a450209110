"""Image data sets as uint8 NCHW arrays, and the paper's scaling of pixels to [-1, 1].

    load_data(spec, split)  -> ImageData(images uint8 (N, C, H, W), name, hflip,   see load.py for specs
                                         labels int64 (N,) or None)
    to_model_range(uint8)   -> float32 in [-1, 1]                                  (Ho et al. 2020, Sec. 3.3)
    to_uint8(float)         -> uint8, for writing sample grids
    make_digits(n, seed)    -> small sets of the built-in digits, e.g. for tests

Files: image_data.py (ImageData, DataError, shared helpers), scaling.py, digits.py (built-in set),
folder.py, npz.py, mnist.py (IDX), cifar10.py (restricted unpickler), load.py (spec -> loader).
"""

from .digits import make_digits
from .image_data import DataError, ImageData
from .load import load_data
from .scaling import to_model_range, to_uint8

__all__ = ["DataError", "ImageData", "load_data", "make_digits", "to_model_range", "to_uint8"]
