// Our Q8_K activation rounding (npu_worker/cpu: QuantizeRowQ8K) and k-quant
// row dots (MatMulRows) against ggml-cpu's quantize_row_q8_K and vec_dot on
// the same bytes. Expected: identical activation blocks, dots equal up to f32
// summation order (~1e-6 of the output). Built and run by
// kquant_dot_vs_ggml.sh.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "ggml-cpu.h"
#include "ggml.h"
#include "model/quant.h"
#include "npu_worker/cpu/kernels.h"
using namespace unicorn;
int main() {
  ggml_cpu_init();
  const int K = 2560, R = 64;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(K);
  for (auto& v : x) v = nd(rng);
  // ours: activations
  std::vector<int8_t> q(K);
  std::vector<float> d(K / 256);
  std::vector<int16_t> bs(K / 16);
  cpu::Q8KRows xk{q.data(), d.data(), bs.data()};
  cpu::QuantizeRowQ8K(x.data(), K, xk, 0);
  // ggml: activations
  std::vector<uint8_t> g8(ggml_row_size(GGML_TYPE_Q8_K, K));
  ggml_get_type_traits_cpu(GGML_TYPE_Q8_K)->from_float(x.data(), g8.data(), K);
  int qdiff = 0;
  double ddiff = 0;
  for (int b = 0; b < K / 256; ++b) {
    const uint8_t* blk = g8.data() + b * (4 + 256 + 32);
    float gd;
    memcpy(&gd, blk, 4);
    ddiff = std::max(ddiff, double(std::fabs(gd - d[b])));
    for (int l = 0; l < 256; ++l) qdiff += int8_t(blk[4 + l]) != q[b * 256 + l];
    for (int j = 0; j < 16; ++j) {
      int16_t s;
      memcpy(&s, blk + 260 + 2 * j, 2);
      qdiff += s != bs[b * 16 + j];
    }
  }
  printf("q8_K: %d differing codes/sums, max |d diff| %g\n", qdiff, ddiff);
  for (auto [dt, gt, name] :
       {std::tuple<DType, ggml_type, const char*>{DType::kQ4_K, GGML_TYPE_Q4_K, "q4_k"},
        std::tuple<DType, ggml_type, const char*>{DType::kQ6_K, GGML_TYPE_Q6_K, "q6_k"},
        std::tuple<DType, ggml_type, const char*>{DType::kQ5_K, GGML_TYPE_Q5_K, "q5_k"},
        std::tuple<DType, ggml_type, const char*>{DType::kQ3_K, GGML_TYPE_Q3_K, "q3_k"},
        std::tuple<DType, ggml_type, const char*>{DType::kQ2_K, GGML_TYPE_Q2_K, "q2_k"}}) {
    const size_t rb = RowBytes(dt, K);
    std::vector<uint8_t> w(rb * R);
    std::vector<float> src(K);
    for (int r = 0; r < R; ++r) {
      for (auto& v : src) v = nd(rng) * 0.05f;
      QuantizeRow(dt, src.data(), w.data() + r * rb, K);
    }
    std::vector<float> y(R);
    cpu::MatMulArgs a;
    a.wtype = dt;
    a.w = w.data();
    a.w_row_bytes = rb;
    a.cols = K;
    a.n = 1;
    a.xk = xk;
    a.y = y.data();
    a.y_stride = R;
    cpu::MatMulRows(a, 0, R);
    double md = 0, mx = 0;
    for (int r = 0; r < R; ++r) {
      float s = 0;
      ggml_get_type_traits_cpu(gt)->vec_dot(K, &s, 0, w.data() + r * rb, 0, g8.data(), 0, 1);
      md = std::max(md, double(std::fabs(s - y[r])));
      mx = std::max(mx, double(std::fabs(s)));
    }
    printf("%s: max |ours - ggml| %g of max |y| %g\n", name, md, mx);
  }
}
