"""python -m pyddpm.toy --data mixture|spiral --out toy.png: the score pictures of a 2-D toy, from code.

Trains the time-conditioned MLP (pyddpm.models.mlp) on samples of a 2-D data set whose density and score are
exact (pyddpm.diffusion.toy_data) with L_simple (Ho et al. 2020, Eq. 14; Alg. 1) and Adam, then draws one PNG:

  1. the true density, log q(x_0);
  2. and 3. the learned score field (red) over the true one (black) at two noise levels, each over the exact
     noised log-density log q(x_t): the score fields of Song & Ermon 2019 (Sec. 2-3), drawn as
     (1 - abar_t) s(x_t, t) = sqrt(abar_t) E[x_0 | x_t] - x_t, the step Tweedie's formula takes, so an
     arrow's length is a distance in the plane (the long ones, far from the data, squashed to a grid cell);
  4. on: the samples every sampler of pyddpm.diffusion.samplers draws from the trained MLP, over the true
     density's contours.

and prints a table (Markdown) of how close each sampler's samples are to the data: the mean true
log-density, the fraction within 3 standard deviations of a component, and the total variation between
the modes' shares and their weights (pyddpm.diffusion.toy_data), with true data as the reference row.

The chain: T = --timesteps with the paper's linear schedule, its endpoints scaled by 1000 / T (beta from
1e-4 to 0.02 at T = 1000), so every T ends at the same abar_T. Samples are drawn with clip_denoised off:
x_0 of a 2-D toy is not confined to [-1, 1]. --steps counts training steps (as python -m pyddpm.train's);
--sample-steps is each sampler's K (python -m pyddpm.sample's --steps); langevin takes K steps at index 0.
"""

import argparse
import math
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import pyddpm
from pyddpm.autograd import no_grad
from pyddpm.command import run
from pyddpm.diffusion.gaussian_diffusion import GaussianDiffusion
from pyddpm.diffusion.samplers import SAMPLERS
from pyddpm.diffusion.samplers.steps import check_steps
from pyddpm.diffusion.schedules import make_beta_schedule
from pyddpm.diffusion.score import score
from pyddpm.diffusion.toy_data import DATASETS, mahalanobis, weight_tv, within
from pyddpm.fileio import atomic_open, check_output_file
from pyddpm.models.mlp import MLP
from pyddpm.nn.optim import Adam
from pyddpm.ops.backend import available, get_backend, set_backend
from pyddpm.train.builders import model_fn_arrays

INSTALL_HINT = "pyddpm.toy draws with matplotlib: pip install -e '.[report]'"
LIMIT = 1.25  # half the side of the square drawn: the data lie in [-1, 1]^2
SCORE_SIGMAS = (0.05, 0.3)  # the noise levels sqrt(1 - abar_t) of the score panels, the nearest index's


class ToyError(Exception):
    """A run that cannot go on (matplotlib missing); the message says what to do."""


def _figure_class():
    """matplotlib's Figure (drawn by the Agg renderer through savefig, no pyplot, as pyddpm.report does)."""
    try:
        # matplotlib itself first: where it is hidden (None in sys.modules), a submodule already imported
        # would otherwise still be found.
        import matplotlib
        import matplotlib.figure
    except ImportError:
        raise ToyError(INSTALL_HINT) from None
    return matplotlib.figure.Figure


def toy_diffusion(timesteps):
    """The eps-model chain of T = ``timesteps`` steps: linear betas from 0.1 / T to 20 / T, L_simple."""
    betas = make_beta_schedule("linear", timesteps, beta_start=0.1 / timesteps, beta_end=20.0 / timesteps)
    return GaussianDiffusion(betas, "eps", "fixedlarge", "simple")


def _one_thread():
    """threadpool_limits(1) over BLAS and OpenMP, the run's backend started first: an OpenMP runtime loaded
    after the limit was set would not be found, and would run on every core."""
    get_backend()
    return threadpool_limits(limits=1)


def train_mlp(gm, diffusion, steps, batch_size=256, lr=2e-3, seed=0, input_scale=40.0, progress=True):
    """An MLP trained for ``steps`` steps of Alg. 1 (Ho et al. 2020) on fresh samples of the mixture gm: x_0 from
    gm, t uniform over 0..T-1, the loss L_simple (Eq. 14), Adam with a learning rate falling linearly to 0.
    BLAS and OpenMP run on one thread meanwhile (as in draw_samples): arrays of a few hundred rows leave a
    second thread little to share, and it must be woken for every op, and waits for a core wherever other
    processes hold them (benchmarks/RESULTS.md, "The 2-D toy").
    Returns (the model in eval mode, the loss of each step (steps,) float64)."""
    with _one_thread():
        return _train(gm, diffusion, steps, batch_size, lr, seed, input_scale, progress)


