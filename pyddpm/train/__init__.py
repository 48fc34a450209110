"""Training: the loop, the run folder, logs, resuming. No math of its own."""

from pyddpm.train.config import PRESETS, TrainConfig, preset_config
from pyddpm.train.loop import Trainer, TrainingError, train
from pyddpm.train.vae_trainer import VAETrainer  # adds --model vae to Trainer.families, for train()

__all__ = ["TrainConfig", "PRESETS", "preset_config", "Trainer", "TrainingError", "train", "VAETrainer"]
