"""Training configurations: one dataclass, and the presets a run starts from.

A preset fixes the model, the diffusion and the optimisation; command-line flags override single fields.
"""

import dataclasses
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    preset: str = "digits"
    data: str = "digits"          # see pyddpm.data.load_data: "digits", a folder, .npz, MNIST, CIFAR-10
    model: dict = field(default_factory=dict)  # U-Net keyword arguments (pyddpm.models.unet.PRESETS)
    # Diffusion (Sec. 4, Ho et al. 2020): T = 1000, linear betas 1e-4 -> 0.02, epsilon prediction, L_simple.
    timesteps: int = 1000
    schedule: str = "linear"
    mean_type: str = "eps"
    var_type: str = "fixedlarge"
    loss_type: str = "simple"
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
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return TrainConfig(**{"preset": name, **PRESETS[name], **overrides})
