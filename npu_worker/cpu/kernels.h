// Single-threaded SIMD kernels of the CPU backend (Highway, dispatched at run
// time to the best of AVX-512 / AVX2 / SSE4 / scalar). CpuOps splits work into
// ranges and runs these on its thread pool. Each kernel has a naive twin in
// the tests (tests/npu_worker/cpu/kernels_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/dtype.h"

namespace unicorn::cpu {

// Activations quantized for the integer dot products of Q8_0 / Q4_0 weights,
// in blocks of 32 as llama.cpp's Q8_0 activations, kept planar:
//   q [n, cols] int8, d [n, cols/32] f32, nbias [n, cols/32, 8] int32, with,
//   per block, d = max|x| / 127, q = round(x / d) (ties to even), and
//   nbias[j] = -8 * (q[4j] + q[4j+1] + q[4j+2] + q[4j+3]) (zero points).
// The weight dot is then sum_b dw_b * d_b * dot(w_b, q_b), exact in int32 per
// block; only the rounding of x to q adds error (|x - d q| <= d / 2).
// A second plane may carry that rounding: the residual x - d q, quantized the
// same way (ResidualRowQ8), so that x = d q + d' q' up to d' / 2 ~ d / 254.
// Products then add both planes' dots: twice the integer work, the same
// weight reads.
struct Q8Rows {
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* nbias = nullptr;
};

// Quantizes one row of `cols` (a multiple of 32) floats into row `row` of out.
void QuantizeRowQ8(const float* x, int64_t cols, const Q8Rows& out, int64_t row);
// Row `row` of the residual plane: scratch [cols] = x - d q of `main`'s row,
// quantized into row `row` of out.
void ResidualRowQ8(const float* x, int64_t cols, const Q8Rows& main, float* scratch,
                   const Q8Rows& out, int64_t row);

// Activations quantized for the k-quant weights (Q2_K..Q6_K), in blocks of
// 256 as llama.cpp's Q8_K (so both engines round the same way), planar:
//   q [n, cols] int8, d [n, cols/256] f32, bsums [n, cols/256, 16] int16,
// with, per block, m = the element of largest |x| (sign kept), d = -m / 127,
// q = min(127, round(x / d)) (ties to even), and bsums[j] = the sum of
// q[16j .. 16j+15] (it carries the sub-block mins and zero points). A weight
// super-block's dot is then exact in int32 up to the rounding of x.
struct Q8KRows {
  int8_t* q = nullptr;
  float* d = nullptr;
  int16_t* bsums = nullptr;
};

// Quantizes one row of `cols` (a multiple of 256) floats into row `row` of out.
void QuantizeRowQ8K(const float* x, int64_t cols, const Q8KRows& out, int64_t row);

// The arguments of a matrix product y = x W^T over a range of W's rows.
struct MatMulArgs {
  DType wtype = DType::kF32;
  const uint8_t* w = nullptr;  // W [rows, cols] in wtype, rows `w_row_bytes` apart
  size_t w_row_bytes = 0;
  int64_t cols = 0;
  int n = 0;                 // activation rows
  const float* x = nullptr;  // [n, cols] f32, for F32/F16/BF16 and NF4 weights
  Q8Rows xq;                 // [n, cols] quantized, for Q8_0/Q4_0 weights
  Q8Rows xr;                 // [n, cols] its residual plane (q == nullptr: none)
  Q8KRows xk;                // [n, cols] quantized, for Q2_K..Q6_K weights
  float* y = nullptr;        // y[i * y_stride + r]
  int64_t y_stride = 0;
  const float* bias = nullptr;  // [rows] f32 or null
};

// y[i, r] = dot(x[i], W[r]) (+ bias[r]) for all i < n and r in [r0, r1).
void MatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1);

// out = x / sqrt(mean(x^2) + eps) * (1 + w), one row of `dim`; out may alias x.
void RmsNormRow(const float* x, const float* w, int64_t dim, float eps, float* out);
// out = (x - mean) / sqrt(var + eps) * w + b, one row of `dim`; out may alias x.
void LayerNormRow(const float* x, const float* w, const float* b, int64_t dim, float eps,
                  float* out);
// out = gelu_tanh(gate) * up over n; out may alias either input.
void GeluMul(const float* gate, const float* up, size_t n, float* out);
// x = gelu_tanh(x) over n.
void Gelu(float* x, size_t n);
// out = a + b over n; out may alias.
void Add(const float* a, const float* b, size_t n, float* out);
// x = tanh(x / cap) * cap over n.
void SoftCap(float* x, size_t n, float cap);
// sum_i a[i] * b[i].
float Dot(const float* a, const float* b, int64_t n);
// y += alpha * x over n.
void Axpy(float alpha, const float* x, int64_t n, float* y);
// x = exp(x - max(x)) / sum over n (softmax in place, f32).
void Softmax(float* x, int64_t n);

// The instruction set the dispatcher picked ("AVX3", "AVX2", ...), plus
// "+VNNI" when the int8 kernels use AVX-512 VNNI.
const char* KernelTarget();

// Tests: lets the int8 kernels use AVX-512 VNNI where the CPU has it (the
// default) or forces the AVX-512BW / AVX2 maddubs path.
void SetVnniForTest(bool allowed);

}  // namespace unicorn::cpu