def _train(gm, diffusion, steps, batch_size, lr, seed, input_scale, progress):
    rng = np.random.default_rng([seed, 1])
    model = MLP(dim=gm.dim, input_scale=input_scale, seed=seed)
    opt = Adam(model.parameters(), lr=lr)
    losses = np.empty(steps)
    bar = tqdm(range(steps), desc="training", unit="step", disable=not progress, dynamic_ncols=True)
    for step in bar:
        x0 = gm.sample(batch_size, rng)[0].astype(np.float32)
        t = rng.integers(0, diffusion.num_timesteps, batch_size)
        noise = rng.standard_normal(x0.shape).astype(np.float32)
        loss = diffusion.training_losses(model, x0, t, noise)["loss"].mean()
        model.zero_grad()
        loss.backward()
        opt.step(lr * (1.0 - step / steps))
        losses[step] = float(loss.data)
        if step % 100 == 0:
            bar.set_postfix(loss=f"{losses[max(0, step - 99):step + 1].mean():.4f}", refresh=False)
    return model.eval(), losses


def draw_samples(model, diffusion, n, sample_steps, seed=0, progress=True):
    """{sampler name: (samples (n, 2) float64, model calls, seconds)} for every sampler in SAMPLERS, each with
    K = ``sample_steps`` and its own generator; on one thread, as train_mlp."""
    with _one_thread():
        return _draw(model, diffusion, n, sample_steps, seed, progress)


def _draw(model, diffusion, n, sample_steps, seed, progress):
    out = {}
    for k, (name, sampler) in enumerate(SAMPLERS.items()):
        calls = [0]
        inner = model_fn_arrays(model)

        def counted(x, t, inner=inner, calls=calls):
            calls[0] += 1
            return inner(x, t)
        start = time.perf_counter()
        with no_grad():
            x = sampler(counted, diffusion, (n, 2), np.random.default_rng([seed, 2, k]), sample_steps,
                        clip_denoised=False, progress=progress)
        out[name] = (np.asarray(x, dtype=np.float64), calls[0], time.perf_counter() - start)
    return out


def closeness_table(gm, samples, reference):
    """The Markdown table of the closeness of each sampler's samples (and of ``reference``, true data) to gm."""
    rows = ["| sampler | model calls | seconds | mean log q(x) | within 3 std | weight TV |",
            "|---|---:|---:|---:|---:|---:|"]

    def row(name, x, calls, seconds):
        logq = gm.log_density(x)
        return (f"| {name} | {calls} | {seconds} | {np.mean(logq):.3f} | {within(gm, x):.3f} | "
                f"{weight_tv(gm, x):.3f} |")
    rows.append(row("data (reference)", reference, "-", "-"))
    rows += [row(name, x, calls, f"{seconds:.1f}") for name, (x, calls, seconds) in samples.items()]
    return "\n".join(rows)


def _log_density(gm, abar=1.0, n=160):
    """log q(x_t) (n, n) on the drawn square (row i at the i-th y from the bottom), and the axis values (n,)."""
    axis = np.linspace(-LIMIT, LIMIT, n)
    points = np.stack([a.ravel() for a in np.meshgrid(axis, axis)], axis=1)
    return gm.log_density(points, abar).reshape(n, n), axis


def _image(ax, logq, floor=8.0):
    """log q as an image, clipped ``floor`` nats below its peak: below that the tails would take the colours."""
    ax.imshow(np.maximum(logq, logq.max() - floor), origin="lower", extent=(-LIMIT, LIMIT, -LIMIT, LIMIT),
              cmap="viridis")


def _squash(step, cell):
    """``step`` (n, 2) with each length l drawn as cell tanh(l / cell): far from the data the step is as long as
    the distance to it, and unsquashed arrows would cross the picture; the short ones near the data keep their
    lengths, and every arrow its direction."""
    length = np.linalg.norm(step, axis=1, keepdims=True)
    return step * cell * np.tanh(length / cell) / np.maximum(length, 1e-12)


def _score_panel(ax, gm, model, diffusion, sigma, rng):
    """The learned and the true (1 - abar) s(x, t) at the index whose sqrt(1 - abar) is nearest ``sigma``; the
    title gives the eps-prediction error E|eps_theta - eps*|^2 / D on x_t ~ q(x_t)."""
    i = int(np.argmin(np.abs(diffusion.sqrt_one_minus_alphas_cumprod - sigma)))
    abar = float(diffusion.alphas_cumprod[i])
    _image(ax, _log_density(gm, abar)[0])
    axis = np.linspace(-1.1, 1.1, 17)
    points = np.stack([a.ravel() for a in np.meshgrid(axis, axis)], axis=1)
    t = np.full(len(points), i)
    with no_grad():
        eps = model(points.astype(np.float32), t).data.astype(np.float64)
    for field, color in ((gm.score(points, abar), "black"), (score(diffusion, eps, points, t), "red")):
        step = _squash((1.0 - abar) * field, axis[1] - axis[0])
        ax.quiver(points[:, 0], points[:, 1], step[:, 0], step[:, 1], color=color, angles="xy",
                  scale_units="xy", scale=1.0, width=0.005)
    x0 = gm.sample(2000, rng)[0]
    xt = math.sqrt(abar) * x0 + math.sqrt(1.0 - abar) * rng.standard_normal(x0.shape)
    exact = gm.eps_model(diffusion.alphas_cumprod)(xt, np.full(len(xt), i))
    with no_grad():
        learned = model(xt.astype(np.float32), np.full(len(xt), i)).data.astype(np.float64)
    error = np.mean((learned - exact) ** 2)
    ax.set_title(f"(1 - abar) x score at t = {i + 1}, sqrt(1 - abar) = {math.sqrt(1.0 - abar):.2f}\n"
                 f"learned (red) on true (black); eps error {error:.4f}", fontsize=9)


