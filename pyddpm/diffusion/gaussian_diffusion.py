"""The Gaussian diffusion of Ho, Jain, Abbeel 2020: forward process, reverse step, losses and the bound.

Time convention: every t here is an int array of shape (B,) holding per-sample indices 0..T-1, and
index i is the paper's t = i + 1. So index 0 is the paper's t = 1: the decoder term L_0 and the
sampling step without noise.

Coefficient tables are float64 numpy arrays of shape (T,). A coefficient gathered for a batch is cast
once to the data's dtype and reshaped to (B, 1, ..., 1) on the data's array module (numpy or cupy).

Functions of the model output (p_mean_variance, vb_terms_bpd, training_losses) also accept an
autograd Tensor in place of an array: they combine it with arrays by + - * ** exp, slicing and .mean only.
The model output has the data's shape, or twice its channels when the variance is learned (the mean part,
then the variance part: pyddpm.diffusion.learned_variance).
q_sample and p_sample take arrays only and run as fused kernels (pyddpm.ops.q_sample, .sampler_step) on
the run's backend (pyddpm.ops.backend; numpy unless set).
"""

import math

import numpy as np
from tqdm import tqdm

from pyddpm import likelihood
from pyddpm.arrays import array_module, gather, to_host
from pyddpm.autograd import Tensor
from pyddpm.diffusion import learned_variance, losses
from pyddpm.diffusion.losses import mean_flat as _mean_flat
from pyddpm.diffusion.settings import LEARNED_VAR_TYPES, check_settings
from pyddpm.ops import checks
from pyddpm.ops.q_sample import q_sample
from pyddpm.ops.sampler_step import StepCoefs, sampler_step
from pyddpm.reverse_step import ReverseStepTables, posterior_mean, predict_x0_from_eps, reverse_mean, step_coefs



