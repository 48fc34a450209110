"""A folder of image files (png, jpg, bmp, gif, tiff, webp, ppm/pgm) as a data set.

Files are found recursively (so class subfolders work) and read in sorted order. Grayscale images stay
1 channel; everything else becomes RGB (alpha is dropped, palettes are expanded). All images must end up
with the same size and channel count: resizing would be a choice about the data that the user should make.

Splits: if the folder has ``train/`` and ``test/`` subfolders, the split is that subfolder; otherwise
about 1 file in 10 is held out for test, chosen by a hash of its relative path (see ``in_test_split``).

Labels: if every image lies directly in a subfolder of the split's folder (``cat/1.png``, ``dog/2.png``;
none in the folder itself, none deeper) and there are at least two such subfolders, each subfolder is a
class and an image's label is its subfolder's index in the sorted names. With ``train/`` and ``test/`` the
names of both count, so an index means the same class in either split. Otherwise labels are None.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from .image_data import DataError, ImageData, check_split, in_test_split

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
GRAY_MODES = {"1", "L", "LA", "La"}  # 1-bit and 8-bit gray, with or without alpha: kept as 1 channel
WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}  # 16/32-bit and float: no single right scaling


def load_folder(path, split="train"):
    """Read the ``split`` images of the folder ``path``; uint8 (N, C, H, W), C = 1 (gray) or 3 (RGB), labels
    int64 (N,) from class subfolders, or None (see the module docstring).

    hflip is True for RGB folders (photographs, usually) and False for grayscale ones (often digits or
    letters, which a mirror would corrupt); override it with ``dataclasses.replace`` if that is wrong.
    """
    check_split(split)
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    base, files, classes = split_files(root, split)
    if not files:
        raise DataError(f"{root}: no image files for the {split} split "
                        f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    images = _read_images(files)
    labels = None
    if classes is not None:
        index = {name: i for i, name in enumerate(classes)}
        labels = np.array([index[f.relative_to(base).parts[0]] for f in files], dtype=np.int64)
    return ImageData(images=images, name=f"folder:{root}", hflip=images.shape[1] == 3, labels=labels)


def split_files(root, split):
    """The ``split``'s image files of the folder ``root``, sorted, as (base, files, classes).

    ``base`` is the folder the split's files lie under (``root/split`` or ``root``); ``classes`` the sorted
    class subfolder names (see ``class_names``) or None.
    """
    if (root / "train").is_dir() or (root / "test").is_dir():
        if not (root / split).is_dir():
            raise DataError(f"{root}: has train/ or test/ subfolders but no {split}/ subfolder")
        files = _image_files(root / split)
        # Both splits' subfolders name the classes, so that an index means one class in train and test.
        classes = class_names({root / s: files if s == split else _image_files(root / s)
                               for s in ("train", "test") if (root / s).is_dir()})
        return root / split, files, classes
    want_test = split == "test"
    all_files = _image_files(root)  # classes from all files: the hash may leave a class out of one split
    files = [f for f in all_files if in_test_split(f.relative_to(root).as_posix()) == want_test]
    return root, files, class_names({root: all_files})


def class_names(files_by_folder):
    """The sorted class subfolder names of the folders given, or None if their images are not laid out so.

    ``files_by_folder`` maps a folder to the image files found under it. Classes exist when every file lies
    directly in a subfolder of its folder and there are at least two such subfolder names in all.
    """
    names = set()
    for folder, files in files_by_folder.items():
        for f in files:
            parts = f.relative_to(folder).parts
            if len(parts) != 2:  # an image in the folder itself, or nested deeper: not one class per subfolder
                return None
            names.add(parts[0])
    return sorted(names) if len(names) >= 2 else None


def _read_images(files):
    """Read ``files`` (at least one) -> uint8 (N, C, H, W); DataError if they differ in size or channels."""
    first = _read_image(files[0])
    images = np.empty((len(files),) + first.shape, dtype=np.uint8)
    images[0] = first
    for i, f in enumerate(files[1:], start=1):
        a = _read_image(f)
        if a.shape != first.shape:
            raise DataError(f"{f}: image is {_describe(a.shape)} but {files[0]} is {_describe(first.shape)}; "
                            f"all images of a folder must have the same size and channel count")
        images[i] = a
    return images


def _image_files(folder):
    # Hidden files are skipped: macOS leaves "._name.png" metadata files beside real images.
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())


def _read_image(path):
    """One image file -> uint8 (C, H, W), C = 1 or 3."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in WIDE_MODES:
                raise DataError(f"{path}: mode {im.mode} (more than 8 bits per pixel) is not supported; "
                                f"convert the images to 8-bit first")
            im = im.convert("L" if im.mode in GRAY_MODES else "RGB")
    except DataError:
        raise
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError...) on bad files
        raise DataError(f"{path}: cannot read image: {e}") from e
    a = np.asarray(im)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _describe(chw_shape):
    c, h, w = chw_shape
    return f"{w}x{h} {'gray' if c == 1 else 'RGB'}"
