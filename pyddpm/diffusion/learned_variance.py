"""A reverse variance the network learns (Ho et al. 2020 Sec. 3.2 and Table 2; Nichol & Dhariwal 2021 Sec. 3.1).

With a fixed variance the network outputs C channels for x of C channels (eps, x_0 or the mean). With a
learned one it outputs 2C: the first C are that same quantity, the last C give the log-variance of
p(x_{t-1} | x_t) per element, in one of two forms:
    "learned"        log sigma^2 = v                                   (the direct form the paper tried)
    "learned-range"  log sigma^2 = f log beta_t + (1 - f) log beta-tilde_t,   f = (v + 1) / 2
                                                                       (Eq. 15, Nichol & Dhariwal 2021)
The range form keeps sigma^2 between the two fixed choices of Ho et al. (its ends, beta-tilde_1 borrowed at
index 0 as the fixed tables do), where the bound barely depends on it; the direct form has to find that
narrow range on its own.

Functions take arrays or autograd Tensors (only + - * and slicing are used) and gathered tables.
"""

from pyddpm.arrays import gather


def split_output(model_output, like, learned):
    """(the mean part (B, C, ...), the variance part (B, C, ...) or None) of a model output for data ``like``
    (B, C, ...). learned: whether the model outputs the 2C channels of a learned variance. Raises ValueError
    naming the channel counts when the output does not have them."""
    channels = like.shape[1]
    expected = 2 * channels if learned else channels
    if tuple(model_output.shape) != (like.shape[0], expected, *like.shape[2:]):
        what = "a learned variance: its 2C channels" if learned else "a fixed variance: the data's C channels"
        raise ValueError(f"the model output has shape {tuple(model_output.shape)}, but a model with {what} "
                         f"give {(like.shape[0], expected, *like.shape[2:])} for data of shape {tuple(like.shape)}")
    if not learned:
        return model_output, None
    return model_output[:, :channels], model_output[:, channels:]


def log_variance(var_type, var_output, t, x, log_betas, posterior_log_variance_clipped):
    """log sigma_t^2 (B, C, ...) per element from the variance part of the output (B, C, ...) at indices t (B,).

    log_betas, posterior_log_variance_clipped: the chain's float64 (T,) tables of log beta_t and log beta-tilde_t
    (index 0 borrowing index 1's); x: the data, for their dtype and array module.
    """
    if var_type == "learned":
        return var_output
    frac = (var_output + 1.0) * 0.5
    return frac * gather(log_betas, t, x) + (1.0 - frac) * gather(posterior_log_variance_clipped, t, x)