class GaussianDiffusion:
    """Forward process q, reverse process p, and the variational bound (Eq. 1-14).

    betas: (T,) forward variances, index i = paper's beta_{i+1}; T >= 2.
    mean_type: "eps" (the model predicts the noise, Eq. 11), "x0" (it predicts x_0 directly) or "mean" (it
      predicts the reverse mean mu_theta itself, Table 2's mu-tilde prediction).
    var_type: "fixedlarge" (sigma_t^2 = beta_t, with beta-tilde at index 0 so the decoder is finite,
      as the official CIFAR-10 run), "fixedsmall" (sigma_t^2 = beta-tilde_t, Eq. 7), or learned per element
      by the network: "learned" or "learned-range" (pyddpm.diffusion.learned_variance).
    loss_type: "simple", "kl", "hybrid" or "dsm" (pyddpm.diffusion.losses). A learned variance trains on
      "kl" or "hybrid" only, and "hybrid" needs one.
    x0_weight: "unweighted" or "snr" (x0-model with "simple" only: Eq. 2.10's weight, seed 004).
    hybrid_lambda: lambda of the hybrid loss, L_simple + lambda L_vlb.
    """

    def __init__(self, betas, mean_type="eps", var_type="fixedlarge", loss_type="simple", x0_weight="unweighted",
                 hybrid_lambda=0.001):
        check_settings(mean_type, var_type, loss_type, x0_weight, hybrid_lambda)
        self.learned_variance = var_type in LEARNED_VAR_TYPES
        self.x0_weight, self.hybrid_lambda = x0_weight, float(hybrid_lambda)
        betas = np.array(to_host(betas), dtype=np.float64)
        if betas.ndim != 1 or betas.shape[0] < 2:
            raise ValueError(f"betas must be 1-D with T >= 2 entries, got shape {betas.shape}")
        if not np.all((betas > 0) & (betas < 1)):
            raise ValueError("betas must lie in (0, 1)")
        self.mean_type, self.var_type, self.loss_type = mean_type, var_type, loss_type
        self.num_timesteps = betas.shape[0]

        # Eq. 4. The cumulative product stays in float64: in float32 it drifts over T = 1000 steps.
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)

        # Eq. 7: q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, beta-tilde_t).
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # beta-tilde_1 = 0 (x_0 is known given x_1 and x_0): its log is -inf, so index 0 borrows index 1.
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1],
                                                               self.posterior_variance[1:]))
        self.log_betas = np.log(betas)
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(self.alphas) / (
            1.0 - self.alphas_cumprod)

        # sigma_t^2 of p(x_{t-1} | x_t) (Sec. 3.2). fixedlarge uses beta-tilde_1 at index 0, like the
        # official code's log-variance; its variance table there keeps beta_1, we keep exp(log) instead.
        if var_type == "fixedlarge":
            self.model_variance = np.append(self.posterior_variance[1], betas[1:])
            self.model_log_variance = np.log(self.model_variance)
        elif self.learned_variance:
            # sigma = 1 in the tables: the sampling step multiplies the noise by the learned sigma per element.
            self.model_variance = np.ones_like(betas)
            self.model_log_variance = np.zeros_like(betas)
        else:
            self.model_variance = self.posterior_variance
            self.model_log_variance = self.posterior_log_variance_clipped
        # The five tables of one reverse step (Alg. 2), in the order the fused kernel takes them.
        self.step_tables = ReverseStepTables(self.sqrt_recip_alphas_cumprod, self.sqrt_recipm1_alphas_cumprod,
                                             self.posterior_mean_coef1, self.posterior_mean_coef2,
                                             self.model_log_variance)

    # --- helpers ---------------------------------------------------------------------------------------

    def _timesteps(self, t, x):
        """t checked as int (B,) indices 0..T-1 for x (B, ...), as an int64 numpy array."""
        t = to_host(t)
        if t.shape != (x.shape[0],) or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"GaussianDiffusion: t must be an int array of shape ({x.shape[0]},), got {t.dtype} "
                             f"{t.shape}")
        checks.timestep_range("GaussianDiffusion", t, self.num_timesteps)
        return t.astype(np.int64, copy=False)

    def _extract(self, table, t, x):
        """table[t] as (B, 1, ..., 1) in x's dtype on x's array module; t: int (B,) indices 0..T-1, checked."""
        return gather(table, self._timesteps(t, x), x)

    @staticmethod
    def _kernel_arrays(*arrays):
        """The arrays as the fused kernels take them: C-contiguous, of one dtype (copies only if needed)."""
        xp = array_module(*arrays)
        dtype = np.result_type(*(a.dtype for a in arrays))
        return tuple(xp.ascontiguousarray(a, dtype=dtype) for a in arrays)

    def _is_first_step(self, t, x):
        """1.0 where t == 0 (the paper's t = 1), else 0.0, as x's dtype, shape (B,), on x's array module."""
        return array_module(x).asarray((to_host(t) == 0).astype(x.dtype))

    # --- forward process -------------------------------------------------------------------------------

    def q_sample(self, x0, t, noise):
        """Eq. 4: x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) noise. All arrays (B, ...); t (B,)."""
        t = self._timesteps(t, x0)
        x0, noise = self._kernel_arrays(x0, noise)
        return q_sample(x0, t, noise, self.sqrt_alphas_cumprod, self.sqrt_one_minus_alphas_cumprod)

    def q_posterior_mean_variance(self, x0, xt, t):
        """Eq. 6-7: mean (B, ...), variance and clipped log-variance (B, 1, ...) of q(x_{t-1} | x_t, x_0)."""
        mean = posterior_mean(x0, xt, self._extract(self.posterior_mean_coef1, t, xt),
                              self._extract(self.posterior_mean_coef2, t, xt))
        return (mean, self._extract(self.posterior_variance, t, xt),
                self._extract(self.posterior_log_variance_clipped, t, xt))

    def predict_x0_from_eps(self, xt, t, eps):
        """Eq. 4 solved for x_0 (Eq. 15): (x_t - sqrt(1 - alpha-bar_t) eps) / sqrt(alpha-bar_t). (B, ...)."""
        return predict_x0_from_eps(xt, eps, self._extract(self.sqrt_recip_alphas_cumprod, t, xt),
                                   self._extract(self.sqrt_recipm1_alphas_cumprod, t, xt))

    def prior_bpd(self, x0):
        """L_T = KL(q(x_T | x_0) || N(0, I)) in bits/dim (Eq. 5), shape (B,). No model involved."""
        t_last = np.full(x0.shape[0], self.num_timesteps - 1, dtype=np.int64)
        mean = self._extract(self.sqrt_alphas_cumprod, t_last, x0) * x0
        log_var = self._extract(np.log1p(-self.alphas_cumprod), t_last, x0)
        return _mean_flat(likelihood.normal_kl(mean, log_var, 0.0, 0.0)) / math.log(2.0)

    # --- reverse process -------------------------------------------------------------------------------

    def split_output(self, model_output, x):
        """(mean part, variance part or None) of a model output for data x (B, C, ...): C channels each."""
        return learned_variance.split_output(model_output, x, self.learned_variance)

    def model_log_variance_of(self, var_output, t, x):
        """log sigma_t^2 of p(x_{t-1} | x_t) at indices t (B,): the fixed table's, (B, 1, ..., 1), when var_output
        is None; else per element (B, C, ...) from the output's variance part (Nichol & Dhariwal Eq. 15)."""
        if var_output is None:
            return self._extract(self.model_log_variance, t, x)
        log_var = learned_variance.log_variance(self.var_type, var_output, t, x, self.log_betas,
                                                self.posterior_log_variance_clipped)
        return log_var if isinstance(log_var, Tensor) else array_module(x).ascontiguousarray(log_var)

    def p_mean_variance(self, model_output, xt, t, clip_denoised):
        """Mean and variance of p(x_{t-1} | x_t) (Eq. 1 and Sec. 3.2) and the model's x_0 estimate.

        model_output (B, C or 2C, ...): its mean part is eps for mean_type "eps" (mean = Eq. 11, computed as the
        posterior mean Eq. 7 at the predicted x_0, which is the same expression), x_0 for "x0", the mean itself
        for "mean". clip_denoised clips the predicted x_0 to [-1, 1] (sampling only; it must be False for a
        Tensor output); a "mean" model's mean is not clipped, only its x_0 estimate (as the official code).
        Returns dict: mean (B, ...), variance and log_variance ((B, 1, ...) fixed, (B, ...) learned), pred_x0.
        """
        return self._mean_variance(*self.split_output(model_output, xt), xt, t, clip_denoised)

    def _mean_variance(self, mean_out, var_out, xt, t, clip_denoised):
        if clip_denoised and isinstance(mean_out, Tensor):
            raise ValueError("clip_denoised=True is not differentiable; pass False for a Tensor output")
        coefs = ReverseStepTables(*(self._extract(table, t, xt) for table in self.step_tables))
        # Eq. 11 (mean_type "eps"): mu_theta = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps_theta),
        # formed as Eq. 7's posterior mean at Eq. 15's x_0: the same number (tests/test_diffusion.py,
        # test_eps_form_of_the_posterior_mean), with room to clip x_0 in between. p_sample's fused step takes
        # the same formula as coefficients (pyddpm.reverse_step.step_coefs).
        mean, pred_x0 = reverse_mean(mean_out, xt, coefs, self.mean_type, clip_denoised)
        log_var = self.model_log_variance_of(var_out, t, xt)
        if var_out is None:
            variance = self._extract(self.model_variance, t, xt)
        else:
            variance = log_var.exp() if isinstance(log_var, Tensor) else array_module(xt).exp(log_var)
        return {"mean": mean, "variance": variance, "log_variance": log_var, "pred_x0": pred_x0}

    def p_sample(self, model_output, xt, t, noise, clip_denoised=True):
        """One step of Alg. 2: x_{t-1} = mean + sigma_t z, with z = 0 for samples at index 0 (paper t = 1).

        model_output (B, C or 2C, ...), xt, noise (B, ...): arrays (not Tensors); t: int (B,). Returns dict:
        sample, pred_x0 (B, ...). The same numbers as p_mean_variance's mean plus the noise, in one fused pass.
        """
        sample, pred_x0 = self._reverse_step(model_output, xt, t, noise, clip_denoised, True)
        return {"sample": sample, "pred_x0": pred_x0}

    def _reverse_step(self, model_output, xt, t, noise, clip_denoised, return_pred_x0):
        """(x_{t-1}, pred_x0 or None) from the fused kernel; the loop skips pred_x0 to save its write. Each
        sample's coefficients come from the float64 tables at its own t (pyddpm.reverse_step.step_coefs); a
        learned variance enters per element as the kernel's log_variance."""
        t = self._timesteps(t, xt)
        mean_out, var_out = self.split_output(model_output, xt)
        mean_out, xt, noise = self._kernel_arrays(mean_out, xt, noise)
        log_var = None if var_out is None else self._kernel_arrays(self.model_log_variance_of(var_out, t, xt),
                                                                   xt)[0]
        coefs = StepCoefs(*step_coefs(self.step_tables, t, self.mean_type))
        # A "mean" model's mean is used as it is (the official code's xprev); clipping touches its x_0 only.
        clip_mean = clip_denoised and self.mean_type != "mean"
        x_next, pred_x0 = sampler_step(mean_out, xt, noise, coefs, clip_mean, return_pred_x0, log_variance=log_var)
        if pred_x0 is not None and clip_denoised and not clip_mean:
            pred_x0 = array_module(pred_x0).clip(pred_x0, -1.0, 1.0)
        return x_next, pred_x0

    def p_sample_loop(self, model_fn, shape, rng, progress=True, clip_denoised=True, dtype=np.float32, xp=np):
        """Alg. 2: x_T ~ N(0, I), then p_sample for indices T-1..0. Returns x_0, shape ``shape``, on ``xp``.

        model_fn(x, t) takes x of ``shape`` and t an int64 numpy array (B,) of equal indices and returns
        an array like x. All noise comes from the numpy Generator ``rng``, so a seed fixes the sample on
        every backend; each draw moves to the array library ``xp`` (numpy, or cupy where the model lives).
        """
        # Drawn in float64 and then cast, so one seed gives the same sample in float32 and float64.
        x = xp.asarray(rng.standard_normal(shape).astype(dtype))  # Alg. 2, line 1
        for i in tqdm(range(self.num_timesteps - 1, -1, -1), desc="sampling", disable=not progress):
            t = np.full(shape[0], i, dtype=np.int64)
            noise = xp.asarray(rng.standard_normal(shape).astype(dtype))
            x, _ = self._reverse_step(model_fn(x, t), x, t, noise, clip_denoised, False)
        return x

    # --- losses and the bound --------------------------------------------------------------------------

    def vb_terms_bpd(self, model_output, x0, xt, t, clip_denoised):
        """One term of the bound (Eq. 5) per sample, in bits/dim.

        At index 0: L_0 = -log p(x_0 | x_1), the discretized decoder (Eq. 13) with mean mu_theta and
        scale sigma_1. At index i > 0: L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) (Eq. 5-8).
        Nats are averaged over the non-batch dimensions and divided by ln 2, as the official code.
        Returns dict: output (B,), pred_x0 (B, ...).
        """
        return self.vb_terms_from_parts(*self.split_output(model_output, xt), x0, xt, t, clip_denoised)

    def vb_terms_from_parts(self, mean_out, var_out, x0, xt, t, clip_denoised):
        """vb_terms_bpd of the output's mean part and variance part (None for a fixed variance) taken apart, so
        the hybrid loss can stop the bound's gradient at the mean (pyddpm.diffusion.losses)."""
        true_mean, _, true_log_var = self.q_posterior_mean_variance(x0, xt, t)
        out = self._mean_variance(mean_out, var_out, xt, t, clip_denoised)
        mean, log_var = out["mean"], out["log_variance"]
        # L_{t-1} of Eq. 5. With mean_type "eps" it is Eq. 12, beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t))
        # ||eps - eps_theta||^2, plus a constant when sigma_t^2 is not beta-tilde_t (tests/test_diffusion.py,
        # test_kl_term_is_lambda_weighted_noise_mse_with_beta_tilde and test_kl_term_with_sigma_squared_beta).
        kl = losses.kl_bpd(true_mean, true_log_var, mean, log_var)
        if not (to_host(t) == 0).any():  # the decoder is the costliest term: skip it when unused
            return {"output": kl, "pred_x0": out["pred_x0"]}
        first = self._is_first_step(t, xt)
        decoder_nll = losses.decoder_nll_bpd(x0, mean, 0.5 * log_var)
        # Arithmetic masking, not where(): it keeps working when the terms are Tensors.
        return {"output": first * decoder_nll + (1.0 - first) * kl, "pred_x0": out["pred_x0"]}

    def training_losses(self, model_fn, x0, t, noise):
        """Per-sample training loss of loss_type at indices t (B,) for data x0 and noise (B, ...), both arrays:
        x_t = q_sample(x0, t, noise), model_fn(x_t, t) the model output (an array or a Tensor). Every objective
        is in pyddpm.diffusion.losses. Returns dict: loss (B,), and mse, vb or dsm (B,)."""
        return losses.training_losses(self, model_fn, x0, t, noise)

    def calc_bpd_loop(self, model_fn, x0, rng, clip_denoised=True, progress=True):
        """The full bound (Eq. 5) per sample in bits/dim: the paper's NLL upper bound (Table 1).

        For every index i = T-1..0 draws x_i ~ q(x_i | x_0) with noise from the numpy Generator rng and
        evaluates vb_terms_bpd. Returns dict of float64 arrays on x0's array module:
          total_bpd (B,) = vb_terms.sum(1) + prior_bpd; prior_bpd (B,) = L_T;
          vb_terms (B, T), column i = L_i (L_0 the decoder); mse (B, T) of pred_x0 against x0.
        """
        xp = array_module(x0)
        B, T = x0.shape[0], self.num_timesteps
        vb_terms = xp.zeros((B, T), dtype=np.float64)
        mse = xp.zeros((B, T), dtype=np.float64)
        for i in tqdm(range(T - 1, -1, -1), desc="bits/dim", disable=not progress):
            t = np.full(B, i, dtype=np.int64)
            xt = self.q_sample(x0, t, xp.asarray(rng.standard_normal(x0.shape).astype(x0.dtype)))
            out = self.vb_terms_bpd(model_fn(xt, t), x0, xt, t, clip_denoised)
            vb_terms[:, i] = out["output"]
            mse[:, i] = _mean_flat((out["pred_x0"] - x0) ** 2)
        prior_bpd = self.prior_bpd(x0).astype(np.float64)
        # Eq. 5: L_T + sum over t > 1 of L_{t-1} + L_0.
        return {"total_bpd": vb_terms.sum(axis=1) + prior_bpd, "prior_bpd": prior_bpd,
                "vb_terms": vb_terms, "mse": mse}
