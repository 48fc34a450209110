"""Sample scores in the feature classifier's space, with the rows that say what the numbers mean.

For N generated images (uint8, like the data):
    fd          Fréchet distance of their features to the test split's (pyddpm.metrics.frechet)
    precision   the fraction of them on the test split's feature manifold (pyddpm.metrics.manifold)
    recall      the fraction of the test split's images on theirs
    confidence  the classifier's mean top-class probability: high for images it can read (sharp)
    class_entropy  the entropy in bits of the histogram of their predicted classes: log2 K when every class
                is drawn equally often (diverse), 0 when all are one class. The Inception Score's two halves.

Reference rows, scored the same way at the same N: "real train" (N images of the train split: what a perfect
model reaches at this N, the floor of fd) and "gaussian noise" (N images of clipped pixel noise: the ceiling).
"""

import numpy as np

from pyddpm.metrics.classifier import predict
from pyddpm.metrics.frechet import frechet_distance, gaussian_stats
from pyddpm.metrics.manifold import precision_recall

METRICS = ("fd", "precision", "recall", "confidence", "class_entropy")


def check_samples(samples, like, source):
    """ValueError naming ``source`` unless samples are uint8 (N >= 2, C, H, W) with ``like``'s C, H, W."""
    s = np.asarray(samples)
    if s.dtype != np.uint8:
        raise ValueError(f"{source}: samples must be uint8 pixels (0..255), got {s.dtype}")
    if s.ndim != 4 or s.shape[0] < 2:
        raise ValueError(f"{source}: samples must be (N, C, H, W) with N >= 2, got shape {s.shape}")
    if s.shape[1:] != like.shape[1:]:
        raise ValueError(f"{source}: samples are {s.shape[1:]} (C, H, W), the data's images are "
                         f"{like.shape[1:]}")
    return s


class Scorer:
    """The test split's features, computed once, against which any set of images is scored."""

    def __init__(self, net, test_images, k=3):
        self.net, self.k = net, k
        self.test_features, _ = predict(net, test_images)
        self.test_stats = gaussian_stats(self.test_features)
        self.num_classes = net.num_classes

    def score(self, images):
        """The METRICS of uint8 images (N, C, H, W) as a dict of floats."""
        features, probs = predict(self.net, images)
        fd = frechet_distance(*gaussian_stats(features), *self.test_stats)
        precision, recall = precision_recall(self.test_features, features, self.k)
        counts = np.bincount(probs.argmax(axis=1), minlength=self.num_classes) / len(images)
        nonzero = counts[counts > 0]
        return {"fd": fd, "precision": precision, "recall": recall, "confidence": float(probs.max(axis=1).mean()),
                "class_entropy": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0}  # + 0.0: no -0.0 for one class


def gaussian_noise_images(n, shape, seed=0):
    """n uint8 images of the given (C, H, W): pixel noise N(127.5, 64^2) clipped to 0..255."""
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rng.normal(127.5, 64.0, (n, *shape))), 0, 255).astype(np.uint8)


def reference_rows(scorer, train_images, n, seed=0):
    """{"real train": scores, "gaussian noise": scores} at N = n (n train images drawn by seed)."""
    rng = np.random.default_rng(seed)
    real = train_images[np.sort(rng.choice(len(train_images), size=min(n, len(train_images)), replace=False))]
    return {"real train": scorer.score(real),
            "gaussian noise": scorer.score(gaussian_noise_images(n, train_images.shape[1:], seed))}
