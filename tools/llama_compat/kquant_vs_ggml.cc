// Cross-check of Unicorn's block formats against ggml (run by
// kquant_vs_ggml.sh, outside the default build: it links llama.cpp's
// libggml-base). Exit status = number of types whose bytes decode
// differently in ggml and in Unicorn.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "ggml.h"
#include "model/dtype.h"
#include "model/quant.h"
using namespace unicorn;
int main() {
  struct C {
    DType t;
    ggml_type g;
  } cs[] = {{DType::kQ2_K, GGML_TYPE_Q2_K}, {DType::kQ3_K, GGML_TYPE_Q3_K},
            {DType::kQ4_K, GGML_TYPE_Q4_K}, {DType::kQ5_K, GGML_TYPE_Q5_K},
            {DType::kQ6_K, GGML_TYPE_Q6_K}, {DType::kQ4_0, GGML_TYPE_Q4_0},
            {DType::kQ8_0, GGML_TYPE_Q8_0}};
  const int n = 256 * 64;
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0, 0.02f);
  std::vector<float> x(n), a(n), b(n), c(n);
  for (auto& v : x) v = g(rng);
  int bad = 0;
  for (auto cs1 : cs) {
    std::vector<uint8_t> q(RowBytes(cs1.t, n)), q2(RowBytes(cs1.t, n));
    QuantizeRow(cs1.t, x.data(), q.data(), n);
    DequantizeRow(cs1.t, q.data(), a.data(), n);
    ggml_get_type_traits(cs1.g)->to_float(q.data(), b.data(), n);
    double md = 0;
    for (int i = 0; i < n; ++i) md = std::fmax(md, std::fabs(a[i] - b[i]));
    // ggml's quantizer, our dequantizer
    ggml_quantize_chunk(cs1.g, x.data(), q2.data(), 0, 1, n, nullptr);
    DequantizeRow(cs1.t, q2.data(), c.data(), n);
    ggml_get_type_traits(cs1.g)->to_float(q2.data(), b.data(), n);
    double md2 = 0, e1 = 0, e2 = 0, ss = 0;
    for (int i = 0; i < n; ++i) {
      md2 = std::fmax(md2, std::fabs(c[i] - b[i]));
      e1 += (a[i] - x[i]) * (a[i] - x[i]);
      e2 += (b[i] - x[i]) * (b[i] - x[i]);
      ss += x[i] * x[i];
    }
    printf(
        "%s: ours->ggml deq maxdiff %g; ggml q->our deq maxdiff %g; rel rms ours %.4f ggml %.4f\n",
        ggml_type_name(cs1.g), md, md2, sqrt(e1 / ss), sqrt(e2 / ss));
    if (md > 0 || md2 > 0) bad++;
  }
  return bad;
}
