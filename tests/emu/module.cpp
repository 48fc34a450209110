// pyddpm_emu's test module _cuda_emu: the csrc/cuda launchers, run under the CPU emulation of CUDA
// (csrc/emu), and the planted-bug kernels of planted.cu. Adding a kernel file to csrc/cuda: one bind()
// line per launcher here, and its tests in tests/emu/.
#include "checked.h"
#include "cuda/adam_ema.h"
#include "cuda/attention.h"
#include "cuda/group_norm.h"
#include "cuda/im2col.h"
#include "cuda/likelihood.h"
#include "cuda/q_sample.h"
#include "cuda/sampler_step.h"
#include "cuda/winograd.h"
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
    bind(m, "softmax_rows_cuda", &pyddpm::softmax_rows_cuda);
    bind(m, "softmax_backward_rows_cuda", &pyddpm::softmax_backward_rows_cuda);
    bind(m, "q_sample_cuda", &pyddpm::q_sample_cuda);
    bind(m, "sampler_step_cuda", &pyddpm::sampler_step_cuda);
    bind(m, "discretized_gaussian_log_likelihood_cuda", &pyddpm::discretized_gaussian_log_likelihood_cuda);
    bind(m, "normal_kl_cuda", &pyddpm::normal_kl_cuda);
    bind(m, "adam_ema_cuda", &pyddpm::adam_ema_cuda);
    bind(m, "im2col_cuda", &pyddpm::im2col_cuda);
    bind(m, "col2im_cuda", &pyddpm::col2im_cuda);
    bind(m, "im2col_rows_cuda", &pyddpm::im2col_rows_cuda);
    bind(m, "col2im_rows_cuda", &pyddpm::col2im_rows_cuda);
    bind(m, "rows_to_nchw_cuda", &pyddpm::rows_to_nchw_cuda);
    bind(m, "nchw_to_rows_cuda", &pyddpm::nchw_to_rows_cuda);
    bind(m, "winograd_input_cuda", &pyddpm::winograd_input_cuda);
    bind(m, "winograd_input_grad_cuda", &pyddpm::winograd_input_grad_cuda);
    bind(m, "winograd_output_cuda", &pyddpm::winograd_output_cuda);
    bind(m, "winograd_output_grad_cuda", &pyddpm::winograd_output_grad_cuda);

    bind(m, "planted_two_sums_cuda", &planted::two_sums_cuda);
    bind(m, "planted_off_by_one_cuda", &planted::off_by_one_cuda);
    bind(m, "planted_return_before_barrier_cuda", &planted::return_before_barrier_cuda);
    bind(m, "planted_partial_mask_cuda", &planted::partial_mask_cuda);
    bind(m, "planted_dynamic_shared_cuda", &planted::dynamic_shared_cuda);
    bind(m, "planted_divergent_cuda", &planted::divergent_cuda);
    bind(m, "planted_block_size_cuda", &planted::block_size_cuda);
    bind(m, "planted_static_shared_overflow_cuda", &planted::static_shared_overflow_cuda);
}