def draw_figure(gm, model, diffusion, samples, data_name, seed=0):
    """The Figure: density, two score panels, one panel per sampler (2 rows)."""
    panels = 3 + len(samples)
    cols = math.ceil(panels / 2)
    fig = _figure_class()(figsize=(3.6 * cols, 7.6))
    axes = [fig.add_subplot(2, cols, k + 1) for k in range(panels)]
    logq, axis = _log_density(gm)
    _image(axes[0], logq)
    axes[0].set_title(f"{data_name}: true log-density log q(x_0)", fontsize=9)
    rng = np.random.default_rng([seed, 4])
    for ax, sigma in zip(axes[1:3], SCORE_SIGMAS):
        _score_panel(ax, gm, model, diffusion, sigma, rng)
    for ax, (name, (x, calls, _)) in zip(axes[3:], samples.items()):
        ax.contour(axis, axis, logq, levels=np.linspace(logq.max() - 8.0, logq.max() - 2.0, 3), colors="0.6",
                   linewidths=0.6, linestyles="solid")
        ax.scatter(x[:, 0], x[:, 1], s=2.0, color="tab:red", alpha=0.6, linewidths=0)
        inside = np.mean(mahalanobis(gm, x) <= 3.0)
        ax.set_title(f"{name} ({calls} model calls)\n{inside:.1%} within 3 std of a component", fontsize=9)
    for ax in axes:
        ax.set_xlim(-LIMIT, LIMIT)
        ax.set_ylim(-LIMIT, LIMIT)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _check_flags(args):
    """ValueError naming the flag for a value out of its range; before any work."""
    for name, low in (("steps", 1), ("batch_size", 1), ("samples", 1), ("seed", 0), ("timesteps", 21)):
        value = getattr(args, name)
        if value < low:
            why = " (the linear schedule's beta_T = 20 / T must stay below 1)" if name == "timesteps" else ""
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {low}{why}, got {value}")
    check_steps(args.sample_steps, args.timesteps, "--sample-steps")
    for name in ("lr", "input_scale"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"--{name.replace('_', '-')} must be a number > 0, got {value}")
    check_output_file(args.out, "--out")


def toy(args, progress=True):
    """Train, sample, print the table and write the PNG; returns the table (Markdown)."""
    _check_flags(args)
    _figure_class()  # before training, so a missing matplotlib is said before the work, not after it
    # The toy's arrays are small and on the host: the cpu backend's kernels, never a GPU's.
    set_backend("cpu" if available("cpu") else "numpy")
    gm, diffusion = DATASETS[args.data](), toy_diffusion(args.timesteps)
    start = time.perf_counter()
    model, losses = train_mlp(gm, diffusion, args.steps, args.batch_size, args.lr, args.seed, args.input_scale,
                              progress)
    seconds = time.perf_counter() - start
    tail = losses[-min(len(losses), 500):].mean()
    print(f"trained {args.steps} steps (batch {args.batch_size}) in {seconds:.1f} s "
          f"({args.steps / seconds:.0f} steps/s); loss {losses[0]:.4f} at step 1, {tail:.4f} over the last "
          f"{min(len(losses), 500)}")
    samples = draw_samples(model, diffusion, args.samples, args.sample_steps, args.seed, progress)
    reference = gm.sample(args.samples, np.random.default_rng([args.seed, 3]))[0]
    table = closeness_table(gm, samples, reference)
    print(table)
    fig = draw_figure(gm, model, diffusion, samples, args.data, args.seed)
    with atomic_open(args.out, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    print(f"wrote {args.out}")
    return table


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m pyddpm.toy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=sorted(DATASETS), default="mixture", help="the toy data set (default mixture)")
    p.add_argument("--out", default="toy.png", help="the PNG to write (default toy.png)")
    p.add_argument("--steps", type=int, default=8000, help="training steps (default 8000)")
    p.add_argument("--batch-size", type=int, default=256, help="training batch (default 256)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate at step 1 (default 2e-3)")
    p.add_argument("--input-scale", type=float, default=40.0,
                   help="how much wider the MLP's first layer is drawn (default 40; pyddpm/models/mlp.py)")
    p.add_argument("--timesteps", type=int, default=100, help="T, the chain's length (default 100)")
    p.add_argument("--samples", type=int, default=2000, help="samples per sampler (default 2000)")
    p.add_argument("--sample-steps", type=int, default=100, help="K, each sampler's steps, 1..T (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seeds the model, the training data and the samplers")
    return p.parse_args(argv)


def main(argv=None):
    """Returns the exit code: 0, or 2 for a bad flag or a missing matplotlib (named on stderr)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pyddpm.tune_process()
    _, code = run(lambda: toy(args), (ToyError, ValueError, OSError))
    return code


if __name__ == "__main__":
    sys.exit(main())
