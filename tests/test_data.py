"""Tests for pyddpm.data: the built-in digits, every loader on files written here, and every error path."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
from PIL import Image, ImageFont

from pyddpm.data import DataError, ImageData, load_data, make_digits, to_model_range, to_uint8
from pyddpm.data.digits import TEST_SEED, TEST_SIZE, render_glyphs

# ----------------------------------------------------------------------------- the built-in digits


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", "train"), load_data("digits", "test")


def test_digits_shape_dtype_and_flags(digits):
    train, test = digits
    assert train.images.shape == (20_000, 1, 16, 16) and test.images.shape == (2_000, 1, 16, 16)
    for d in digits:
        assert d.images.dtype == np.uint8 and d.images.flags.c_contiguous
        assert d.name == "digits" and d.hflip is False


def test_digits_are_deterministic_and_seed_dependent():
    a, la = make_digits(100, seed=7)
    b, lb = make_digits(100, seed=7)
    c, _ = make_digits(100, seed=8)
    assert a.tobytes() == b.tobytes() and np.array_equal(la, lb)
    assert la.dtype == np.int64 and la.shape == (100,)
    assert not np.array_equal(a, c)


def test_digits_carry_their_labels(digits):
    for d, n in zip(digits, (20_000, 2_000)):
        assert d.labels.dtype == np.int64 and d.labels.shape == (n,) and d.labels.flags.c_contiguous
        assert not d.labels.flags.writeable, "shared between callers, like the images"
        assert set(np.unique(d.labels).tolist()) == set(range(10)) and d.num_classes == 10
    _, expected = make_digits(TEST_SIZE, TEST_SEED)
    assert np.array_equal(digits[1].labels, expected), "each image's label must be the digit drawn"


def test_digits_train_and_test_differ(digits):
    train, test = digits
    train_rows = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in train_rows for img in test.images)


def test_digits_pixel_statistics(digits):
    x = digits[0].images
    assert x.any()
    assert (x == 0).mean() > 0.5, "background should be mostly black"
    assert (x.max(axis=(1, 2, 3)) >= 200).all(), "every digit should have some near-white ink"
    assert 15 < x.mean() < 90
    # Digits fill most of the frame (as MNIST's 20 px box in 28 px): ink 10-13 px tall, so about that.
    ink_rows = (x[:, 0] > 64).any(axis=2)
    first = ink_rows.argmax(axis=1)
    last = 15 - ink_rows[:, ::-1].argmax(axis=1)
    assert 9 <= np.median(last - first + 1) <= 14
    assert (first > 0).mean() > 0.9 and (last < 15).mean() > 0.9, "digits should rarely touch the border"


def test_every_digit_class_present_and_distinct():
    x, labels = make_digits(2000, seed=0)
    assert np.bincount(labels, minlength=10).min() > 100
    means = np.stack([x[labels == k].astype(np.float64).mean(axis=0) for k in range(10)]).reshape(10, -1)
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dist[~np.eye(10, dtype=bool)].min() > 50, "class-mean images should differ between classes"


def test_make_digits_other_size():
    x, _ = make_digits(10, seed=1, size=28)
    assert x.shape == (10, 1, 28, 28) and x.dtype == np.uint8 and x.any()


def test_bitmap_font_fallback_renders_every_digit():
    glyphs = render_glyphs(ImageFont.load_default_imagefont())
    assert len(glyphs) == 10
    for row in glyphs:
        for g in row:
            assert g.mode == "L" and g.height > 40 and np.asarray(g).max() > 200


# ----------------------------------------------------------------------------- scaling


def test_model_range_round_trip():
    x = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    y = to_model_range(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert y.min() == -1.0 and y.max() == 1.0
    assert np.array_equal(to_uint8(y), x)


def test_to_uint8_clips_and_rounds():
    out = to_uint8(np.array([-3.0, -1.0, 0.0, 0.999, 1.0, 7.0]))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 128, 255, 255, 255]


def test_to_model_range_refuses_floats():
    with pytest.raises(TypeError):
        to_model_range(np.zeros(3, np.float32))


# ----------------------------------------------------------------------------- folder of images


def random_images(n, shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n,) + shape, dtype=np.uint8)


def write_pngs(folder, arrays, mode=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode).save(folder / f"img{i:03d}.png")


def test_folder_gray_with_split_subfolders(tmp_path):
    train, test = random_images(5, (6, 7)), random_images(3, (6, 7), seed=1)
    write_pngs(tmp_path / "train", train)
    write_pngs(tmp_path / "test", test)
    got = load_data(str(tmp_path), "train")
    assert got.images.shape == (5, 1, 6, 7) and np.array_equal(got.images[:, 0], train)
    assert got.hflip is False and got.name == f"folder:{tmp_path}"
    assert np.array_equal(load_data(f"folder:{tmp_path}", "test").images[:, 0], test)


def test_folder_rgb_and_rgba(tmp_path):
    rgb = random_images(3, (5, 4, 3))
    write_pngs(tmp_path / "train", rgb)
    rgba = np.concatenate([random_images(1, (5, 4, 3), seed=2), np.full((1, 5, 4, 1), 99, np.uint8)], axis=-1)
    Image.fromarray(rgba[0], "RGBA").save(tmp_path / "train" / "z_alpha.png")
    (tmp_path / "train" / "notes.txt").write_text("not an image, skipped")
    got = load_data(str(tmp_path))
    assert got.images.shape == (4, 3, 5, 4) and got.hflip is True
    assert np.array_equal(got.images[:3], rgb.transpose(0, 3, 1, 2))
    assert np.array_equal(got.images[3], rgba[0, :, :, :3].transpose(2, 0, 1))


def test_folder_without_subfolders_is_split_by_hash(tmp_path):
    x = random_images(60, (4, 4))
    write_pngs(tmp_path / "a", x[:30])
    write_pngs(tmp_path / "b", x[30:])  # class subfolders, found recursively
    train, test = load_data(str(tmp_path), "train").images, load_data(str(tmp_path), "test").images
    assert len(train) + len(test) == 60 and 0 < len(test) < 20
    rows = {r.tobytes() for r in x}
    assert {r.tobytes() for r in train} | {r.tobytes() for r in test} == rows
    assert not {r.tobytes() for r in train} & {r.tobytes() for r in test}
    assert np.array_equal(load_data(str(tmp_path), "test").images, test)


def write_classes(root, classes, shape=(4, 4), per_class=12):
    """One subfolder of PNGs per name of ``classes``; returns {image bytes (H, W): class name}."""
    owner = {}
    for k, name in enumerate(classes):
        x = random_images(per_class, shape, seed=100 + k)
        write_pngs(root / name, x)
        owner.update({r.tobytes(): name for r in x})
    return owner


def test_folder_class_subfolders_give_labels_by_sorted_name(tmp_path):
    owner = write_classes(tmp_path, ["dog", "bird", "cat"])  # written unsorted: the index is by sorted name
    index = {"bird": 0, "cat": 1, "dog": 2}
    both = [load_data(str(tmp_path), split) for split in ("train", "test")]
    assert sum(len(d.images) for d in both) == 36 and 0 < len(both[1].images) < 12
    for d in both:
        assert d.labels.dtype == np.int64 and d.labels.shape == (len(d.images),)
        assert [index[owner[img[0].tobytes()]] for img in d.images] == d.labels.tolist()
    assert both[0].num_classes == 3


def test_folder_class_subfolders_under_train_and_test(tmp_path):
    write_classes(tmp_path / "train", ["a", "b", "c"], per_class=2)
    test_owner = write_classes(tmp_path / "test", ["b", "c"], per_class=2)  # no "a": b is still 1, c still 2
    test = load_data(str(tmp_path), "test")
    assert test.labels.tolist() == [{"b": 1, "c": 2}[test_owner[img[0].tobytes()]] for img in test.images]
    assert load_data(str(tmp_path), "train").labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_folder_without_classes_has_no_labels(tmp_path):
    flat = tmp_path / "flat"
    write_pngs(flat, random_images(30, (4, 4)))
    one = tmp_path / "one"  # a single subfolder is not a set of classes
    write_pngs(one / "only", random_images(30, (4, 4)))
    mixed = tmp_path / "mixed"  # an image in the root beside the subfolders
    write_classes(mixed, ["a", "b"])
    write_pngs(mixed, random_images(1, (4, 4)))
    deep = tmp_path / "deep"  # images nested below a subfolder of a subfolder
    write_classes(deep, ["a", "b"])
    write_pngs(deep / "a" / "more", random_images(2, (4, 4)))
    for folder in (flat, one, mixed, deep):
        for split in ("train", "test"):
            got = load_data(str(folder), split)
            assert got.labels is None and got.num_classes is None, (folder.name, split)


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty"):
        load_data(str(empty))
    with pytest.raises(DataError, match="nowhere"):
        load_data(str(tmp_path / "nowhere"))

    mixed = tmp_path / "mixed" / "train"
    write_pngs(mixed, random_images(2, (4, 4)))
    Image.fromarray(random_images(1, (5, 4))[0]).save(mixed / "zz_big.png")
    with pytest.raises(DataError, match="zz_big.png"):
        load_data(f"folder:{mixed.parent}")

    modes = tmp_path / "modes" / "train"
    write_pngs(modes, random_images(1, (4, 4)))
    Image.fromarray(random_images(1, (4, 4, 3))[0]).save(modes / "zz_rgb.png")
    with pytest.raises(DataError, match="zz_rgb.png"):
        load_data(str(modes.parent))

    corrupt = tmp_path / "corrupt" / "train"
    write_pngs(corrupt, random_images(1, (4, 4)))
    (corrupt / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(DataError, match="broken.png"):
        load_data(str(corrupt.parent))

    only_train = tmp_path / "only_train"
    write_pngs(only_train / "train", random_images(1, (4, 4)))
    with pytest.raises(DataError, match="only_train"):
        load_data(str(only_train), "test")


# ----------------------------------------------------------------------------- npz


@pytest.mark.parametrize("layout, channels", [("NHW", 1), ("NHWC", 1), ("NHWC", 3), ("NCHW", 1), ("NCHW", 3)])
def test_npz_layouts(tmp_path, layout, channels):
    nchw = random_images(50, (channels, 6, 5))
    stored = {"NHW": nchw[:, 0], "NHWC": nchw.transpose(0, 2, 3, 1), "NCHW": nchw}[layout]
    path = tmp_path / "set.npz"
    np.savez(path, x_train=stored, x_test=stored[:4])
    got = load_data(str(path))
    assert got.images.flags.c_contiguous and got.hflip == (channels == 3)
    assert np.array_equal(got.images, nchw) and got.name == f"npz:{path}"
    assert np.array_equal(load_data(f"npz:{path}", "test").images, nchw[:4])


def test_npz_images_key_and_single_array_are_split(tmp_path):
    x = random_images(100, (4, 4))
    for kwargs in ({"images": x, "labels": np.arange(100)}, {"whatever": x}):
        path = tmp_path / "set.npz"
        np.savez(path, **kwargs)
        train, test = load_data(str(path), "train").images, load_data(str(path), "test").images
        assert len(train) + len(test) == 100 and 0 < len(test) < 25
        assert {r.tobytes() for r in train} | {r.tobytes() for r in test} == {r.tobytes() for r in x[:, None]}


def test_npz_labels_follow_the_split(tmp_path):
    x = random_images(100, (4, 4))
    y = np.random.default_rng(1).integers(0, 7, size=100)
    owner = {r.tobytes(): label for r, label in zip(x, y)}
    for key, labels in (("labels", y), ("y", y.astype(np.uint8)), ("labels", y[:, None].astype(np.int32))):
        path = tmp_path / f"{key}_{labels.dtype}.npz"
        np.savez(path, images=x, **{key: labels})
        both = [load_data(str(path), split) for split in ("train", "test")]
        assert sum(len(d.labels) for d in both) == 100 and 0 < len(both[1].labels) < 25
        for d in both:
            assert d.labels.dtype == np.int64 and d.labels.flags.c_contiguous
            assert d.labels.tolist() == [owner[img[0].tobytes()] for img in d.images]

    path = tmp_path / "keras.npz"
    np.savez(path, x_train=x[:90], y_train=y[:90], x_test=x[90:], y_test=y[90:])
    assert np.array_equal(load_data(str(path), "train").labels, y[:90])
    assert np.array_equal(load_data(str(path), "test").labels, y[90:])
    np.savez(path, images=x)
    assert load_data(str(path)).labels is None


def test_npz_refuses_bad_labels(tmp_path):
    x = random_images(20, (4, 4))
    y = np.arange(20) % 3
    negative = y.copy()
    negative[7] = -2
    cases = {
        "negative": ({"images": x, "labels": negative}, r"\['labels'\].*-2 at index 7"),
        "short": ({"images": x, "y": y[:19]}, r"\['y'\].*\(19,\)"),
        "float": ({"images": x, "labels": y.astype(np.float32)}, r"\['labels'\].*float32"),
        "bool": ({"images": x, "labels": y > 0}, r"\['labels'\].*bool"),
        "keras": ({"x_train": x, "y_train": y[:, None, None]}, r"\['y_train'\].*shape"),
    }
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        with pytest.raises(DataError, match=rf"{name}\.npz.*{message}"):
            load_data(str(path))


def test_npz_errors(tmp_path):
    cases = {
        "no_usable.npz": {"a": random_images(3, (4, 4)), "b": random_images(3, (4, 4))},
        "float.npz": {"images": np.zeros((3, 4, 4), np.float32)},
        "badshape.npz": {"images": np.zeros((3, 4, 4, 5), np.uint8)},
        "flat.npz": {"images": np.zeros((3, 16), np.uint8)},
        "no_test.npz": {"x_train": random_images(3, (4, 4))},
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(DataError, match=name.replace(".", r"\.")):
            load_data(str(tmp_path / name), "test" if name == "no_test.npz" else "train")

    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(DataError, match="corrupt.npz"):
        load_data(str(tmp_path / "corrupt.npz"))
    np.savez(tmp_path / "objects.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="objects.npz"):  # pickled arrays are refused, not unpickled
        load_data(str(tmp_path / "objects.npz"))
    with pytest.raises(DataError, match="missing.npz"):
        load_data(f"npz:{tmp_path / 'missing.npz'}")


# ----------------------------------------------------------------------------- MNIST IDX


def idx_bytes(images):
    n, h, w = images.shape
    return bytes([0, 0, 0x08, 3]) + struct.pack(">III", n, h, w) + images.tobytes()


def test_mnist_plain_and_gzipped(tmp_path):
    train, test = random_images(7, (28, 28)), random_images(3, (28, 28), seed=1)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(train))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(test)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 7]) + bytes(7))
    got = load_data(str(tmp_path))  # detected from the file names
    assert got.images.shape == (7, 1, 28, 28) and np.array_equal(got.images[:, 0], train)
    assert got.hflip is False and got.images.flags.writeable
    assert np.array_equal(load_data(f"mnist:{tmp_path}", "test").images[:, 0], test)
    # A path to one of the files finds the other split beside it.
    assert np.array_equal(load_data(str(tmp_path / "train-images-idx3-ubyte"), "test").images[:, 0], test)


def idx_labels(labels):
    return bytes([0, 0, 0x08, 1]) + struct.pack(">I", len(labels)) + np.asarray(labels, np.uint8).tobytes()


def test_mnist_labels_beside_the_images(tmp_path):
    x, y = random_images(6, (5, 5)), np.array([3, 1, 4, 1, 5, 9])
    xt, yt = random_images(2, (5, 5), seed=1), np.array([2, 6])
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(x))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels(y)))
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(idx_bytes(xt))
    (tmp_path / "t10k-labels.idx1-ubyte").write_bytes(idx_labels(yt))
    got = load_data(str(tmp_path))
    assert got.labels.dtype == np.int64 and np.array_equal(got.labels, y) and got.num_classes == 10
    assert np.array_equal(load_data(str(tmp_path / "t10k-images.idx3-ubyte"), "test").labels, yt)
    # EMNIST's spelling: a prefix, and "test" for both files; another prefix's labels are not taken.
    (tmp_path / "emnist-letters-test-images-idx3-ubyte").write_bytes(idx_bytes(xt))
    (tmp_path / "emnist-letters-test-labels-idx1-ubyte").write_bytes(idx_labels([26, 1]))
    (tmp_path / "emnist-digits-train-images-idx3-ubyte").write_bytes(idx_bytes(x))
    assert load_data(str(tmp_path / "emnist-letters-test-images-idx3-ubyte"), "test").labels.tolist() == [26, 1]
    assert load_data(str(tmp_path / "emnist-digits-train-images-idx3-ubyte")).labels is None


def test_mnist_without_labels_file_has_no_labels(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(random_images(3, (5, 5))))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_labels([1, 2, 3]))  # the other split's: not used
    got = load_data(str(tmp_path))
    assert got.labels is None and got.num_classes is None


def test_mnist_labels_with_several_spellings(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(random_images(2, (5, 5)))))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_labels([1, 1]))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels([2, 2])))
    assert load_data(str(tmp_path)).labels.tolist() == [2, 2], "the one spelled as the images file"
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "train-labels.idx1-ubyte").write_bytes(idx_labels([3, 3]))
    with pytest.raises(DataError, match=r"several labels files.*train-labels\.idx1-ubyte"):
        load_data(str(tmp_path))


def test_mnist_refuses_bad_labels_files(tmp_path):
    x = random_images(4, (5, 5))
    cases = {
        "count": idx_labels([1, 2, 3]),
        "images": idx_bytes(x),  # an images file under a labels name
        "truncated": idx_labels([1, 2, 3, 4])[:-1],
        "magic": b"\x12\x34" + idx_labels([1, 2, 3, 4])[2:],
    }
    for name, data in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "train-images-idx3-ubyte").write_bytes(idx_bytes(x))
        (folder / "train-labels-idx1-ubyte").write_bytes(data)
        with pytest.raises(DataError, match="train-labels-idx1-ubyte") as e:
            load_data(str(folder))
        if name == "count":
            assert "3 labels" in str(e.value) and "4 images" in str(e.value)


def test_mnist_errors(tmp_path):
    x = random_images(4, (5, 5))
    good = idx_bytes(x)
    cases = {
        "truncated": good[:-3],
        "truncated_header": good[:9],
        "trailing": good + b"\x00",
        "bad_magic": b"\x12\x34" + good[2:],
        "labels": bytes([0, 0, 8, 1, 0, 0, 0, 4]) + bytes(4),
    }
    for name, data in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "train-images-idx3-ubyte").write_bytes(data)
        with pytest.raises(DataError, match="train-images-idx3-ubyte"):
            load_data(f"mnist:{folder}")

    folder = tmp_path / "gz"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(good)[:-10])  # cut-off gzip stream
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz"):
        load_data(str(folder))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):  # the test file is missing
        load_data(str(folder), "test")


# ----------------------------------------------------------------------------- CIFAR-10


class Py2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2 str opcodes, as in the real CIFAR-10 batches (pickled by Python 2).

    Python 3's protocol 2 would instead write bytes as calls to _codecs.encode, which no real batch holds,
    and NumPy's dtype arguments ("u1", "|") as unicode, where Python 2 wrote str.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def write_cifar_batch(path, images, labels=None):
    """images uint8 (n, 3, 32, 32) -> a batch file in the real format (protocol 2, Python 2 strings).

    labels: the b"labels" list (default i % 10), or "omit" to leave the key out.
    """
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(i % 10) for i in range(len(images))] if labels is None else labels,
        b"data": images.reshape(len(images), 3072),
        b"filenames": [b"img_%d.png" % i for i in range(len(images))],
    }
    if labels == "omit":
        del batch[b"labels"]
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(batch)
    data = path.read_bytes()
    assert b"_codecs" not in data
    # NumPy 1 (which wrote the real files) names the module numpy.core.multiarray: write that too.
    path.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))


def test_cifar10_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    train = random_images(10, (3, 32, 32))
    for i in range(5):
        write_cifar_batch(root / f"data_batch_{i + 1}", train[2 * i: 2 * i + 2])
    test = random_images(3, (3, 32, 32), seed=1)
    write_cifar_batch(root / "test_batch", test)
    assert b"numpy.core.multiarray" in (root / "test_batch").read_bytes()

    got = load_data(str(root))
    assert got.images.shape == (10, 3, 32, 32) and np.array_equal(got.images, train)
    assert got.hflip is True and got.images.flags.c_contiguous
    assert np.array_equal(load_data(f"cifar10:{root}", "test").images, test)
    assert np.array_equal(load_data(str(tmp_path), "test").images, test)  # the folder holding it


def test_cifar10_labels(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    train = random_images(10, (3, 32, 32))
    labels = [9, 0, 3, 3, 7, 1, 2, 8, 5, 4]
    for i in range(5):
        write_cifar_batch(root / f"data_batch_{i + 1}", train[2 * i: 2 * i + 2], labels[2 * i: 2 * i + 2])
    write_cifar_batch(root / "test_batch", random_images(3, (3, 32, 32), seed=1))
    got = load_data(str(root))
    assert got.labels.dtype == np.int64 and got.labels.tolist() == labels and got.num_classes == 10
    assert load_data(str(root), "test").labels.tolist() == [0, 1, 2]

    bad = [([0, 1], r"shape \(2,\), expected \(3,\)"), ([0, 10, 2], "label 10 at index 1"),
           ([0, 1, -1], "label -1 at index 2"), ([0, 1.5, 2], "dtype float64"), ([b"a", b"b", b"c"], r"dtype \|S1")]
    for values, message in bad:
        write_cifar_batch(root / "test_batch", random_images(3, (3, 32, 32)), values)
        with pytest.raises(DataError, match=f"test_batch: .*{message}"):
            load_data(str(root), "test")


def test_cifar10_batches_without_labels(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(5):
        write_cifar_batch(root / f"data_batch_{i + 1}", random_images(2, (3, 32, 32), seed=i), "omit")
    assert load_data(str(root)).labels is None
    write_cifar_batch(root / "data_batch_3", random_images(2, (3, 32, 32)))
    with pytest.raises(DataError, match="data_batch_1.*no b'labels'"):  # only some batches labelled
        load_data(str(root))


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_cifar10_refuses_code_in_pickles(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    marker = tmp_path / "pwned"
    with open(root / "test_batch", "wb") as f:
        Py2Pickler(f, protocol=2).dump({b"data": RunsACommand(marker)})
    with pytest.raises(DataError, match=r"test_batch.*refused.*system"):
        load_data(str(root), "test")
    assert not marker.exists()


def test_cifar10_errors(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    with pytest.raises(DataError, match="data_batch_1"):  # missing batches
        load_data(f"cifar10:{root}")
    (root / "test_batch").write_bytes(b"\x80\x02}q\x00(U\x04data")  # cut off mid-pickle
    with pytest.raises(DataError, match="test_batch"):
        load_data(str(root), "test")
    with open(root / "test_batch", "wb") as f:
        Py2Pickler(f, protocol=2).dump({b"data": [1, 2, 3]})
    with pytest.raises(DataError, match="test_batch.*uint8"):
        load_data(str(root), "test")


# ----------------------------------------------------------------------------- specs


def test_spec_errors(tmp_path):
    with pytest.raises(DataError, match="no_such_thing"):
        load_data(str(tmp_path / "no_such_thing"))
    (tmp_path / "mystery.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match="mystery.bin"):
        load_data(str(tmp_path / "mystery.bin"))
    with pytest.raises(DataError, match="split"):
        load_data("digits", "validation")
    with pytest.raises(DataError, match="folder:"):
        load_data("folder:")


def test_image_data_checks_its_array():
    with pytest.raises(DataError):
        ImageData(images=np.zeros((2, 1, 4, 4), np.float32), name="x", hflip=False)
    with pytest.raises(DataError):
        ImageData(images=np.zeros((2, 4, 4, 3), np.uint8), name="x", hflip=False)


def test_image_data_checks_its_labels():
    images = np.zeros((4, 1, 2, 2), np.uint8)
    good = ImageData(images=images, name="x", hflip=False, labels=np.array([0, 2, 5, 2], np.int64))
    assert good.num_classes == 6
    assert ImageData(images=images, name="x", hflip=False).num_classes is None
    bad = {
        "int32": (np.arange(4, dtype=np.int32), "dtype int32"),
        "float": (np.arange(4.0), "dtype float64"),
        "list": ([0, 1, 2, 3], "list"),
        "short": (np.arange(3), r"shape \(3,\)"),
        "column": (np.arange(4)[:, None], r"shape \(4, 1\)"),
        "strided": (np.arange(8)[::2], "contiguous"),
        "negative": (np.array([0, 1, -3, -1]), "-3 at index 2"),
    }
    for case, (labels, message) in bad.items():
        with pytest.raises(DataError, match=f"^mnist:somewhere: .*{message}"):
            ImageData(images=images, name="mnist:somewhere", hflip=False, labels=labels)
