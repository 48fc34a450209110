"""Training configurations: one dataclass, the presets a run starts from, and the check of every field.

A preset fixes the model, the diffusion and the optimisation; command-line flags override single fields.
``validate`` runs before any work, for the command line and the Python API alike, so a setting that makes
no sense (a negative learning rate, an EMA decay above 1) is refused with the flag's name, never trained on.
"""

import dataclasses
import math
from dataclasses import dataclass, field

from pyddpm.diffusion.settings import LEARNED_VAR_TYPES, LOSS_TYPES, MEAN_TYPES, VAR_TYPES, X0_WEIGHTS
from pyddpm.diffusion.schedules import SCHEDULES


@dataclass
class TrainConfig:
    preset: str = "digits"
    model_type: str = "ddpm"      # --model: "ddpm" (the diffusion) or "vae" (the one-latent VAE, pyddpm.models.vae)
    data: str = "digits"          # see pyddpm.data.load_data: "digits", a folder, .npz, MNIST, CIFAR-10
    model: dict = field(default_factory=dict)  # U-Net keyword arguments (pyddpm.models.unet.PRESETS)
    # Diffusion (Sec. 4, Ho et al. 2020): T = 1000, linear betas 1e-4 -> 0.02, epsilon prediction, L_simple.
    timesteps: int = 1000
    schedule: str = "linear"
    mean_type: str = "eps"
    var_type: str = "fixedlarge"
    loss_type: str = "simple"
    x0_weight: str = "unweighted"  # x0-model with L_simple: "snr" weights it to the eps-MSE (Eq. 2.10, seed 004)
    hybrid_lambda: float = 0.001   # L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021)
    t_sampling: str = "uniform"    # "importance": t ~ sqrt(E[L_t^2]), for --loss-type kl only
    # Optimisation (App. B): Adam 2e-4, warm-up, clip 1.0, EMA 0.9999.
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    warmup: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    hflip: bool | None = None     # None: flip when the data allows it (natural images yes, digits no)
    seed: int = 0
    backend: str = "auto"         # kernels: auto | numpy | cpu | cuda (pyddpm.ops.backend)
    # Output.
    out: str = "runs/digits"
    sample_every: int = 0         # 0: only at the end
    ckpt_every: int = 500
    log_every: int = 50
    n_samples: int = 64

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}")
        return cls(**d)

    def validate(self):
        """Raise ConfigError, naming the flag and its allowed range, for the first field out of range."""
        validate(self)
        return self


class ConfigError(ValueError):
    """A training setting out of its range; the message names the command-line flag."""


BACKENDS = ("auto", "numpy", "cpu", "cuda")
MODEL_TYPES = ("ddpm", "vae")
T_SAMPLINGS = ("uniform", "importance")
# The diffusion's own settings: a VAE run has none of them, so each must keep its default there.
DIFFUSION_FIELDS = ("timesteps", "schedule", "mean_type", "var_type", "loss_type", "x0_weight", "hybrid_lambda",
                    "t_sampling")


