// pyddpm._cuda: the fused kernels on the GPU. Entry points take CuPy device pointers (as integers) and
// the current stream; pyddpm/ops checks every array (device, dtype, contiguity, shape) before calling.
// The bindings live beside each kernel (csrc/cuda/<name>_bind.cpp); this file only collects them.
#include "bind/registry.h"

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "pyddpm's fused kernels on the GPU; call them through pyddpm.ops, which checks and dispatches";
    for (auto fn : pyddpm::registry()) fn(m);
}
