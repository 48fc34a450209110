"""The training loop (Alg. 1, Ho et al. 2020): sample x0, t, eps; step on the loss; keep an EMA; save.

Everything random in a step (batch indices, flips, t, noise, dropout masks) comes from one numpy
Generator whose state goes into every checkpoint with the weights it belongs to: a Ctrl-C before a step's
update puts the generator back to where the step began, and the update, the log line and the checkpoint
that follow it run whole (pyddpm.train.interrupts). So `--resume` continues the exact same run, log.jsonl
included (the losses of the steps since the last log line are checkpointed too). Sample grids draw from
their own generator seeded by (seed, step) and do not disturb the training stream.

On the cuda backend the model, the optimiser state and the EMA live on the GPU; a step uploads its batch
(and the host-drawn noise) once and nothing comes back: the loss and gradient norm stay 0-d device arrays
until the log line (every log_every steps) or a checkpoint reads them, and that is also where a
non-finite loss or gradient norm is caught; a checkpoint also refuses non-finite weights, so the newest
checkpoint is always the last finite state.
"""

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint
from pyddpm.data import to_model_range
from pyddpm.diffusion.timestep_sampler import timestep_sampler
from pyddpm.image_grid import save_image_grid
from pyddpm.nn.optim import EMA, Adam, adam_ema_step, clip_grad_norm, warmup_lr
from pyddpm.ops.backend import array_library, set_backend
from pyddpm.train.builders import build_diffusion, build_model, load_split, model_fn_arrays
from pyddpm.train.config import ConfigError, TrainConfig
from pyddpm.train.interrupts import deferred_interrupt
from pyddpm.train.logger import RunLog
from pyddpm.train.run_folder import LOG_NAME, SAMPLES_NAME, RunLock, prepare_new_run


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss is no longer finite)."""


class Trainer:
    families = {}  # cfg.model_type -> its Trainer subclass, added by the subclass's module (pyddpm.train imports it)
    summary = property(lambda self: f"U-Net {self.model.num_parameters():,} parameters; T={self.cfg.timesteps}")

    def __init__(self, cfg, log=print):
        self.cfg, self.log = cfg.validate(), log
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
        self.timesteps = timestep_sampler(cfg.t_sampling, cfg.timesteps)
        self.params = self.model.parameters()
        self.opt = Adam(self.params, lr=cfg.lr)
        self.ema = EMA(self.params, self.ema_model.parameters(), decay=cfg.ema_decay)
        self.rng = np.random.default_rng(cfg.seed)
        self.model.set_rng(self.rng)
        self.step = 0
        self.last_grid = None
        self.pending = []   # (step, loss, grad_norm) as 0-d arrays, not yet read on the host
        self.unlogged = []  # (step, loss, grad_norm) as floats, read but not yet in a log line
        self.saved_step = None  # the step of the newest checkpoint in out, None if there is none
        self.keep = frozenset()  # npz files in out that are not this run's (pyddpm.train.run_folder)
        self.wall_before = 0.0  # seconds trained before this process (a resumed run)
        self.grid_due = False  # a sample grid was interrupted: draw it again on resume

    # --- one step of Alg. 1 --------------------------------------------------------------------------
    def batch(self):
        cfg, rng = self.cfg, self.rng
        idx = rng.integers(0, len(self.data.images), cfg.batch_size)
        x0 = to_model_range(self.data.images[idx])
        if self.hflip:
            flip = rng.random(cfg.batch_size) < 0.5
            x0[flip] = x0[flip, :, :, ::-1]
        t, weights = self.timesteps.sample(rng, cfg.batch_size)  # uniform over 0..T-1 unless importance-sampled
        noise = rng.standard_normal(x0.shape, dtype=np.float32)
        return self.xp.asarray(x0), t, self.xp.asarray(noise), weights  # t stays on the host: it indexes tables

    def losses(self):
        """One batch's loss (a 0-d Tensor) and what update() needs of it; all randomness from self.rng."""
        x0, t, noise, weights = self.batch()
        per_sample = self.diffusion.training_losses(self.model, x0, t, noise)["loss"]
        if self.cfg.t_sampling == "uniform":
            return per_sample.mean(), None
        weights = self.xp.asarray(weights.astype(per_sample.data.dtype))
        return (per_sample * weights).mean(), (t, per_sample.data)

    def learn_from(self, batch_losses):
        """Feed the importance sampler the batch's per-sample terms L_t (held interrupts: all or nothing)."""
        if batch_losses is not None:
            self.timesteps.update(batch_losses[0], to_host(batch_losses[1]))

    def generate(self, shape, rng):
        """Images of ``shape`` from the EMA model, on the run's array library (Alg. 2)."""
        return self.diffusion.p_sample_loop(model_fn_arrays(self.ema_model), shape, rng, progress=True, xp=self.xp)

    def train_step(self, after_update=None):
        """Forward, loss, backward (interruptible: a Ctrl-C puts the generator back to where the step began,
        so nothing of the step remains), then the update and ``after_update()`` (the loop's log line and
        checkpoint) with interrupts held, so they are applied whole.

        Returns the loss and the gradient norm before clipping as 0-d arrays where they were computed.
        """
        state = self.rng.bit_generator.state
        try:
            self.model.train()
            loss, batch_losses = self.losses()
            self.model.zero_grad()
            loss.backward()
        except KeyboardInterrupt:
            self.rng.bit_generator.state = state
            raise
        with deferred_interrupt():
            grad_norm = clip_grad_norm(self.params, self.cfg.grad_clip)
            adam_ema_step(self.opt, self.ema, lr=warmup_lr(self.step + 1, self.cfg.lr, self.cfg.warmup))
            self.learn_from(batch_losses)
            self.step += 1
            self.pending.append((self.step, loss.data, grad_norm))
            if after_update is not None:
                after_update()
        return loss.data, grad_norm

    def read_pending(self):
        """Bring the losses and norms of the steps not yet read to the host, one transfer, into
        self.unlogged; raise TrainingError, naming the step, if a loss or a gradient norm is not finite."""
        if not self.pending:
            return
        steps = [s for s, _, _ in self.pending]
        values = to_host(self.xp.stack([self.xp.stack([loss, norm]).astype(self.xp.float64)
                                        for _, loss, norm in self.pending]))
        self.pending = []
        for step, (loss, norm) in zip(steps, values):
            if not (np.isfinite(loss) and np.isfinite(norm)):
                raise TrainingError(f"step {step}: the loss is {loss} and the gradient norm {norm}; stopping "
                                    f"without saving ({self.newest()}). Try a lower --lr.")
            self.unlogged.append((step, float(loss), float(norm)))

    def log_record(self):
        """The log line of the steps since the last one: their mean loss and the last gradient norm."""
        self.read_pending()
        losses = [loss for _, loss, _ in self.unlogged]
        record = dict(step=self.step, loss=float(np.mean(losses)), grad_norm=self.unlogged[-1][2],
                      lr=warmup_lr(self.step, self.cfg.lr, self.cfg.warmup))
        self.unlogged = []
        return record

    def newest(self):
        if self.saved_step is None:
            return "no checkpoint was written"
        return f"the newest checkpoint in {self.out}, step {self.saved_step}, is the last finite state"

    # --- checkpoints ------------------------------------------------------------------------------------
    def save(self, elapsed=0.0):
        self.read_pending()  # never checkpoint a state that a non-finite loss produced
        arrays = {}
        for prefix, module in (("model", self.model), ("ema", self.ema_model)):
            arrays.update({f"{prefix}/{k}": v for k, v in module.state_dict().items()})
        names = [name for name, _ in self.model.named_parameters()]
        arrays.update({f"adam_m/{n}": m for n, m in zip(names, self.opt.m)})
        arrays.update({f"adam_v/{n}": v for n, v in zip(names, self.opt.v)})
        arrays.update({f"timesteps/{k}": v for k, v in self.timesteps.state().items()})
        arrays = {k: to_host(v) for k, v in arrays.items()}
        bad = [k for k, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
        if bad:
            raise TrainingError(f"step {self.step}: {bad[0]}{f' and {len(bad) - 1} more' if len(bad) > 1 else ''} "
                                f"hold inf or NaN; stopping without saving ({self.newest()}). Try a lower --lr.")
        meta = dict(config=self.cfg.to_dict(), step=self.step, image_shape=list(self.image_shape),
                    adam_t=self.opt.t, ema_updates=self.ema.num_updates,
                    rng_state=self.rng.bit_generator.state, unlogged=[list(u) for u in self.unlogged],
                    wall_time=self.wall_before + elapsed, grid_due=self.grid_due)
        with deferred_interrupt():
            save_checkpoint(self.out, arrays, meta, keep=self.keep)
        self.saved_step = self.step

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
            self.timesteps.load_state(_strip(arrays, "timesteps/"))
            self.unlogged = [(int(s), float(loss), float(norm)) for s, loss, norm in meta.get("unlogged", [])]
            self.wall_before, self.grid_due = float(meta.get("wall_time", 0.0)), bool(meta.get("grid_due", False))
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt}: does not fit this run's model or optimiser ({e})") from e
        self.saved_step = self.step

    # --- samples --------------------------------------------------------------------------------------------
    def sample_grid(self):
        rng = np.random.default_rng([self.cfg.seed, self.step])
        shape = (self.cfg.n_samples, *self.image_shape)
        with no_grad():
            x = to_host(self.generate(shape, rng))
        if not np.isfinite(x).all():
            raise TrainingError(f"step {self.step}: the EMA weights sample inf or NaN; stopping ({self.newest()})")
        path = self.out / SAMPLES_NAME / f"step{self.step:07d}.png"
        save_image_grid(path, x)
        self.last_grid = path
        return path

    def draw_grid(self):
        self.log(f"sampling {self.cfg.n_samples} images with the EMA weights ({self.summary})")
        self.grid_due = True
        self.log(f"wrote {self.sample_grid()}")
        self.grid_due = False

    # --- the loop -----------------------------------------------------------------------------------------
    def run(self):
        cfg, out = self.cfg, self.out
        runlog = RunLog(out / LOG_NAME, keep_through_step=self.step)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        t_start = time.perf_counter()
        tick = [t_start, self.step]  # time and step of the last log line

        def after_update():  # runs with interrupts held: a step's log line and checkpoint are never half done
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                now = time.perf_counter()
                record = dict(self.log_record(), wall_time=self.wall_before + now - t_start,
                              images_per_sec=(self.step - tick[1]) * cfg.batch_size / (now - tick[0]))
                runlog.write(record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_sec']:.0f}")
                tick[:] = [now, self.step]
            if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                self.save(time.perf_counter() - t_start)

        try:
            if self.grid_due:  # the resumed run was stopped while drawing this step's grid
                self.draw_grid()
            while self.step < cfg.steps:
                self.train_step(after_update)
                if (cfg.sample_every and self.step % cfg.sample_every == 0) or self.step == cfg.steps:
                    bar.clear()
                    self.draw_grid()
        except KeyboardInterrupt:
            bar.close()
            if self.saved_step != self.step or self.grid_due:
                self.save(time.perf_counter() - t_start)
            self.log(f"interrupted at step {self.step}; checkpoint saved in {out}. "
                     f"Continue with: python -m pyddpm.train --out {out} --resume")
            raise
        finally:
            bar.close()
        return dict(steps=self.step, wall_time=time.perf_counter() - t_start,
                    final_loss=runlog.last_loss(), last_grid=str(self.last_grid) if self.last_grid else None)


def _strip(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def train(cfg, resume=False, force=False, log=print):
    """Train per ``cfg``; with resume=True continue from the checkpoint in cfg.out.

    The run holds cfg.out's lock throughout (pyddpm.train.run_folder). A new run refuses a folder with
    another run's checkpoint, and one with other run-like files unless ``force`` (then they are kept, and
    log.jsonl and samples/ are moved aside).
    """
    cfg.validate()
    with RunLock(cfg.out):
        existing = find_checkpoint(cfg.out)
        if existing and not resume:
            raise FileExistsError(f"{cfg.out} already holds a checkpoint: pass --resume to continue that run, "
                                  f"or --out DIR for a new one")
        if resume and not existing:
            raise FileNotFoundError(f"--resume: no checkpoint in {cfg.out}")
        trainer = Trainer.families.get(cfg.model_type, Trainer)(cfg, log=log)
        if resume:
            trainer.restore(existing)
            if cfg.steps < trainer.step:
                raise ConfigError(f"--steps {cfg.steps} is below the step the saved run has reached "
                                  f"({trainer.step}); pass a larger --steps to train on")
            if cfg.steps == trainer.step and not trainer.grid_due:
                log(f"the run in {cfg.out} is already at step {trainer.step} of --steps {cfg.steps}: nothing "
                    f"to do (pass a larger --steps to train on)")
            else:
                log(f"resumed from {existing} at step {trainer.step}")
        else:
            trainer.keep = prepare_new_run(cfg.out, force, log)
        log(f"data {trainer.data.name}: {len(trainer.data.images)} images of {trainer.image_shape}, "
            f"hflip={trainer.hflip}; {trainer.summary}; backend {trainer.backend}")
        return trainer.run()


def resumed_config(run_dir, **overrides):
    """The config saved in the checkpoint in ``run_dir``, with the given fields replaced (e.g. steps)."""
    _, meta = load_checkpoint(run_dir)
    return TrainConfig.from_dict({**meta["config"], **overrides})
