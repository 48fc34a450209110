"""CIFAR-10 "python version" batches (cifar-10-batches-py) as a data set, read without general unpickling.

The batches are Python 2 pickles of {b"data": uint8 (10000, 3072) array, b"labels": [int], ...}; each
row is 1024 red, 1024 green, then 1024 blue values, each a 32x32 image in row-major order, so a plain
reshape gives (N, 3, 32, 32); b"labels" holds each image's class, 0..9. Unpickling runs whatever
callables the file names, so a tampered "batch" could run any code: the reader below resolves only the
three names a pickled NumPy array needs.
"""

import pickle
from pathlib import Path

import numpy as np

from .image_data import DataError, ImageData, as_labels, check_split

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
BATCHES_DIR = "cifar-10-batches-py"
NUM_CLASSES = 10

# The one function NumPy pickles arrays through; taken from an array's own __reduce__ rather than imported
# from numpy.core (NumPy 1) or numpy._core (NumPy 2), both private module paths.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
# A pickled ndarray is _reconstruct(ndarray, shape, dtype) then __setstate__ with a dtype and the raw
# bytes; nothing else is needed. The file's module path depends on the NumPy that wrote it.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, strings, bytes, numbers and NumPy arrays.

    ``find_class`` is how pickle turns a "module.name" in the file into a callable; refusing every name
    outside ALLOWED_GLOBALS means the file cannot call os.system, eval, or anything else.
    """

    def __init__(self, file, source):
        super().__init__(file, encoding="bytes")  # Python 2 str -> bytes, so the array data is not decoded
        self.source = source

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise DataError(f"{self.source}: refused to unpickle {module}.{name}: a CIFAR-10 batch holds only "
                            f"dicts, lists, bytes, numbers and NumPy arrays") from None


def read_batch(path):
    """One batch file -> (images uint8 (n, 3, 32, 32), labels int64 (n,) in 0..9 or None without b"labels").

    DataError if it is not a CIFAR-10 batch or its labels do not fit its images.
    """
    try:
        with open(path, "rb") as f:
            batch = RestrictedUnpickler(f, path).load()
    except DataError:
        raise
    except Exception as e:  # a damaged pickle can raise nearly anything (UnpicklingError, EOFError, KeyError...)
        raise DataError(f"{path}: cannot read as a CIFAR-10 batch: {e!r}") from e
    data = batch.get(b"data") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: expected a dict with b'data' a uint8 (n, 3072) array, got {desc}")
    images = data.reshape(-1, 3, 32, 32)
    if b"labels" not in batch:
        return images, None
    return images, as_labels(batch[b"labels"], len(images), path, num_classes=NUM_CLASSES)


def load_cifar10(path, split="train"):
    """Read the ``split`` of CIFAR-10: uint8 (50000 or 10000, 3, 32, 32), hflip True (as in the paper),
    labels int64 (N,) in 0..9 (None only if no batch has labels).

    ``path`` is the cifar-10-batches-py folder, the folder that contains it, or one of its batch files.
    """
    check_split(split)
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    elif (folder / BATCHES_DIR).is_dir():
        folder = folder / BATCHES_DIR
    if not folder.is_dir():
        raise DataError(f"{path}: no such file or folder")
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder}: missing CIFAR-10 batch file(s) {', '.join(missing)}")
    paths = [folder / n for n in names]
    images, labels = zip(*(read_batch(p) for p in paths))
    return ImageData(images=np.concatenate(images), name=f"cifar10:{path}", hflip=True,
                     labels=join_labels(labels, paths))


def join_labels(labels, paths):
    """The batches' labels (int64 (n_i,) each, or None) in order -> int64 (N,); None if no batch has any.

    A split where only some batches have labels is refused: its images could not all be labelled.
    """
    missing = [p for p, y in zip(paths, labels) if y is None]
    if len(missing) == len(paths):
        return None
    if missing:
        raise DataError(f"{missing[0]}: has no b'labels', but other batches of the split have them")
    return np.concatenate(labels)


def is_cifar10_path(path):
    """Whether ``path`` looks like CIFAR-10 python batches (used to detect the format)."""
    path = Path(path)
    if path.is_file():
        return path.name in TRAIN_BATCHES + TEST_BATCHES
    return (path / BATCHES_DIR).is_dir() or (path / TRAIN_BATCHES[0]).is_file() or (path / TEST_BATCHES[0]).is_file()
