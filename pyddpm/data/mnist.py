"""MNIST-style IDX files (MNIST, Fashion-MNIST, EMNIST, KMNIST) as a data set.

IDX format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number (0, 0, type code, number of
dimensions), then each dimension as a big-endian uint32, then the values in row-major order. Image files
have type 0x08 (unsigned byte) and 3 dimensions (N, rows, cols). Files may be gzipped (as downloaded).

The split picks the file: ``[prefix]train-images-idx3-ubyte[.gz]`` or ``[prefix]t10k-images-idx3-ubyte[.gz]``
(also ``test-images`` as EMNIST names it, and ``.idx3-ubyte`` with a dot as some mirrors do).
"""

import gzip
import math
import re
import zlib
from pathlib import Path

import numpy as np

from .image_data import DataError, ImageData, check_split

IDX_NAME = re.compile(r"(?P<prefix>.*?)(?P<split>train|t10k|test)-images[-.]idx3-ubyte(\.gz)?")
SPLIT_OF = {"train": "train", "t10k": "test", "test": "test"}
UBYTE = 0x08


def load_mnist(path, split="train"):
    """Read the ``split`` images from the IDX files at ``path``; uint8 (N, 1, H, W).

    ``path`` is the folder holding the files, or one of the files (then its folder is searched, for a
    file with the same prefix, e.g. "emnist-letters-"). Digits are not mirror-symmetric: hflip is False.
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
    images = read_idx(find_idx_file(folder, split, prefix))
    return ImageData(images=np.ascontiguousarray(images[:, None]), name=f"mnist:{path}", hflip=False)


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


def is_idx_images_folder(folder):
    """Whether ``folder`` holds a file named like an IDX images file (used to detect the format)."""
    return any(IDX_NAME.fullmatch(f.name) for f in folder.iterdir())


def read_idx(path):
    """Parse one IDX images file (plain or gzipped) -> uint8 (N, rows, cols); DataError on any defect."""
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # unreadable; gzip stream cut short; corrupt gzip data
        raise DataError(f"{path}: cannot read: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'none'})")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != UBYTE or ndim != 3:
        raise DataError(f"{path}: IDX type 0x{dtype_code:02x} with {ndim} dimensions; expected images: "
                        f"type 0x08 (unsigned byte) with 3 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims)  # Python ints: sizes near 2^32 must not wrap around
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(f"{path}: {what}: the header gives shape {dims}, so {expected} bytes in all, "
                        f"but the data has {len(raw)}")
    if 0 in dims:
        raise DataError(f"{path}: holds no images (dimensions {dims})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()  # copy: writable
