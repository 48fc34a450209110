"""The container every loader returns, the one error type they raise, and the helpers they share.

Every loader ends in :class:`ImageData`: uint8 pixels in NCHW layout, whatever the file stored.
"""

import hashlib
from dataclasses import dataclass

import numpy as np


class DataError(ValueError):
    """A data set could not be loaded; the message names the file or folder and what is wrong with it."""


@dataclass(frozen=True)
class ImageData:
    """One split of an image data set.

    images: uint8 array (N, C, H, W), C-contiguous, C in {1, 3}; 0 is black, 255 is white.
    name:   where it came from, e.g. "digits", "mnist:/data/mnist", "cifar10:/data/cifar-10-batches-py".
    hflip:  True when a random horizontal flip gives another valid image of the set (natural images), so
            training may use it as augmentation (as the paper does on CIFAR-10); False for digits and MNIST,
            where a mirrored 2, 3 or 7 is not a digit.
    """

    images: np.ndarray
    name: str
    hflip: bool

    def __post_init__(self):
        x = self.images
        if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4 and x.shape[1] in (1, 3)
                and x.flags.c_contiguous and x.shape[0] > 0):
            desc = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"{self.name}: expected a non-empty C-contiguous uint8 (N, C, H, W) array with C "
                            f"in {{1, 3}}, got {desc}")


def as_nchw(array, source):
    """Return ``array`` as a C-contiguous uint8 (N, C, H, W) array, C in {1, 3}.

    Accepts (N, H, W) (grayscale), (N, H, W, C) and (N, C, H, W). A 4-D array whose axis 1 is 1 or 3 is
    read as NCHW, otherwise one whose last axis is 1 or 3 as NHWC; both hold only for images 1 or 3
    pixels wide, which no real data set has. ``source`` names the file in error messages.
    """
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise DataError(f"{source}: images have dtype {a.dtype}, expected uint8 (pixel values 0..255)")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[1] in (1, 3):
        pass
    elif a.ndim == 4 and a.shape[3] in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{source}: images have shape {a.shape}, expected (N, H, W), (N, H, W, C) or "
                        f"(N, C, H, W) with C in {{1, 3}}")
    if a.shape[0] == 0 or a.shape[2] == 0 or a.shape[3] == 0:
        raise DataError(f"{source}: images have shape {a.shape}, which holds no pixels")
    return np.ascontiguousarray(a)


def in_test_split(key):
    """Whether the item named ``key`` (a file's relative path, or an array index as a string) is held out.

    For sources that have no train/test split of their own: about 1 in 10 items goes to test, chosen by
    a hash of its name, so the split is the same on every machine and adding files never moves old ones.
    """
    return hashlib.sha1(key.encode()).digest()[0] % 10 == 0


def check_split(split):
    """Raise DataError unless ``split`` is "train" or "test"."""
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
