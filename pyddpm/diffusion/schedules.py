"""Forward-process variance schedules beta_1..beta_T (Sec. 4 and App. B, Ho et al. 2020).

Every schedule is a float64 array of shape (T,); index i holds the paper's beta_t with t = i + 1.
"""

import math

import numpy as np

_DEFAULTS = {
    # The paper's schedule: linear from beta_1 = 1e-4 to beta_T = 0.02, chosen for T = 1000 (Sec. 4).
    "linear": {"beta_start": 1e-4, "beta_end": 0.02},
    # Linear in sqrt(beta), then squared, as the official code's "quad".
    "quad": {"beta_start": 1e-4, "beta_end": 0.02},
    # Nichol & Dhariwal 2021, Eq. 17: alpha-bar follows a squared cosine; beta capped below 1.
    "cosine": {"s": 0.008, "max_beta": 0.999},
    # The official code's "const" uses beta_end = 0.02; at T = 1000 it leaves alpha-bar_T = 0.98^1000 ~ 2e-9.
    "const": {"beta": 0.02},
}
SCHEDULES = tuple(_DEFAULTS)


def make_beta_schedule(kind, T, **kw):
    """Return betas, float64 of shape (T,), index i = paper's t = i + 1.

    kind and its keywords (defaults in brackets):
      "linear": beta_start [1e-4], beta_end [0.02], linearly spaced (the paper's, App. B);
      "quad":   beta_start [1e-4], beta_end [0.02], linear in sqrt(beta), then squared;
      "cosine": s [0.008], max_beta [0.999]: alpha-bar(t) = f(t)/f(0) with
                f(t) = cos^2(pi/2 (t/T + s)/(1 + s)), beta_t = min(1 - alpha-bar(t)/alpha-bar(t-1), max_beta)
                (Nichol & Dhariwal 2021, Eq. 17);
      "const":  beta [0.02] at every step.
    The linear and quad endpoints were chosen for T = 1000; with far fewer steps alpha-bar_T stays
    well above 0 and the prior term L_T grows, so pass larger endpoints for small T.
    Raises ValueError for an unknown kind, T < 1, or any beta outside (0, 1); TypeError for an
    unknown keyword.
    """
    if kind not in _DEFAULTS:
        raise ValueError(f"unknown beta schedule {kind!r}; expected one of {sorted(_DEFAULTS)}")
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    unknown = set(kw) - set(_DEFAULTS[kind])
    if unknown:
        raise TypeError(f"schedule {kind!r} takes {sorted(_DEFAULTS[kind])}, got unknown {sorted(unknown)}")
    p = {**_DEFAULTS[kind], **kw}
    for name in ("beta_start", "beta_end", "beta", "max_beta"):
        # Checked before use: quad would take the square root of a negative endpoint.
        if name in p and not 0 < p[name] < 1:
            raise ValueError(f"{name} must lie in (0, 1), got {p[name]!r}")

    if kind == "linear":
        betas = np.linspace(p["beta_start"], p["beta_end"], T, dtype=np.float64)
    elif kind == "quad":
        betas = np.linspace(p["beta_start"] ** 0.5, p["beta_end"] ** 0.5, T, dtype=np.float64) ** 2
    elif kind == "cosine":
        steps = np.arange(T + 1, dtype=np.float64) / T
        f = np.cos((steps + p["s"]) / (1.0 + p["s"]) * math.pi / 2) ** 2
        betas = np.minimum(1.0 - f[1:] / f[:-1], p["max_beta"])
    else:
        betas = np.full(T, p["beta"], dtype=np.float64)

    if not np.all((betas > 0) & (betas < 1)):
        raise ValueError(f"betas must lie in (0, 1); schedule {kind!r} with {p} gives "
                         f"min {betas.min():.3g}, max {betas.max():.3g}")
    return betas
