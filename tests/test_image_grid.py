import numpy as np
import pytest
from PIL import Image

from pyddpm.image_grid import PAD_VALUE, make_grid, save_image_grid


def constant_tiles(n, c=1, h=3, w=2):
    """n uint8 tiles, tile i filled with the value 10 * (i + 1), so every tile is told apart by its value."""
    values = 10 * (np.arange(n, dtype=np.uint8) + 1)
    return np.broadcast_to(values[:, None, None, None], (n, c, h, w)).copy()


@pytest.mark.parametrize("n, nrow, padding, scale, expected", [
    (4, None, 1, 1, (2 * 4 + 1, 2 * 3 + 1)),         # default nrow = ceil(sqrt(4)) = 2
    (5, None, 1, 1, (2 * 4 + 1, 3 * 3 + 1)),         # ceil(sqrt(5)) = 3 per row, 2 rows
    (5, 2, 0, 1, (3 * 3, 2 * 2)),                    # 3 rows of 2, no padding
    (3, 8, 2, 1, (1 * 5 + 2, 3 * 4 + 2)),            # nrow > N: only N columns
    (1, None, 1, 4, (1 * 13 + 1, 1 * 9 + 1)),        # scale applies to tiles, not to padding
])
def test_grid_shape(n, nrow, padding, scale, expected):
    grid = make_grid(constant_tiles(n), nrow=nrow, padding=padding, scale=scale)
    assert grid.shape == (*expected, 1) and grid.dtype == np.uint8


def test_each_image_lands_in_its_tile_and_gutters_are_grey():
    n, nrow, pad, scale, h, w = 5, 2, 1, 2, 3, 2
    grid = make_grid(constant_tiles(n, h=h, w=w), nrow=nrow, padding=pad, scale=scale)
    th, tw = h * scale, w * scale
    seen = np.zeros(grid.shape[:2], dtype=bool)
    for i in range(6):  # 3 rows x 2 cols; cell 5 has no image
        top, left = pad + (i // nrow) * (th + pad), pad + (i % nrow) * (tw + pad)
        cell = grid[top:top + th, left:left + tw, 0]
        assert np.all(cell == (10 * (i + 1) if i < n else PAD_VALUE)), i
        seen[top:top + th, left:left + tw] = True
    assert np.all(grid[~seen] == PAD_VALUE)


def test_float_and_uint8_inputs_agree():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(7, 3, 4, 5), dtype=np.uint8)
    for dtype in (np.float32, np.float64):
        x = (u8.astype(dtype) / 127.5 - 1).astype(dtype)
        np.testing.assert_array_equal(make_grid(x, nrow=3), make_grid(u8, nrow=3))


def test_float_mapping_clips_and_rounds():
    x = np.array([-5.0, -1.0, 0.0, 1.0, 7.0, np.inf, -np.inf]).reshape(1, 1, 1, 7)
    row = make_grid(x, padding=0)[0, :, 0]
    np.testing.assert_array_equal(row, [0, 0, 128, 255, 255, 255, 0])


def test_grayscale_and_rgb():
    rgb = np.zeros((2, 3, 2, 2), dtype=np.uint8)
    rgb[:, 0], rgb[:, 1], rgb[:, 2] = 200, 100, 50
    grid = make_grid(rgb, padding=1)
    assert grid.shape == (4, 7, 3)
    np.testing.assert_array_equal(grid[1, 1], [200, 100, 50])
    np.testing.assert_array_equal(grid[0, 0], [PAD_VALUE] * 3)
    assert make_grid(rgb[:, :1], padding=1).shape == (4, 7, 1)


@pytest.mark.parametrize("c, mode", [(1, "L"), (3, "RGB")])
def test_png_reloads_to_the_same_array(tmp_path, c, mode):
    images = np.random.default_rng(1).uniform(-1, 1, size=(6, c, 5, 4)).astype(np.float32)
    path = tmp_path / "sub" / "grid.png"  # the parent folder is created
    save_image_grid(path, images, nrow=3, padding=2, scale=3)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == mode
        reloaded = np.asarray(im)
    expected = make_grid(images, nrow=3, padding=2, scale=3)
    np.testing.assert_array_equal(reloaded, expected[:, :, 0] if c == 1 else expected)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temp file left


def test_default_scale_makes_tiles_at_least_64_pixels(tmp_path):
    save_image_grid(tmp_path / "digits.png", constant_tiles(4, h=16, w=16), padding=0)
    with Image.open(tmp_path / "digits.png") as im:
        assert im.size == (2 * 64, 2 * 64)  # 16x16 tiles, scale 4
    save_image_grid(tmp_path / "big.png", constant_tiles(1, h=70, w=100), padding=0)
    with Image.open(tmp_path / "big.png") as im:
        assert im.size == (100, 70)  # already big enough: scale 1


@pytest.mark.parametrize("images, error, match", [
    (np.zeros((2, 4, 4)), ValueError, r"\(N, C, H, W\)"),
    (np.zeros((2, 2, 4, 4)), ValueError, "1 or 3 channels"),
    (np.zeros((0, 3, 4, 4)), ValueError, "empty batch"),
    (np.zeros((2, 1, 0, 4)), ValueError, "zero height or width"),
    (np.zeros((2, 1, 4, 4), dtype=np.int64), TypeError, "float in \\[-1, 1\\] or uint8"),
])
def test_bad_images_raise(images, error, match):
    with pytest.raises(error, match=match):
        make_grid(images)


def test_nan_is_reported_with_its_count(tmp_path):
    x = np.zeros((2, 1, 4, 4), dtype=np.float32)
    x[0, 0, 1, :3] = np.nan
    with pytest.raises(ValueError, match="3 NaN"):
        make_grid(x)
    with pytest.raises(ValueError, match="3 NaN"):
        save_image_grid(tmp_path / "nan.png", x)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("kwargs", [{"nrow": 0}, {"padding": -1}, {"scale": 0}, {"scale": 1.5}])
def test_bad_layout_arguments_raise(kwargs):
    with pytest.raises(ValueError, match="must be an integer"):
        make_grid(constant_tiles(2), **kwargs)
