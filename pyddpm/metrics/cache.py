"""The feature classifier, trained once per data set and kept in a cache folder.

The folder is $PYDDPM_CACHE, else ~/.cache/pyddpm; an entry lives in classifier-<key>/ below it, a
checkpoint of the same safe kind as a training run's (pyddpm.checkpoint: arrays and a JSON manifest, no
pickle). The key is a digest of everything the weights depend on: the train images and labels, the
architecture, the seed and the training settings. An entry that does not load, or whose arrays do not fit
the network, is not trusted: the classifier is trained again and the entry rewritten.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from pyddpm.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint
from pyddpm.metrics.classifier import STRIDES, WIDTHS, FeatureNet, accuracy, train_classifier
from pyddpm.ops.backend import array_library

SETTINGS = {"epochs": 4, "batch_size": 128, "lr": 3e-3}
FORMAT = 1  # bump when the network or its training changes in a way the key does not see


def cache_root(cache_dir=None):
    """The cache folder: ``cache_dir``, else $PYDDPM_CACHE, else ~/.cache/pyddpm."""
    return Path(cache_dir or os.environ.get("PYDDPM_CACHE") or "~/.cache/pyddpm").expanduser()


def entry_key(images, labels, seed, settings):
    """16 hex digits naming the classifier trained on these uint8 images (N, C, H, W) and labels (N,)."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT, "widths": WIDTHS, "strides": STRIDES, "seed": seed,
                         "settings": settings, "shape": images.shape}, sort_keys=True).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels, np.int64).tobytes())
    return h.hexdigest()[:16]


def load_or_train(train, test, seed=0, cache_dir=None, settings=None, progress=True):
    """The feature classifier for the labelled ImageData ``train``, and its accuracy on ``test``.

    Returns (net, info): net a FeatureNet in eval mode on the run's array library; info a dict with
    test_accuracy, the entry's folder, and whether it was trained now or read from the cache.
    """
    settings = {**SETTINGS, **(settings or {})}
    for split in (train, test):
        if split.labels is None:
            raise ValueError(f"{split.name}: the data set has no labels, so no feature classifier can be "
                             f"trained on it (the sample metrics need one)")
    folder = cache_root(cache_dir) / f"classifier-{entry_key(train.images, train.labels, seed, settings)}"
    cached = _load(folder, train.images.shape[1], train.num_classes)
    if cached is not None:
        net, meta = cached
        return net, {**meta, "folder": str(folder), "trained_now": False}
    net = train_classifier(train.images, train.labels, seed=seed, progress=progress, **settings)
    meta = {"data": train.name, "seed": seed, "settings": settings, "num_classes": train.num_classes,
            "in_channels": train.images.shape[1], "test_accuracy": accuracy(net, test.images, test.labels)}
    state = {name: np.asarray(array) for name, array in net.state_dict().items()}
    try:
        save_checkpoint(folder, state, meta)
    except OSError as e:  # a read-only or full cache costs a retrain next time, not this result
        print(f"note: could not cache the feature classifier in {folder}: {e}", file=sys.stderr)
    return net, {**meta, "folder": str(folder), "trained_now": True}


def _load(folder, in_channels, num_classes):
    """(FeatureNet, meta) cached in ``folder``, or None if there is none or it cannot be trusted (said why)."""
    if find_checkpoint(folder) is None:
        return None
    try:
        arrays, meta = load_checkpoint(folder)
        net = FeatureNet(in_channels, num_classes, np.random.default_rng(0))
        net.load_state_dict(arrays)
        float(meta["test_accuracy"])
    except (CheckpointError, ValueError, KeyError, TypeError) as e:
        print(f"note: the cached feature classifier in {folder} is unusable ({e}); training it again",
              file=sys.stderr)
        return None
    return net.to(array_library()).eval(), meta
