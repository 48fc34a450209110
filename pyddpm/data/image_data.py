"""The container every loader returns, the one error type they raise, and the helpers they share.

Every loader ends in :class:`ImageData`: uint8 pixels in NCHW layout, whatever the file stored, and the
class labels where the source has them.
"""

import hashlib
from dataclasses import dataclass
from typing import Optional

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
    labels: None, or int64 array (N,), C-contiguous: the class index (>= 0) of each image, for sources that
            label their images (see each loader for where they come from); None for unlabelled data.
    """

    images: np.ndarray
    name: str
    hflip: bool
    labels: Optional[np.ndarray] = None

    def __post_init__(self):
        x = self.images
        if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4 and x.shape[1] in (1, 3)
                and x.flags.c_contiguous and x.shape[0] > 0):
            desc = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"{self.name}: expected a non-empty C-contiguous uint8 (N, C, H, W) array with C "
                            f"in {{1, 3}}, got {desc}")
        if self.labels is not None:
            self._check_labels()

    @property
    def num_classes(self):
        """The number of classes the labels index (max label + 1, as an int), or None without labels."""
        return None if self.labels is None else int(self.labels.max()) + 1

    def _check_labels(self):
        y, n = self.labels, len(self.images)
        if not isinstance(y, np.ndarray):
            raise DataError(f"{self.name}: labels must be an int64 NumPy array (N,), got {type(y).__name__}")
        if y.dtype != np.int64:
            raise DataError(f"{self.name}: labels have dtype {y.dtype}, expected int64")
        if y.shape != (n,):
            raise DataError(f"{self.name}: labels have shape {y.shape}, expected ({n},): one per image")
        if not y.flags.c_contiguous:
            raise DataError(f"{self.name}: labels must be a C-contiguous array")
        negative = np.flatnonzero(y < 0)
        if negative.size:
            i = int(negative[0])
            raise DataError(f"{self.name}: label {y[i]} at index {i} is negative; labels are class indices >= 0")


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


def as_labels(values, n, source, num_classes=None):
    """Class labels as a file stored them -> int64 (n,), C-contiguous, each in 0..num_classes-1 (>= 0 if None).

    ``values`` is any integer array or list of ints, one per image; floats and bools are refused, since a
    class index is an integer. ``source`` names the file (and key) in error messages.
    """
    try:
        a = np.asarray(values)
    except (ValueError, TypeError) as e:  # e.g. a ragged list
        raise DataError(f"{source}: cannot read the labels as an array: {e}") from e
    if not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{source}: labels have dtype {a.dtype}, expected integers (class indices)")
    if a.shape != (n,):
        raise DataError(f"{source}: labels have shape {a.shape}, expected ({n},): one per image")
    bad = a < 0
    if num_classes is not None:
        bad |= a >= num_classes
    elif not np.can_cast(a.dtype, np.int64):  # uint64: values past int64's range would wrap to negative
        bad |= a > np.uint64(np.iinfo(np.int64).max)
    if bad.any():
        i = int(bad.argmax())
        allowed = ">= 0 (within int64)" if num_classes is None else f"in 0..{num_classes - 1}"
        raise DataError(f"{source}: label {a[i]} at index {i} is not a class index {allowed}")
    return np.ascontiguousarray(a, dtype=np.int64)


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
