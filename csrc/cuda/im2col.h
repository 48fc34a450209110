// im2col / col2im CUDA launchers, float32. Device pointers; layouts as in csrc/cpu/im2col.h (batched:
// x (B, C, H, W), cols (B, C*k*k, Ho*Wo); row layout: cols (C*k*k, B*H*Wp), y (C_out, B*H*Wp)).
#pragma once

#include <cuda_runtime.h>

namespace pyddpm {

void im2col_cuda(const float* x, float* cols, int B, int C, int H, int W, int k, int stride, int padding,
                 cudaStream_t stream);

void col2im_cuda(const float* cols, float* x, int B, int C, int H, int W, int k, int stride, int padding,
                 cudaStream_t stream);

void im2col_rows_cuda(const float* x, float* cols, int B, int C, int H, int W, int k, int padding,
                      cudaStream_t stream);

void col2im_rows_cuda(const float* cols, float* x, int B, int C, int H, int W, int k, int padding,
                      cudaStream_t stream);

void rows_to_nchw_cuda(const float* y, float* out, int B, int C, int H, int W, int padding, cudaStream_t stream);

void nchw_to_rows_cuda(const float* g, float* out, int B, int C, int H, int W, int padding, cudaStream_t stream);

}  // namespace pyddpm
