#include "tests/model/gemma3_reference.h"

#include <cmath>

#include "model/names.h"
#include "model/quant.h"

namespace unicorn::testing {
namespace {

using Vec = std::vector<double>;

std::vector<float> Get(const TensorStore& w, const std::string& name) {
  const TensorInfo* t = w.Find(name);
  if (t == nullptr) std::abort();
  return TensorStore::Dequantized(*t);
}

// Gemma3RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + w).
void RmsNorm(double* x, const std::vector<float>& w, int dim, double eps) {
  double ss = 0;
  for (int i = 0; i < dim; ++i) ss += x[i] * x[i];
  const double r = 1.0 / std::sqrt(ss / dim + eps);
  for (int i = 0; i < dim; ++i) x[i] = x[i] * r * (1.0 + w[size_t(i)]);
}

// y = W x, W [out, in].
Vec Linear(const std::vector<float>& w, const double* x, int out, int in) {
  Vec y(size_t(out), 0.0);
  for (int r = 0; r < out; ++r) {
    double s = 0;
    for (int c = 0; c < in; ++c) s += double(w[size_t(r) * in + c]) * x[c];
    y[size_t(r)] = s;
  }
  return y;
}

// apply_rotary_pos_emb with rotate_half, one head.
void Rope(double* x, int head_dim, int pos, const RopeConfig& rc) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    // inv_freq and the angle in f32, as Gemma3RotaryEmbedding.
    const float inv = (1.0f / std::pow(float(rc.theta), float(2 * i) / float(head_dim))) /
                      float(rc.linear_factor);
    const double f = double(float(pos) * inv);
    const double a = x[i], b = x[i + half];
    x[i] = a * std::cos(f) - b * std::sin(f);
    x[i + half] = b * std::cos(f) + a * std::sin(f);
  }
}

double GeluTanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

}  // namespace

Gemma3Config TinyConfig() {
  Gemma3Config c;
  c.architecture = "Gemma3ForCausalLM";
  c.hidden_size = 64;
  c.num_layers = 4;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.intermediate_size = 96;
  c.vocab_size = 160;
  c.rms_norm_eps = 1e-6;
  c.query_pre_attn_scalar = 16;
  c.sliding_window = 5;
  c.layer_types = {LayerType::kSliding, LayerType::kGlobal, LayerType::kSliding,
                   LayerType::kGlobal};
  c.rope_local = {10000.0, 1.0};
  c.rope_global = {1000000.0, 8.0};
  c.max_position_embeddings = 1024;
  c.image_token_id = 150;
  return c;
}

TensorStore MakeRandomGemma3(const Gemma3Config& c, DType matrix_dtype, DType norm_dtype,
                             uint32_t seed) {
  TensorStore s;
  const int64_t H = c.hidden_size, D = c.head_dim, I = c.intermediate_size;
  const int64_t QD = c.num_heads * D, KD = c.num_kv_heads * D;
  uint32_t k = seed;
  auto mat = [&](const std::string& name, int64_t rows, int64_t cols) {
    // Std 1/sqrt(cols) keeps activations of order one through the layers.
    s.Add(name, matrix_dtype, {rows, cols},
          RandomVector(size_t(rows * cols), 1.0f / std::sqrt(float(cols)), ++k));
  };
  auto norm = [&](const std::string& name, int64_t n) {
    s.Add(name, norm_dtype, {n}, RandomVector(size_t(n), 0.3f, ++k));
  };
  s.Add(names::kTokenEmbd, matrix_dtype, {c.vocab_size, H},
        RandomVector(size_t(c.vocab_size * H), 0.2f, ++k));
  norm(names::kOutputNorm, H);
  for (int l = 0; l < c.num_layers; ++l) {
    norm(names::Blk(l, "attn_norm"), H);
    mat(names::Blk(l, "attn_q"), QD, H);
    mat(names::Blk(l, "attn_k"), KD, H);
    mat(names::Blk(l, "attn_v"), KD, H);
    norm(names::Blk(l, "attn_q_norm"), D);
    norm(names::Blk(l, "attn_k_norm"), D);
    mat(names::Blk(l, "attn_output"), H, QD);
    norm(names::Blk(l, "post_attention_norm"), H);
    norm(names::Blk(l, "ffn_norm"), H);
    mat(names::Blk(l, "ffn_gate"), I, H);
    mat(names::Blk(l, "ffn_up"), I, H);
    mat(names::Blk(l, "ffn_down"), H, I);
    norm(names::Blk(l, "post_ffw_norm"), H);
  }
  return s;
}

