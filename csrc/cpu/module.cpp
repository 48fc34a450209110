// pyddpm._cpu: the fused kernels on the CPU (OpenMP). The bindings live beside each driver
// (csrc/cpu/<name>.cpp); this file only collects them. See registry.h.
#include "bind/registry.h"

#ifdef _OPENMP
#include <omp.h>
#endif

PYBIND11_MODULE(_cpu, m) {
    m.doc() = "pyddpm's fused kernels on the CPU; call them through pyddpm.ops, which checks and dispatches";
#ifdef _OPENMP
    m.attr("openmp_threads") = omp_get_max_threads();
#else
    m.attr("openmp_threads") = 1;
#endif
    for (auto fn : pyddpm::registry()) fn(m);
}
