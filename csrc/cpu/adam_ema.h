// Fused Adam step + EMA CPU driver. Shapes: p, g, m, v, ema (n,) contiguous (any tensor, flattened), all
// updated in place but g. The caller has checked every dtype and shape.
#pragma once

namespace pyddpm {

template <typename T>
void adam_ema_cpu(T* p, const T* g, T* m, T* v, T* ema, long n, double step_size, double eps_hat, double beta1,
                  double beta2, double ema_decay);

}  // namespace pyddpm
