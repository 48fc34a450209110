"""Tile a batch of images into one picture, and save it as a PNG: how samples are looked at.

Inputs are (N, C, H, W), C = 1 (grey) or 3 (RGB), either float in the model's range [-1, 1] or uint8.
"""

import math

import numpy as np
from PIL import Image

from pyddpm.fileio import atomic_open

# Mid-grey, not black: MNIST-like digits are white on black and CIFAR photos are often dark at the edges,
# so black gutters would merge with the tiles; grey separates both dark and light images.
PAD_VALUE = 128
# save_image_grid's default scale makes each tile at least this many pixels on its short side.
MIN_TILE_PIXELS = 64


def to_uint8(images):
    """(N, C, H, W) float in [-1, 1] or uint8 -> uint8 of the same shape; floats are clipped, then
    mapped by round((x + 1) * 127.5). Raises ValueError for NaN (with the count), TypeError for other
    dtypes."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        raise TypeError(f"images must be float in [-1, 1] or uint8, got dtype {images.dtype}")
    n_nan = int(np.count_nonzero(np.isnan(images)))
    if n_nan:
        raise ValueError(f"images contain {n_nan} NaN value(s) out of {images.size}")
    return np.rint((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def make_grid(images, nrow=None, padding=1, scale=1):
    """Tile ``images`` row by row into one uint8 picture of shape (H', W', C).

    images:  (N, C, H, W), C in {1, 3}, float in [-1, 1] (clipped) or uint8; N >= 1.
    nrow:    images per row (torchvision's meaning); default ceil(sqrt(N)).
    padding: grey (PAD_VALUE) pixels between tiles and around the edge, in output pixels (not scaled).
    scale:   integer nearest-neighbour upsampling of each tile.
    With rows = ceil(N / nrow) and cols = min(nrow, N):
    H' = rows * (H * scale + padding) + padding, W' = cols * (W * scale + padding) + padding.
    Cells past the last image are left grey.
    """
    images = np.asarray(images)
    n, c, h, w = _check_shape(images)
    nrow = math.ceil(math.sqrt(n)) if nrow is None else nrow
    for label, value, low in (("nrow", nrow, 1), ("padding", padding, 0), ("scale", scale, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")

    tiles = to_uint8(images).transpose(0, 2, 3, 1)  # (N, H, W, C), the layout Pillow wants
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    th, tw = h * scale, w * scale
    rows, cols = math.ceil(n / nrow), min(nrow, n)
    grid = np.full((rows * (th + padding) + padding, cols * (tw + padding) + padding, c), PAD_VALUE,
                   dtype=np.uint8)
    for i, tile in enumerate(tiles):
        top = padding + (i // nrow) * (th + padding)
        left = padding + (i % nrow) * (tw + padding)
        grid[top:top + th, left:left + tw] = tile
    return grid


def save_image_grid(path, images, nrow=None, padding=1, scale=None):
    """Write make_grid(images, nrow, padding, scale) to ``path`` as a PNG, atomically (grey "L" for
    C = 1, "RGB" for C = 3). scale defaults to the smallest integer making each tile at least
    MIN_TILE_PIXELS on its short side (4 for 16x16 digits, 2 for 32x32 CIFAR, 1 from 64x64)."""
    images = np.asarray(images)
    _, _, h, w = _check_shape(images)
    if scale is None:
        scale = math.ceil(MIN_TILE_PIXELS / min(h, w))
    grid = make_grid(images, nrow=nrow, padding=padding, scale=scale)
    picture = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    with atomic_open(path, "wb") as f:
        picture.save(f, format="PNG")


def save_side_by_side(path, left, right, nrow=8, gap=8):
    """Write two grids of at most nrow * nrow images each (say samples and real images) side by side as one
    PNG, atomically, at save_image_grid's default scale, with ``gap`` grey pixels between them."""
    left, right = (np.asarray(a)[:nrow * nrow] for a in (left, right))
    _, c, h, w = _check_shape(left)
    if _check_shape(right)[1:] != (c, h, w):
        raise ValueError(f"the two sets of images differ in shape: {left.shape[1:]} and {right.shape[1:]}")
    scale = math.ceil(MIN_TILE_PIXELS / min(h, w))
    a, b = (make_grid(x, nrow=nrow, scale=scale) for x in (left, right))
    height = max(a.shape[0], b.shape[0])
    canvas = np.full((height, a.shape[1] + gap + b.shape[1], a.shape[2]), PAD_VALUE, np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a
    canvas[:b.shape[0], a.shape[1] + gap:] = b
    picture = Image.fromarray(canvas[:, :, 0] if c == 1 else canvas)
    with atomic_open(path, "wb") as f:
        picture.save(f, format="PNG")


def _check_shape(images):
    """Return (N, C, H, W) of ``images`` after checking it is a non-empty batch of 1- or 3-channel images."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels (axis 1), got {c} in shape {images.shape}")
    if n == 0:
        raise ValueError("images is an empty batch (N = 0); nothing to draw")
    if h == 0 or w == 0:
        raise ValueError(f"images have zero height or width: shape {images.shape}")
    return n, c, h, w
