"""Pixels <-> the model's range: the paper scales uint8 images linearly to [-1, 1] (Ho et al. 2020, Sec. 3.3)."""

import numpy as np


def to_model_range(images_uint8):
    """uint8 array of any shape (0..255) -> float32 array of the same shape in [-1, 1]: x / 127.5 - 1."""
    x = np.asarray(images_uint8)
    if x.dtype != np.uint8:
        # A float array here is almost always one already scaled: scaling it twice would train silently on
        # the wrong range, so refuse instead.
        raise TypeError(f"to_model_range expects uint8 pixels, got {x.dtype}")
    return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(x):
    """Float array in (about) [-1, 1] -> uint8 array of the same shape: clip to [-1, 1], rescale, round.

    The inverse of :func:`to_model_range` (exact on its outputs); used to write sample grids as PNG.
    """
    x = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    return np.rint((x + np.float32(1.0)) * np.float32(127.5)).astype(np.uint8)
