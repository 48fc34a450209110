"""The sample metrics (pyddpm/metrics): each check able to fail, on tiny sizes so the file runs in seconds.

The feature classifier here is trained on 3,000 built-in digits for 3 epochs (a few seconds); the full one
(20,000 images, 4 epochs) is measured in benchmarks/RESULTS.md.
"""

import functools

import numpy as np
import pytest

from pyddpm.data import ImageData
from pyddpm.data.digits import TEST_SEED, TRAIN_SEED, make_digits
from pyddpm.metrics import (Scorer, cache, check_samples, frechet_distance, frechet_distance_of,
                            gaussian_noise_images, gaussian_stats, load_or_train, precision_recall, reference_rows,
                            train_classifier)

TINY = {"epochs": 3, "batch_size": 64, "lr": 3e-3}


@functools.lru_cache(maxsize=1)
def digits():
    """(train, test) ImageData of 3,000 and 1,000 built-in digits, with labels."""
    (xtr, ytr), (xte, yte) = make_digits(3000, TRAIN_SEED), make_digits(1000, TEST_SEED)
    return (ImageData(images=xtr, name="digits-3000", hflip=False, labels=ytr),
            ImageData(images=xte, name="digits-test-1000", hflip=False, labels=yte))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    train, test = digits()
    net, info = load_or_train(train, test, cache_dir=tmp_path_factory.mktemp("cache"), settings=TINY,
                              progress=False)
    return net, info, Scorer(net, test.images)


# --- The Fréchet distance -----------------------------------------------------------------------------

def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _sqrt_psd(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_distance_matches_the_closed_form():
    """For Gaussians, tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), a symmetric root taken with eigh."""
    rng = np.random.default_rng(0)
    for d in (1, 3, 16):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        r1 = _sqrt_psd(s1)
        want = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(_sqrt_psd(r1 @ s2 @ r1))
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-6)
    assert frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)) == pytest.approx(2 + 2 * 1)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_stats_are_float64():
    f = np.random.default_rng(1).normal(size=(500, 12)).astype(np.float32)
    mu, sigma = gaussian_stats(f)
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (12, 12)
    assert abs(frechet_distance_of(f, f)) < 1e-9


def test_frechet_distance_refuses_bad_shapes():
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        gaussian_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# --- Precision and recall -----------------------------------------------------------------------------

def test_precision_and_recall_of_identical_disjoint_and_collapsed_sets():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 4))
    assert precision_recall(real, real) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    collapsed = real[real[:, 0] > 1.0]  # one corner of the distribution, all of it real
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.5


# --- The feature classifier ---------------------------------------------------------------------------

def test_the_classifier_learns_the_digits_and_reports_its_accuracy(trained):
    _, info, _ = trained
    assert info["trained_now"] and info["test_accuracy"] >= 0.9


def test_the_same_data_and_seed_give_the_same_weights():
    train, _ = digits()
    small = train.images[:300], train.labels[:300]
    a, b = (train_classifier(*small, seed=5, epochs=1, batch_size=64, progress=False) for _ in range(2))
    c = train_classifier(*small, seed=6, epochs=1, batch_size=64, progress=False)
    for (name, wa), wb, wc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        np.testing.assert_array_equal(wa, wb, err_msg=name)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.state_dict().values(), c.state_dict().values()))


def test_the_cache_is_read_back_and_a_corrupt_entry_is_rebuilt(tmp_path, capsys):
    train, test = digits()
    train = ImageData(images=train.images[:200], name="digits-200", hflip=False, labels=train.labels[:200])
    settings = {"epochs": 1, "batch_size": 64}
    net, info = load_or_train(train, test, cache_dir=tmp_path, settings=settings, progress=False)
    again, info2 = load_or_train(train, test, cache_dir=tmp_path, settings=settings, progress=False)
    assert info["trained_now"] and not info2["trained_now"]
    assert info2["test_accuracy"] == info["test_accuracy"]
    for name, w in net.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], w, err_msg=name)
    key = cache.entry_key(train.images, train.labels, 0, {**cache.SETTINGS, **settings})
    npz = next((tmp_path / f"classifier-{key}").glob("checkpoint-*.npz"))
    npz.write_bytes(npz.read_bytes()[:100])  # truncated: must not be trusted
    rebuilt, info3 = load_or_train(train, test, cache_dir=tmp_path, settings=settings, progress=False)
    assert info3["trained_now"] and "unusable" in capsys.readouterr().err
    for name, w in net.state_dict().items():
        np.testing.assert_array_equal(rebuilt.state_dict()[name], w, err_msg=name)


def test_data_without_labels_is_refused(tmp_path):
    train, test = digits()
    unlabelled = ImageData(images=train.images, name="no-labels", hflip=False)
    with pytest.raises(ValueError, match="no labels"):
        load_or_train(unlabelled, test, cache_dir=tmp_path, settings=TINY, progress=False)


# --- The scores ---------------------------------------------------------------------------------------

def _noisy(images, strength, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, strength, images.shape), 0, 255).astype(np.uint8)


def test_fd_grows_with_the_strength_of_added_noise(trained):
    _, _, scorer = trained
    train, _ = digits()
    real = train.images[:500]
    fds = [scorer.score(_noisy(real, s))["fd"] for s in (0, 20, 40, 80, 160)]
    assert all(a < b for a, b in zip(fds, fds[1:])), fds


def test_the_floor_the_ceiling_and_a_mode_collapsed_set(trained):
    _, _, scorer = trained
    train, _ = digits()
    rows = reference_rows(scorer, train.images, 500)
    floor, ceiling = rows["real train"], rows["gaussian noise"]
    assert floor["fd"] < 0.1 * ceiling["fd"]
    assert floor["precision"] > 0.6 and floor["recall"] > 0.6 and floor["class_entropy"] > 3.2  # log2 10 = 3.32
    threes = train.images[train.labels == 3][:500]
    collapsed = scorer.score(threes)
    assert collapsed["fd"] > 5 * floor["fd"]
    assert collapsed["precision"] > 0.6 and collapsed["recall"] < 0.5 * floor["recall"]
    assert collapsed["class_entropy"] < 0.5 and collapsed["confidence"] > 0.8


def test_shuffling_pixels_destroys_the_score(trained):
    _, _, scorer = trained
    train, _ = digits()
    real = train.images[:500]
    perm = np.random.default_rng(3).permutation(real.shape[2] * real.shape[3])
    shuffled = real.reshape(len(real), 1, -1)[:, :, perm].reshape(real.shape)
    good, bad = scorer.score(real), scorer.score(np.ascontiguousarray(shuffled))
    assert bad["fd"] > 10 * good["fd"] and bad["precision"] < 0.5 * good["precision"]


def test_noise_images_are_uint8_of_the_asked_shape():
    x = gaussian_noise_images(7, (3, 5, 4), seed=1)
    assert x.dtype == np.uint8 and x.shape == (7, 3, 5, 4) and 0 < x.mean() < 255 and x.std() > 30


def test_samples_of_the_wrong_kind_are_refused():
    like = np.zeros((4, 1, 16, 16), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        check_samples(like.astype(np.float32), like, "s.npz")
    with pytest.raises(ValueError, match=r"\(1, 8, 8\) \(C, H, W\)"):
        check_samples(np.zeros((4, 1, 8, 8), np.uint8), like, "s.npz")
    with pytest.raises(ValueError, match="N >= 2"):
        check_samples(np.zeros((1, 1, 16, 16), np.uint8), like, "s.npz")
    with pytest.raises(ValueError, match="N >= 2"):
        check_samples(np.zeros((0, 1, 16, 16), np.uint8), like, "s.npz")
