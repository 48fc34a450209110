// pyddpm_emu's test module _cuda_emu: the csrc/cuda launchers, run under the CPU emulation of CUDA
// (csrc/emu), and the planted-bug kernels of planted.cu. Adding a kernel file to csrc/cuda: one bind()
// line per launcher here, and its tests in tests/emu/.
#include "checked.h"
#include "cuda/group_norm.h"
#include "planted.h"

namespace py = pybind11;
using pyddpm_emu_test::bind;

PYBIND11_MODULE(_cuda_emu, m) {
    m.doc() = "csrc/cuda launchers under the CPU emulation of CUDA (tests only)";
    py::register_exception<pyddpm_emu::KernelError>(m, "KernelError", PyExc_RuntimeError);
    m.def("launched_kernels", &pyddpm_emu::launched_kernels, "kernel names launched since the last clear");
    m.def("clear_launched_kernels", &pyddpm_emu::clear_launched_kernels);
    m.def("set_order", [](const std::string& order) {
        if (order != "lowest" && order != "highest") throw py::value_error("order: 'lowest' or 'highest'");
        pyddpm_emu::set_order(order == "highest");
    }, "which runnable thread of a block runs first");

    bind(m, "group_norm_forward_cuda", &pyddpm::group_norm_forward_cuda);
    bind(m, "group_norm_backward_cuda", &pyddpm::group_norm_backward_cuda);

    bind(m, "planted_two_sums_cuda", &planted::two_sums_cuda);
    bind(m, "planted_off_by_one_cuda", &planted::off_by_one_cuda);
    bind(m, "planted_return_before_barrier_cuda", &planted::return_before_barrier_cuda);
    bind(m, "planted_partial_mask_cuda", &planted::partial_mask_cuda);
    bind(m, "planted_dynamic_shared_cuda", &planted::dynamic_shared_cuda);
    bind(m, "planted_divergent_cuda", &planted::divergent_cuda);
    bind(m, "planted_block_size_cuda", &planted::block_size_cuda);
    bind(m, "planted_static_shared_overflow_cuda", &planted::static_shared_overflow_cuda);
}
