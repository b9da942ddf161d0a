// Matrix products of k-quant weights (Q2_K..Q6_K, model/kquant.h) with Q8_K
// activations (kernels.h: Q8KRows). Internal to the CPU backend: MatMulRows
// calls this for those weight types.
#pragma once

#include <cstdint>

#include "npu_worker/cpu/kernels.h"

namespace unicorn::cpu {

// y[i, r] = sum over super-blocks b of dx[i, b] * (d_w * sum_s sc_s * dot(q_s, xq_s)
// - dmin_w * sum_s m_s * bsum_s) (+ bias[r]), for all i < a.n, r in [r0, r1);
// reads a.xk.
void KQuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1);

}  // namespace unicorn::cpu
