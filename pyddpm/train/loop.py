"""The training loop (Alg. 1, Ho et al. 2020): sample x0, t, eps; step on the loss; keep an EMA; save.

Everything random in a step (batch indices, flips, t, noise, dropout masks) comes from one numpy
Generator whose state goes into every checkpoint, so `--resume` continues the exact same run. Sample
grids draw from their own generator seeded by (seed, step) and do not disturb the training stream.

On the cuda backend the model, the optimiser state and the EMA live on the GPU; a step uploads its batch
(and the host-drawn noise) once and nothing comes back: the loss and gradient norm stay 0-d device arrays
until the log line (every log_every steps) or a checkpoint reads them, and that is also where a
non-finite loss is caught.
"""

import contextlib
import signal
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pyddpm.autograd import no_grad
from pyddpm.data import to_model_range
from pyddpm.image_grid import save_image_grid
from pyddpm.ops import to_host
from pyddpm.ops.backend import array_library, set_backend
from pyddpm.train.builders import build_diffusion, build_model, load_split, model_fn_arrays
from pyddpm.train.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint
from pyddpm.train.config import TrainConfig
from pyddpm.train.logger import RunLog
from pyddpm.train.optim import EMA, Adam, adam_ema_step, clip_grad_norm, warmup_lr


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss is no longer finite)."""


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C until the block ends, so an update is applied whole or not at all."""
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


