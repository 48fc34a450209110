"""A NumPy ``.npz`` archive of uint8 images as a data set (read with allow_pickle=False).

Which array: ``x_train`` / ``x_test`` for the matching split if present (the layout of Keras' MNIST and
CIFAR-10 files); else ``images``; else the archive's only array. ``images`` and a lone array have no split
of their own, so about 1 in 10 images is held out for test, chosen by a hash of its index.
Layouts (N, H, W), (N, H, W, C) and (N, C, H, W), C in {1, 3}, all become (N, C, H, W).

Labels, where the archive has them: ``y_train`` / ``y_test`` beside ``x_train`` / ``x_test``; else an
array ``labels`` (or ``y``) beside the images, held out by the same hash of the index as they are. Integer
class indices >= 0, one per image, (N,) or (N, 1) as Keras' CIFAR-10 stores them; without them the images
are unlabelled.
"""

import zipfile
from pathlib import Path

import numpy as np

from .image_data import DataError, ImageData, as_labels, as_nchw, check_split, in_test_split

LABEL_KEYS = ("labels", "y")  # for an unsplit archive, in order of preference


def load_npz(path, split="train"):
    """Read the ``split`` images of the .npz file ``path``; uint8 (N, C, H, W), C = 1 or 3, labels int64 (N,)
    or None.

    hflip is True for RGB images and False for grayscale ones, as for folders.
    """
    check_split(split)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # np.load would try it as a .npy, then as a pickle, and say so
        raise DataError(f"{path}: not an .npz archive (no zip structure); expected a file written by numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if "x_train" in keys or "x_test" in keys:
                key = f"x_{split}"
                if key not in keys:
                    raise DataError(f"{path}: has no array '{key}' for the {split} split (arrays: {', '.join(keys)})")
                images = as_nchw(archive[key], f"{path}['{key}']")
                labels = read_labels(archive, path, [f"y_{split}"], len(images))
            else:
                if "images" in keys:
                    key = "images"
                elif len(keys) == 1:
                    key = keys[0]
                else:
                    raise DataError(f"{path}: no usable array: expected 'images', 'x_train'/'x_test' or a single "
                                    f"array, found {', '.join(keys) or 'none'}")
                images = as_nchw(archive[key], f"{path}['{key}']")
                labels = read_labels(archive, path, [k for k in LABEL_KEYS if k != key], len(images))
                held_out = np.array([in_test_split(str(i)) for i in range(len(images))], dtype=bool)
                keep = held_out == (split == "test")
                images = np.ascontiguousarray(images[keep])
                labels = None if labels is None else labels[keep]  # the same rows as the images
                if len(images) == 0:
                    raise DataError(f"{path}['{key}']: too few images to hold out a {split} split")
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        # np.load raises these for a file that is not an npz, a damaged one, or a pickled (object) array.
        raise DataError(f"{path}: cannot read as .npz: {e}") from e
    return ImageData(images=images, name=f"npz:{path}", hflip=images.shape[1] == 3, labels=labels)


def read_labels(archive, path, keys, n):
    """The first of ``keys`` that ``archive`` holds, as labels int64 (n,); None if it holds none of them."""
    for key in keys:
        if key in archive.files:
            y = archive[key]
            if y.ndim == 2 and y.shape[1] == 1:  # Keras' CIFAR-10 labels are a column, (N, 1)
                y = y[:, 0]
            return as_labels(y, n, f"{path}['{key}']")
    return None
