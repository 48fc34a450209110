// Fused Adam step + EMA on the CPU: one vectorised pass over each parameter tensor, reading p, g, m, v and
// ema once and writing p, m, v and ema once (9 numbers per parameter; NumPy's in-place path moves ~30).
#include "cpu/adam_ema.h"

#include "kernels/adam_ema.cuh"

namespace pyddpm {

// Below this many elements one thread does the whole tensor: waking the team costs more than it saves
// (most of the U-Net's tensors are biases and norm scales of a few hundred elements).
constexpr long ADAM_PARALLEL_MIN = 32768;

template <typename T>
void adam_ema_cpu(T* p, const T* g, T* m, T* v, T* ema, long n, double step_size, double eps_hat, double beta1,
                  double beta2, double ema_decay) {
    const adam::Scalars<T> s = adam::scalars<T>(step_size, eps_hat, beta1, beta2, ema_decay);
#pragma omp parallel for simd schedule(static) if (n >= ADAM_PARALLEL_MIN)
    for (long i = 0; i < n; ++i) adam::update(p[i], g[i], m[i], v[i], ema[i], s);
}

template void adam_ema_cpu<float>(float*, const float*, float*, float*, float*, long, double, double, double, double,
                                  double);
template void adam_ema_cpu<double>(double*, const double*, double*, double*, double*, long, double, double, double,
                                   double, double);

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

template <typename T>
void adam_ema_t(py::array p, py::array g, py::array m, py::array v, py::array ema, double step_size,
                double eps_hat, double beta1, double beta2, double ema_decay) {
    const char* fn = "adam_ema";
    const auto dt = py::dtype::of<T>();
    const std::vector<py::ssize_t> shape(p.shape(), p.shape() + p.ndim());
    check_array(fn, "p", p, dt, shape);
    check_array(fn, "g", g, dt, shape);
    check_array(fn, "m", m, dt, shape);
    check_array(fn, "v", v, dt, shape);
    check_array(fn, "ema", ema, dt, shape);
    for (const auto& [name, a] : {std::pair<const char*, const py::array*>{"p", &p}, {"m", &m}, {"v", &v},
                                  {"ema", &ema}})
        if (!a->writeable()) throw py::value_error(std::string(fn) + ": " + name + " must be writeable");
    py::gil_scoped_release release;
    adam_ema_cpu<T>(static_cast<T*>(p.mutable_data()), static_cast<const T*>(g.data()),
                    static_cast<T*>(m.mutable_data()), static_cast<T*>(v.mutable_data()),
                    static_cast<T*>(ema.mutable_data()), long(p.size()), step_size, eps_hat, beta1, beta2, ema_decay);
}

void bind(py::module_& m) {
    m.def("adam_ema", [](py::array p, py::array g, py::array m_, py::array v, py::array ema, double step_size,
                         double eps_hat, double beta1, double beta2, double ema_decay) {
        (is_float64("adam_ema", "p", p) ? adam_ema_t<double> : adam_ema_t<float>)(p, g, m_, v, ema, step_size,
                                                                               eps_hat, beta1, beta2, ema_decay);
    }, py::arg("p"), py::arg("g"), py::arg("m"), py::arg("v"), py::arg("ema"), py::arg("step_size"),
       py::arg("eps_hat"), py::arg("beta1"), py::arg("beta2"), py::arg("ema_decay"),
       "Fused Adam step + EMA of the weights, in place on p, m, v, ema");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
