"""The choices a GaussianDiffusion is built with, and which of them go together (Ho et al. 2020 Table 2;
Nichol & Dhariwal 2021)."""

import math

MEAN_TYPES = ("eps", "x0", "mean")
LEARNED_VAR_TYPES = ("learned", "learned-range")
VAR_TYPES = ("fixedlarge", "fixedsmall", *LEARNED_VAR_TYPES)
LOSS_TYPES = ("simple", "kl", "dsm", "hybrid")
X0_WEIGHTS = ("unweighted", "snr")


def check_settings(mean_type, var_type, loss_type, x0_weight, hybrid_lambda):
    """Raise ValueError, naming the setting, for a choice out of its list or a pair that makes no sense: a learned
    variance trains on the bound ("kl") or the hybrid only, and the hybrid needs one; the SNR weight belongs to
    an x0-model's L_simple."""
    for name, value, allowed in (("mean_type", mean_type, MEAN_TYPES), ("var_type", var_type, VAR_TYPES),
                                 ("loss_type", loss_type, LOSS_TYPES), ("x0_weight", x0_weight, X0_WEIGHTS)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    if (var_type in LEARNED_VAR_TYPES) != (loss_type == "hybrid") and loss_type != "kl":
        raise ValueError(f"loss_type {loss_type!r} with var_type {var_type!r}: a learned variance trains on 'kl' "
                         f"or 'hybrid', and 'hybrid' trains a learned variance")
    if x0_weight != "unweighted" and (mean_type != "x0" or loss_type != "simple"):
        raise ValueError("x0_weight 'snr' weights an x0-model's L_simple; use it with mean_type 'x0' and loss_type "
                         "'simple'")
    if isinstance(hybrid_lambda, bool) or not isinstance(hybrid_lambda, (int, float)) \
            or not math.isfinite(hybrid_lambda) or hybrid_lambda <= 0:
        raise ValueError(f"hybrid_lambda must be a finite number > 0, got {hybrid_lambda!r}")