std::vector<float> ReferenceLogits(const Gemma3Config& c, const TensorStore& w,
                                   const std::vector<int>& tokens,
                                   const std::vector<float>& image_embeds) {
  const int n = int(tokens.size());
  const int H = c.hidden_size, D = c.head_dim, NH = c.num_heads, NKV = c.num_kv_heads;
  const int I = c.intermediate_size, V = c.vocab_size;
  const double eps = c.rms_norm_eps;

  // Gemma3TextScaledWordEmbedding run in f32: scale f32(sqrt(hidden)).
  const TensorInfo* et = w.Find(names::kTokenEmbd);
  const float scale = float(std::sqrt(double(H)));
  const std::vector<float> embd = TensorStore::Dequantized(*et);

  // Image groups as create_causal_mask_mapping: maximal runs of image tokens.
  std::vector<int> group(size_t(n), -1);
  int groups = 0;
  for (int i = 0; i < n; ++i) {
    if (tokens[size_t(i)] != c.image_token_id) continue;
    group[size_t(i)] = (i > 0 && group[size_t(i - 1)] >= 0) ? group[size_t(i - 1)] : groups++;
  }

  const size_t N = static_cast<size_t>(n);
  std::vector<Vec> x(N, Vec(static_cast<size_t>(H)));
  int image_row = 0;
  for (int i = 0; i < n; ++i) {
    if (group[size_t(i)] >= 0) {
      for (int j = 0; j < H; ++j) x[size_t(i)][size_t(j)] = image_embeds[size_t(image_row * H + j)];
      ++image_row;
    } else {
      for (int j = 0; j < H; ++j) {
        x[size_t(i)][size_t(j)] = double(embd[size_t(tokens[size_t(i)]) * H + j] * scale);
      }
    }
  }

  for (int l = 0; l < c.num_layers; ++l) {
    auto g = [&](const char* what) { return Get(w, names::Blk(l, what)); };
    const bool sliding = c.layer_types[size_t(l)] == LayerType::kSliding;
    const RopeConfig& rc = sliding ? c.rope_local : c.rope_global;
    const auto wq = g("attn_q"), wk = g("attn_k"), wv = g("attn_v"), wo = g("attn_output");
    const auto qn = g("attn_q_norm"), kn = g("attn_k_norm");
    std::vector<Vec> q(N), k(N), v(N);
    for (int i = 0; i < n; ++i) {
      Vec h = x[size_t(i)];
      RmsNorm(h.data(), g("attn_norm"), H, eps);
      q[size_t(i)] = Linear(wq, h.data(), NH * D, H);
      k[size_t(i)] = Linear(wk, h.data(), NKV * D, H);
      v[size_t(i)] = Linear(wv, h.data(), NKV * D, H);
      for (int hh = 0; hh < NH; ++hh) {
        RmsNorm(&q[size_t(i)][size_t(hh * D)], qn, D, eps);
        Rope(&q[size_t(i)][size_t(hh * D)], D, i, rc);
      }
      for (int hh = 0; hh < NKV; ++hh) {
        RmsNorm(&k[size_t(i)][size_t(hh * D)], kn, D, eps);
        Rope(&k[size_t(i)][size_t(hh * D)], D, i, rc);
      }
    }
    for (int i = 0; i < n; ++i) {
      Vec attn(size_t(NH * D), 0.0);
      for (int hh = 0; hh < NH; ++hh) {
        const int kvh = hh / (NH / NKV);
        std::vector<double> s(size_t(n), -INFINITY);
        for (int j = 0; j < n; ++j) {
          // masking_utils: causal (kv <= q) and, on sliding layers,
          // kv > q - sliding_window; or'ed with the same-image-group mask.
          bool ok = j <= i && (!sliding || j > i - c.sliding_window);
          ok = ok || (group[size_t(i)] >= 0 && group[size_t(i)] == group[size_t(j)]);
          if (!ok) continue;
          double d = 0;
          for (int e = 0; e < D; ++e) {
            d += q[size_t(i)][size_t(hh * D + e)] * k[size_t(j)][size_t(kvh * D + e)];
          }
          d *= std::pow(c.query_pre_attn_scalar, -0.5);
          if (c.attn_logit_softcapping > 0) {
            d = std::tanh(d / c.attn_logit_softcapping) * c.attn_logit_softcapping;
          }
          s[size_t(j)] = d;
        }
        double mx = -INFINITY, sum = 0;
        for (double e : s) mx = std::max(mx, e);
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int j = 0; j < n; ++j) {
          for (int e = 0; e < D; ++e) {
            attn[size_t(hh * D + e)] += s[size_t(j)] / sum * v[size_t(j)][size_t(kvh * D + e)];
          }
        }
      }
      Vec o = Linear(wo, attn.data(), H, NH * D);
      RmsNorm(o.data(), g("post_attention_norm"), H, eps);
      for (int e = 0; e < H; ++e) x[size_t(i)][size_t(e)] += o[size_t(e)];
    }
    const auto wg = g("ffn_gate"), wu = g("ffn_up"), wd = g("ffn_down");
    for (int i = 0; i < n; ++i) {
      Vec h = x[size_t(i)];
      RmsNorm(h.data(), g("ffn_norm"), H, eps);
      Vec gate = Linear(wg, h.data(), I, H), up = Linear(wu, h.data(), I, H);
      for (int e = 0; e < I; ++e) gate[size_t(e)] = GeluTanh(gate[size_t(e)]) * up[size_t(e)];
      Vec o = Linear(wd, gate.data(), H, I);
      RmsNorm(o.data(), g("post_ffw_norm"), H, eps);
      for (int e = 0; e < H; ++e) x[size_t(i)][size_t(e)] += o[size_t(e)];
    }
  }

  std::vector<float> logits(size_t(n) * V);
  const std::vector<float> on = Get(w, names::kOutputNorm);
  for (int i = 0; i < n; ++i) {
    Vec h = x[size_t(i)];
    RmsNorm(h.data(), on, H, eps);
    Vec y = Linear(embd, h.data(), V, H);
    for (int e = 0; e < V; ++e) {
      double v = y[size_t(e)];
      if (c.final_logit_softcapping > 0) {
        v = std::tanh(v / c.final_logit_softcapping) * c.final_logit_softcapping;
      }
      logits[size_t(i) * V + e] = float(v);
    }
  }
  return logits;
}

}  // namespace unicorn::testing
