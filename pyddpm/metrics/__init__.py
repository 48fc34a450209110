"""Sample-quality metrics of pyddpm's own: a feature classifier it trains itself (in place of Inception),
the Fréchet distance, precision/recall and confidence/class-entropy in its space, with floor and ceiling
rows. Imports nothing above the diffusion layer; needs no download."""

from pyddpm.metrics.cache import cache_root, load_or_train
from pyddpm.metrics.classifier import FeatureNet, accuracy, predict, train_classifier
from pyddpm.metrics.frechet import frechet_distance, frechet_distance_of, gaussian_stats
from pyddpm.metrics.manifold import precision_recall
from pyddpm.metrics.scores import METRICS, Scorer, check_samples, gaussian_noise_images, reference_rows

__all__ = ["FeatureNet", "METRICS", "Scorer", "accuracy", "cache_root", "check_samples", "frechet_distance",
           "frechet_distance_of", "gaussian_noise_images", "gaussian_stats", "load_or_train", "precision_recall",
           "predict", "reference_rows", "train_classifier"]
