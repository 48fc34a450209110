"""``load_data(spec)``: one entry point for every data source, choosing the loader from the spec.

Spec forms:
    "digits"                      the built-in set (see digits.py); no file involved
    "mnist:PATH" "cifar10:PATH"   an explicit format
    "npz:PATH"   "folder:PATH"
    "PATH"                        the format detected from the path:
                                    *.npz file -> npz; IDX file, or folder with IDX images files -> mnist;
                                    data_batch_N / test_batch file, or folder holding them or
                                    cifar-10-batches-py -> cifar10; any other folder -> folder of images
A folder literally named "digits" must be given as "folder:digits".
"""

from pathlib import Path

from .cifar10 import is_cifar10_path, load_cifar10
from .digits import load_digits
from .folder import load_folder
from .image_data import DataError, check_split
from .mnist import IDX_NAME, is_idx_images_folder, load_mnist
from .npz import load_npz

LOADERS = {"mnist": load_mnist, "cifar10": load_cifar10, "npz": load_npz, "folder": load_folder}


def load_data(spec="digits", split="train"):
    """Load the ``split`` ("train" or "test") of the data set ``spec`` as ImageData (uint8 NCHW).

    Raises DataError, naming the file and the problem, for a missing path, an unreadable or malformed
    file, or images that do not fit together.
    """
    check_split(split)
    if spec == "digits":
        return load_digits(split)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in LOADERS:
        if not rest:  # Path("") would silently mean the current folder
            raise DataError(f"{spec!r}: no path after '{prefix}:'")
        return LOADERS[prefix](Path(rest).expanduser(), split)
    path = Path(spec).expanduser()
    return LOADERS[detect_format(path)](path, split)


def detect_format(path):
    """The LOADERS key for ``path`` (an existing file or folder); DataError if it cannot be told."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (and not a known data set name: 'digits')")
    if is_cifar10_path(path):
        return "cifar10"
    if path.is_dir():
        return "mnist" if is_idx_images_folder(path) else "folder"
    if path.suffix.lower() == ".npz":
        return "npz"
    if IDX_NAME.fullmatch(path.name):
        return "mnist"
    raise DataError(f"{path}: cannot tell the data format from this file; give a folder, an .npz, an MNIST "
                    f"images file or a CIFAR-10 batch, or name the format as mnist:, cifar10:, npz: or folder:")