def _int(name, value, low, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")


def _float(name, value, ok, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise ConfigError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")


def _choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {value!r}")


def validate(cfg):
    """Check every field of the TrainConfig ``cfg``; raise ConfigError for the first one out of range."""
    for name in ("steps", "batch_size", "ckpt_every", "log_every", "n_samples"):
        _int(name, getattr(cfg, name), 1, "an integer >= 1")
    for name in ("warmup", "sample_every", "seed"):
        _int(name, getattr(cfg, name), 0, "an integer >= 0")
    _int("timesteps", cfg.timesteps, 2, "an integer >= 2 (the number of diffusion steps T)")
    _float("lr", cfg.lr, lambda v: v > 0, "a finite number > 0")
    _float("grad_clip", cfg.grad_clip, lambda v: v > 0, "a finite number > 0 (the largest gradient norm)")
    _float("ema_decay", cfg.ema_decay, lambda v: 0 <= v <= 1, "a number in [0, 1]")
    _choice("schedule", cfg.schedule, SCHEDULES)
    _choice("mean_type", cfg.mean_type, MEAN_TYPES)
    _choice("var_type", cfg.var_type, VAR_TYPES)
    _choice("loss_type", cfg.loss_type, LOSS_TYPES)
    _choice("backend", cfg.backend, BACKENDS)
    _choice("model_type", cfg.model_type, MODEL_TYPES)
    _choice("x0_weight", cfg.x0_weight, X0_WEIGHTS)
    _choice("t_sampling", cfg.t_sampling, T_SAMPLINGS)
    _float("hybrid_lambda", cfg.hybrid_lambda, lambda v: v > 0, "a finite number > 0")
    _combinations(cfg)
    if cfg.hflip not in (None, True, False):
        raise ConfigError(f"--hflip must be on, off or auto, got {cfg.hflip!r}")
    for name in ("data", "out", "preset"):
        if not isinstance(getattr(cfg, name), str) or not getattr(cfg, name):
            raise ConfigError(f"--{name} must be a non-empty string, got {getattr(cfg, name)!r}")
    if not isinstance(cfg.model, dict):
        raise ConfigError(f"model must be a dict of U-Net settings, got {type(cfg.model).__name__}")


def _combinations(cfg):
    """Settings that are each in range but make no sense together."""
    if cfg.model_type == "vae":
        default = preset_config(cfg.preset) if cfg.preset in PRESETS else TrainConfig()
        changed = [f for f in DIFFUSION_FIELDS if getattr(cfg, f) != getattr(default, f)]
        if changed:
            flag = "--" + changed[0].replace("_", "-")
            raise ConfigError(f"{flag} is a diffusion setting; --model vae has no diffusion (drop {flag})")
        return
    learned = cfg.var_type in LEARNED_VAR_TYPES
    if learned and cfg.loss_type not in ("kl", "hybrid"):
        raise ConfigError(f"--var-type {cfg.var_type} needs --loss-type kl or hybrid: --loss-type {cfg.loss_type} "
                          f"gives the variance no gradient")
    if cfg.loss_type == "hybrid" and not learned:
        raise ConfigError("--loss-type hybrid trains a learned variance: use it with --var-type learned or "
                          "learned-range")
    if cfg.loss_type == "dsm" and learned:
        raise ConfigError("--loss-type dsm trains the score only; it cannot train --var-type " + cfg.var_type)
    if cfg.x0_weight != "unweighted" and (cfg.mean_type != "x0" or cfg.loss_type != "simple"):
        raise ConfigError("--x0-weight applies to --mean-type x0 with --loss-type simple only")
    if cfg.t_sampling == "importance" and cfg.loss_type != "kl":
        raise ConfigError("--t-sampling importance is for the pure bound (--loss-type kl): other losses weight "
                          "the timesteps themselves")
    if cfg.hybrid_lambda != TrainConfig.hybrid_lambda and cfg.loss_type != "hybrid":
        raise ConfigError("--hybrid-lambda applies to --loss-type hybrid only")


PRESETS = {
    # Seconds, for tests: a tiny U-Net on the built-in digits.
    "tiny": dict(model=dict(name="tiny"), timesteps=20, steps=6, batch_size=4, warmup=2,
                 ckpt_every=3, log_every=2, sample_every=3, n_samples=4, out="runs/tiny"),
    # What a bare `python -m pyddpm.train` runs: the built-in 16x16 digits, minutes on 2 cores.
    "digits": dict(model=dict(name="digits"), steps=2000, batch_size=32, lr=1e-3, warmup=100,
                   ckpt_every=500, log_every=50, out="runs/digits"),
    # The paper's CIFAR-10 run (App. B): 800k steps at batch 128, dropout 0.1, warm-up 5000.
    "cifar10": dict(model=dict(name="cifar10"), data="cifar-10-batches-py", steps=800_000, batch_size=128, lr=2e-4,
                    warmup=5000, ckpt_every=5000, log_every=100, sample_every=20_000, n_samples=64,
                    out="runs/cifar10"),
}


def preset_config(name, **overrides):
    if name not in PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(sorted(PRESETS))}, got {name!r}")
    return TrainConfig(**{"preset": name, **PRESETS[name], **overrides})