class Trainer:
    def __init__(self, cfg, log=print):
        self.cfg, self.log = cfg, log
        self.backend = set_backend(cfg.backend)
        self.out = Path(cfg.out)
        self.data = load_split(cfg, "train")
        self.hflip = self.data.hflip if cfg.hflip is None else cfg.hflip
        self.image_shape = self.data.images.shape[1:]
        self.xp = array_library()
        self.model = build_model(cfg, self.image_shape).to(self.xp)
        self.ema_model = build_model(cfg, self.image_shape).to(self.xp)
        self.ema_model.load_state_dict(self.model.state_dict())
        self.ema_model.eval()
        self.diffusion = build_diffusion(cfg)
        self.params = self.model.parameters()
        self.opt = Adam(self.params, lr=cfg.lr)
        self.ema = EMA(self.params, self.ema_model.parameters(), decay=cfg.ema_decay)
        self.rng = np.random.default_rng(cfg.seed)
        self.model.set_rng(self.rng)
        self.step = 0
        self.last_grid = None
        self.pending = []  # (step, loss, grad_norm) as 0-d arrays, not yet read on the host

    # --- one step of Alg. 1 --------------------------------------------------------------------------
    def batch(self):
        cfg, rng = self.cfg, self.rng
        idx = rng.integers(0, len(self.data.images), cfg.batch_size)
        x0 = to_model_range(self.data.images[idx])
        if self.hflip:
            flip = rng.random(cfg.batch_size) < 0.5
            x0[flip] = x0[flip, :, :, ::-1]
        t = rng.integers(0, self.diffusion.num_timesteps, cfg.batch_size)  # uniform over indices 0..T-1
        noise = rng.standard_normal(x0.shape, dtype=np.float32)
        return self.xp.asarray(x0), t, self.xp.asarray(noise)  # t stays on the host: it indexes tables

    def train_step(self):
        """Forward, loss, backward (interruptible: nothing has changed yet), then the update (atomic).

        Returns the loss and the gradient norm before clipping as 0-d arrays where they were computed.
        """
        x0, t, noise = self.batch()
        self.model.train()
        losses = self.diffusion.training_losses(self.model, x0, t, noise)
        loss = losses["loss"].mean()
        self.model.zero_grad()
        loss.backward()
        with deferred_interrupt():
            grad_norm = clip_grad_norm(self.params, self.cfg.grad_clip)
            adam_ema_step(self.opt, self.ema, lr=warmup_lr(self.step + 1, self.cfg.lr, self.cfg.warmup))
            self.step += 1
        self.pending.append((self.step, loss.data, grad_norm))
        return loss.data, grad_norm

    def read_pending(self):
        """Bring the losses and norms of the steps since the last call to the host, one transfer; raise
        TrainingError if any loss is not finite. Returns their (mean loss, last grad norm)."""
        steps = [s for s, _, _ in self.pending]
        values = to_host(self.xp.stack([self.xp.stack([loss, norm]).astype(self.xp.float64)
                                        for _, loss, norm in self.pending]))
        self.pending = []
        bad = ~np.isfinite(values[:, 0])
        if bad.any():
            raise TrainingError(f"the loss is {values[bad, 0][0]} at step {steps[int(np.argmax(bad))]}; stopping "
                                f"without saving (the last checkpoint is intact). Try a lower --lr.")
        return float(values[:, 0].mean()), float(values[-1, 1])

    # --- checkpoints ------------------------------------------------------------------------------------
    def save(self):
        if self.pending:
            self.read_pending()  # never checkpoint a state that a non-finite loss produced
        arrays = {}
        for prefix, module in (("model", self.model), ("ema", self.ema_model)):
            arrays.update({f"{prefix}/{k}": v for k, v in module.state_dict().items()})
        names = [name for name, _ in self.model.named_parameters()]
        arrays.update({f"adam_m/{n}": m for n, m in zip(names, self.opt.m)})
        arrays.update({f"adam_v/{n}": v for n, v in zip(names, self.opt.v)})
        arrays = {k: to_host(v) for k, v in arrays.items()}
        meta = dict(config=self.cfg.to_dict(), step=self.step, image_shape=list(self.image_shape),
                    adam_t=self.opt.t, ema_updates=self.ema.num_updates,
                    rng_state=self.rng.bit_generator.state)
        with deferred_interrupt():
            save_checkpoint(self.out, arrays, meta)

    def restore(self, ckpt):
        arrays, meta = load_checkpoint(ckpt)
        try:
            self.model.load_state_dict(_strip(arrays, "model/"))
            self.ema_model.load_state_dict(_strip(arrays, "ema/"))
            m, v = _strip(arrays, "adam_m/"), _strip(arrays, "adam_v/")
            names = [name for name, _ in self.model.named_parameters()]
            self.opt.m = [self.xp.array(m[n]) for n in names]
            self.opt.v = [self.xp.array(v[n]) for n in names]
            self.opt.t, self.ema.num_updates, self.step = meta["adam_t"], meta["ema_updates"], meta["step"]
            self.rng.bit_generator.state = meta["rng_state"]
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt}: does not fit this run's model or optimiser ({e})") from e

    # --- samples --------------------------------------------------------------------------------------------
    def sample_grid(self):
        rng = np.random.default_rng([self.cfg.seed, self.step])
        shape = (self.cfg.n_samples, *self.image_shape)
        with no_grad():
            x = self.diffusion.p_sample_loop(model_fn_arrays(self.ema_model), shape, rng, progress=True,
                                            xp=self.xp)
        path = self.out / "samples" / f"step{self.step:07d}.png"
        save_image_grid(path, to_host(x))
        self.last_grid = path
        return path

    # --- the loop -----------------------------------------------------------------------------------------
    def run(self):
        cfg, out = self.cfg, self.out
        runlog = RunLog(out / "log.jsonl", keep_through_step=self.step)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        tick, t_start, tick_step = time.perf_counter(), time.perf_counter(), self.step
        try:
            while self.step < cfg.steps:
                self.train_step()
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    loss, grad_norm = self.read_pending()
                    now = time.perf_counter()
                    record = dict(step=self.step, loss=loss, grad_norm=grad_norm,
                                  lr=warmup_lr(self.step, cfg.lr, cfg.warmup),
                                  images_per_sec=(self.step - tick_step) * cfg.batch_size / (now - tick),
                                  wall_time=now - t_start)
                    runlog.write(record)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_sec']:.0f}")
                    tick, tick_step = now, self.step
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self.save()
                if (cfg.sample_every and self.step % cfg.sample_every == 0) or self.step == cfg.steps:
                    bar.clear()
                    self.log(f"sampling {cfg.n_samples} images with the EMA weights ({self.diffusion.num_timesteps} steps)")
                    self.log(f"wrote {self.sample_grid()}")
        except KeyboardInterrupt:
            bar.close()
            self.save()
            self.log(f"interrupted at step {self.step}; checkpoint saved in {out}. "
                     f"Continue with: python -m pyddpm.train --out {out} --resume")
            raise
        finally:
            bar.close()
        return dict(steps=self.step, wall_time=time.perf_counter() - t_start,
                    final_loss=runlog.last_loss(), last_grid=str(self.last_grid) if self.last_grid else None)


def _strip(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def train(cfg, resume=False, log=print):
    """Train per ``cfg``; with resume=True continue from the checkpoint in cfg.out."""
    existing = find_checkpoint(cfg.out)
    if existing and not resume:
        raise FileExistsError(f"{cfg.out} already holds a checkpoint: pass --resume to continue that run, "
                              f"or --out DIR for a new one")
    if resume and not existing:
        raise FileNotFoundError(f"--resume: no checkpoint in {cfg.out}")
    trainer = Trainer(cfg, log=log)
    if resume:
        trainer.restore(existing)
        log(f"resumed from {existing} at step {trainer.step}")
    log(f"data {trainer.data.name}: {len(trainer.data.images)} images of {trainer.image_shape}, "
        f"hflip={trainer.hflip}; U-Net {trainer.model.num_parameters():,} parameters; T={cfg.timesteps}; "
        f"backend {trainer.backend}")
    return trainer.run()


def resumed_config(run_dir, **overrides):
    """The config saved in the checkpoint in ``run_dir``, with the given fields replaced (e.g. steps)."""
    _, meta = load_checkpoint(run_dir)
    return TrainConfig.from_dict({**meta["config"], **overrides})
