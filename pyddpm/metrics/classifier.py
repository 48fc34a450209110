"""The feature network of the sample metrics: a small convolutional classifier that pyddpm trains itself.

It takes the place of the Inception network of the FID and the Inception Score: trained on the labelled
train split of the same data as the samples, its penultimate layer (a global average of the last conv
block, FEATURES values) is the feature space of the Fréchet distance and of precision/recall, and its
class probabilities give the confidence and class-histogram scores.

    conv3x3(C -> 16)               GroupNorm + SiLU    H x W
    conv3x3(16 -> 32), stride 2    GroupNorm + SiLU    H/2 x W/2
    conv3x3(32 -> 32)              GroupNorm + SiLU
    conv3x3(32 -> 64), stride 2    GroupNorm + SiLU    H/4 x W/4
    mean over the pixels           -> features (B, 64)
    linear(64 -> K)                -> logits (B, K)

Training is deterministic: the seed fixes the initial weights and the order of the batches, so the same
data and seed give the same weights on one machine and backend.
"""

import math

import numpy as np
from tqdm import tqdm

from pyddpm import autograd as ag
from pyddpm.arrays import to_host
from pyddpm.autograd.classification import log_softmax
from pyddpm.data import to_model_range
from pyddpm.nn.layers import Conv2d, GroupNorm, Linear
from pyddpm.nn.module import Module
from pyddpm.nn.optim import Adam
from pyddpm.ops.backend import array_library

WIDTHS = (16, 32, 32, 64)
STRIDES = (1, 2, 1, 2)
FEATURES = WIDTHS[-1]


class FeatureNet(Module):
    """The classifier; ``features`` gives the penultimate layer (B, FEATURES), ``forward`` the logits (B, K)."""

    def __init__(self, in_channels, num_classes, rng):
        self.in_channels, self.num_classes = in_channels, num_classes
        channels = (in_channels,) + WIDTHS
        self.convs = [Conv2d(a, b, 3, rng, stride=s) for a, b, s in zip(channels, channels[1:], STRIDES)]
        self.norms = [GroupNorm(b, silu=True, max_groups=8) for b in WIDTHS]
        self.head = Linear(FEATURES, num_classes, rng)

    def features(self, x):
        for conv, norm in zip(self.convs, self.norms):
            x = norm(conv(x))
        return x.mean(axis=(2, 3))

    def forward(self, x):
        return self.head(self.features(x))


def train_classifier(images, labels, seed=0, epochs=4, batch_size=128, lr=3e-3, progress=True):
    """A FeatureNet trained on uint8 images (N, C, H, W) and int labels (N,) in 0..K-1, with Adam and a
    learning rate that falls linearly to 0; returns the network in eval mode, on the run's array library."""
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    net = FeatureNet(images.shape[1], int(labels.max()) + 1, rng).to(array_library())
    opt = Adam(net.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    total = epochs * steps_per_epoch
    bar = tqdm(total=total, desc="feature classifier", unit="step", disable=not progress, dynamic_ncols=True)
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(images), batch_size):
            idx = order[start:start + batch_size]
            x = array_library().asarray(to_model_range(images[idx]))
            loss = ag.cross_entropy(net(ag.Tensor(x)), labels[idx]).mean()
            net.zero_grad()
            loss.backward()
            opt.step(lr * (1.0 - opt.t / total))
            bar.update()
            bar.set_postfix(loss=f"{float(to_host(loss.data)):.4f}", refresh=False)
    bar.close()
    return net.eval()


def predict(net, images, batch_size=500):
    """(features (N, FEATURES), class probabilities (N, K)), float64 host arrays, for uint8 images (N, C, H, W)."""
    feats, probs = [], []
    with ag.no_grad():
        for start in range(0, len(images), batch_size):
            x = array_library().asarray(to_model_range(images[start:start + batch_size]))
            f = net.features(ag.Tensor(x))
            logits = to_host(net.head(f).data).astype(np.float64)
            feats.append(to_host(f.data).astype(np.float64))
            probs.append(np.exp(log_softmax(logits)))
    return np.concatenate(feats), np.concatenate(probs)


def accuracy(net, images, labels):
    """The fraction of images (N, C, H, W) whose most probable class is their label."""
    _, probs = predict(net, images)
    return float((probs.argmax(axis=1) == np.asarray(labels)).mean())
