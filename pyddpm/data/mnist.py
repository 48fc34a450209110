"""MNIST-style IDX files (MNIST, Fashion-MNIST, EMNIST, KMNIST) as a data set.

IDX format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number (0, 0, type code, number of
dimensions), then each dimension as a big-endian uint32, then the values in row-major order. Image files
have type 0x08 (unsigned byte) and 3 dimensions (N, rows, cols), label files type 0x08 and 1 dimension (N,).
Files may be gzipped (as downloaded).

The split picks the file: ``[prefix]train-images-idx3-ubyte[.gz]`` or ``[prefix]t10k-images-idx3-ubyte[.gz]``
(also ``test-images`` as EMNIST names it, and ``.idx3-ubyte`` with a dot as some mirrors do). The labels
are in the file beside it named the same way, ``[prefix]train-labels-idx1-ubyte[.gz]`` and so on; without
one the images are unlabelled.
"""

import gzip
import math
import re
import zlib
from pathlib import Path

import numpy as np

from .image_data import DataError, ImageData, check_split

IDX_NAME = re.compile(r"(?P<prefix>.*?)(?P<split>train|t10k|test)-images[-.]idx3-ubyte(\.gz)?")
LABELS_NAME = re.compile(r"(?P<prefix>.*?)(?P<split>train|t10k|test)-labels[-.]idx1-ubyte(\.gz)?")
SPLIT_OF = {"train": "train", "t10k": "test", "test": "test"}
UBYTE = 0x08


def load_mnist(path, split="train"):
    """Read the ``split`` images from the IDX files at ``path``; uint8 (N, 1, H, W), labels int64 (N,) or None.

    ``path`` is the folder holding the files, or one of the files (then its folder is searched, for a
    file with the same prefix, e.g. "emnist-letters-"). Digits are not mirror-symmetric: hflip is False.
    The labels come from the labels file beside the images file (see ``find_labels_file``), if there is one.
    """
    check_split(split)
    path = Path(path)
    if path.is_file():
        match = IDX_NAME.fullmatch(path.name)
        if match is None:
            raise DataError(f"{path}: not named like an MNIST images file "
                            f"(train-images-idx3-ubyte[.gz] or t10k-images-idx3-ubyte[.gz])")
        folder, prefix = path.parent, match["prefix"]
    elif path.is_dir():
        folder, prefix = path, None
    else:
        raise DataError(f"{path}: no such file or folder")
    images_file = find_idx_file(folder, split, prefix)
    images = read_idx(images_file)
    labels_file = find_labels_file(images_file)
    labels = None if labels_file is None else read_labels(labels_file, images_file, len(images))
    return ImageData(images=np.ascontiguousarray(images[:, None]), name=f"mnist:{path}", hflip=False,
                     labels=labels)


def find_idx_file(folder, split, prefix=None):
    """The one images file in ``folder`` for ``split`` (and ``prefix``, if given); DataError if none or several."""
    found = []
    for f in sorted(folder.iterdir()):
        m = IDX_NAME.fullmatch(f.name)
        if m and SPLIT_OF[m["split"]] == split and (prefix is None or m["prefix"] == prefix) and f.is_file():
            found.append(f)
    if not found:
        want = "t10k" if split == "test" else "train"
        raise DataError(f"{folder}: no {split} images file ({prefix or ''}{want}-images-idx3-ubyte[.gz])")
    if len(found) > 1:
        raise DataError(f"{folder}: several {split} images files ({', '.join(f.name for f in found)}); "
                        f"pass the path of one of them")
    return found[0]


def find_labels_file(images_file):
    """The labels file beside ``images_file`` (same prefix and split), or None if there is none.

    Any spelling the images files may have is accepted (t10k or test, "-" or "." before idx1, gzipped or
    not); where several fit, the one spelled exactly as the images file is taken, and if none is, DataError.
    """
    m = IDX_NAME.fullmatch(images_file.name)
    found = []
    for f in sorted(images_file.parent.iterdir()):
        n = LABELS_NAME.fullmatch(f.name)
        if n and n["prefix"] == m["prefix"] and SPLIT_OF[n["split"]] == SPLIT_OF[m["split"]] and f.is_file():
            found.append(f)
    if len(found) <= 1:
        return found[0] if found else None
    # Only the part after the prefix is rewritten: a prefix may itself contain "-images" or "idx3".
    rest = images_file.name[len(m["prefix"]):].replace("-images", "-labels", 1).replace("idx3", "idx1", 1)
    mirror = [f for f in found if f.name == m["prefix"] + rest]
    if not mirror:
        raise DataError(f"{images_file.parent}: several labels files for {images_file.name} "
                        f"({', '.join(f.name for f in found)}); keep only one")
    return mirror[0]


def read_labels(path, images_file, n):
    """Parse the IDX labels file ``path`` for the ``n`` images of ``images_file`` -> int64 (n,)."""
    labels = read_idx(path, ndim=1, what="labels")
    if len(labels) != n:
        raise DataError(f"{path}: holds {len(labels)} labels but {images_file.name} holds {n} images")
    return labels.astype(np.int64)


def is_idx_images_folder(folder):
    """Whether ``folder`` holds a file named like an IDX images file (used to detect the format)."""
    return any(IDX_NAME.fullmatch(f.name) for f in folder.iterdir())


def read_idx(path, ndim=3, what="images"):
    """Parse one IDX file of unsigned bytes with ``ndim`` dimensions (plain or gzipped) -> uint8 array.

    ``ndim`` 3 for images, (N, rows, cols); 1 for labels, (N,). ``what`` names them in error messages.
    DataError on any defect.
    """
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # unreadable; gzip stream cut short; corrupt gzip data
        raise DataError(f"{path}: cannot read: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'none'})")
    dtype_code, found_ndim = raw[2], raw[3]
    if dtype_code != UBYTE or found_ndim != ndim:
        raise DataError(f"{path}: IDX type 0x{dtype_code:02x} with {found_ndim} dimensions; expected {what}: "
                        f"type 0x08 (unsigned byte) with {ndim} dimension{'s' if ndim != 1 else ''}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims)  # Python ints: sizes near 2^32 must not wrap around
    if len(raw) != expected:
        defect = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(f"{path}: {defect}: the header gives shape {dims}, so {expected} bytes in all, "
                        f"but the data has {len(raw)}")
    if 0 in dims:
        raise DataError(f"{path}: holds no {what} (dimensions {dims})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()  # copy: writable
