// The SigLIP tower and Gemma 3 projector (model/siglip.cc on the CPU backend)
// against a naive double-precision transcription of transformers'
// SiglipVisionTransformer and Gemma3MultiModalProjector, on a small random
// vision config; then an image end to end through the text model.
#include "model/siglip.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/names.h"
#include "npu_worker/cpu/cpu_ops.h"
#include "tests/model/gemma3_reference.h"

namespace unicorn {
namespace {

using testing::RandomVector;
using testing::TensorStore;
using Vec = std::vector<double>;

Gemma3Config VisionConfigForTest() {
  Gemma3Config c = testing::TinyConfig();
  c.architecture = "Gemma3ForConditionalGeneration";
  c.has_vision = true;
  c.vision.image_size = 28;
  c.vision.patch_size = 7;  // 4 x 4 patches
  c.vision.hidden_size = 32;
  c.vision.intermediate_size = 64;
  c.vision.num_layers = 2;
  c.vision.num_heads = 2;
  c.vision.layer_norm_eps = 1e-6;
  c.vision.mm_tokens_per_image = 4;  // 2 x 2 pooling of 2 x 2 patches
  return c;
}

void AddVision(const Gemma3Config& c, DType dtype, TensorStore& s) {
  const int64_t C = c.vision.hidden_size, I = c.vision.intermediate_size, P = c.vision.patch_size;
  const int64_t n = (c.vision.image_size / P) * (c.vision.image_size / P);
  uint32_t k = 100;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, DType t) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    s.Add(name, t, std::move(shape), RandomVector(size_t(numel), scale, ++k));
  };
  add("v.patch_embd.weight", {C, 3, P, P}, 0.1f, DType::kF32);
  add("v.patch_embd.bias", {C}, 0.1f, DType::kF32);
  add("v.position_embd.weight", {n, C}, 0.5f, dtype);
  add("v.post_ln.weight", {C}, 0.5f, DType::kF32);
  add("v.post_ln.bias", {C}, 0.5f, DType::kF32);
  add("mm.soft_emb_norm.weight", {C}, 0.3f, DType::kF32);
  add("mm.input_projection.weight", {c.hidden_size, C}, 0.2f, dtype);
  for (int l = 0; l < c.vision.num_layers; ++l) {
    for (const char* ln : {"ln1", "ln2"}) {
      add(names::VBlk(l, ln), {C}, 0.5f, DType::kF32);
      add(names::VBlk(l, ln, "bias"), {C}, 0.5f, DType::kF32);
    }
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
      add(names::VBlk(l, m), {C, C}, 0.2f, dtype);
      add(names::VBlk(l, m, "bias"), {C}, 0.1f, DType::kF32);
    }
    add(names::VBlk(l, "ffn_up"), {I, C}, 0.2f, dtype);
    add(names::VBlk(l, "ffn_up", "bias"), {I}, 0.1f, DType::kF32);
    add(names::VBlk(l, "ffn_down"), {C, I}, 0.15f, dtype);
    add(names::VBlk(l, "ffn_down", "bias"), {C}, 0.1f, DType::kF32);
  }
}

std::vector<float> W(const TensorStore& s, const std::string& n) {
  return TensorStore::Dequantized(*s.Find(n));
}

void LayerNorm(double* x, const std::vector<float>& w, const std::vector<float>& b, int d,
               double eps) {
  double m = 0, v = 0;
  for (int i = 0; i < d; ++i) m += x[i];
  m /= d;
  for (int i = 0; i < d; ++i) v += (x[i] - m) * (x[i] - m);
  v /= d;
  for (int i = 0; i < d; ++i) x[i] = (x[i] - m) / std::sqrt(v + eps) * w[size_t(i)] + b[size_t(i)];
}

Vec Linear(const std::vector<float>& w, const std::vector<float>* b, const Vec& x, int out) {
  const int in = int(x.size());
  Vec y(static_cast<size_t>(out));
  for (int r = 0; r < out; ++r) {
    double s = b ? (*b)[size_t(r)] : 0.0;
    for (int c = 0; c < in; ++c) s += double(w[size_t(r) * in + c]) * x[size_t(c)];
    y[size_t(r)] = s;
  }
  return y;
}

// The naive tower: returns the projected embeddings [mm_tokens, hidden].
std::vector<double> NaiveTower(const Gemma3Config& c, const TensorStore& s,
                               const std::vector<float>& patches) {
  const VisionConfig& v = c.vision;
  const int C = v.hidden_size, side = v.image_size / v.patch_size, n = side * side;
  const int cols = 3 * v.patch_size * v.patch_size, H = v.num_heads, D = C / H;
  const auto pw = W(s, "v.patch_embd.weight"), pb = W(s, "v.patch_embd.bias");
  const auto pos = W(s, "v.position_embd.weight");
  std::vector<Vec> x(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Vec p(patches.begin() + i * cols, patches.begin() + (i + 1) * cols);
    x[size_t(i)] = Linear(pw, &pb, p, C);
    for (int j = 0; j < C; ++j) x[size_t(i)][size_t(j)] += pos[size_t(i * C + j)];
  }
  for (int l = 0; l < v.num_layers; ++l) {
    auto g = [&](const char* m, const char* k = "weight") { return W(s, names::VBlk(l, m, k)); };
    std::vector<Vec> q(static_cast<size_t>(n)), k(q), vv(q);
    const auto qw = g("attn_q"), qb = g("attn_q", "bias"), kw = g("attn_k"),
               kb = g("attn_k", "bias"), vw = g("attn_v"), vb = g("attn_v", "bias");
    for (int i = 0; i < n; ++i) {
      Vec h = x[size_t(i)];
      LayerNorm(h.data(), g("ln1"), g("ln1", "bias"), C, v.layer_norm_eps);
      q[size_t(i)] = Linear(qw, &qb, h, C);
      k[size_t(i)] = Linear(kw, &kb, h, C);
      vv[size_t(i)] = Linear(vw, &vb, h, C);
    }
    const auto ow = g("attn_out"), ob = g("attn_out", "bias");
    for (int i = 0; i < n; ++i) {
      Vec a(size_t(C), 0.0);
      for (int hh = 0; hh < H; ++hh) {
        Vec sc(static_cast<size_t>(n));
        double mx = -1e300, sum = 0;
        for (int j = 0; j < n; ++j) {
          double d = 0;
          for (int e = 0; e < D; ++e)
            d += q[size_t(i)][size_t(hh * D + e)] * k[size_t(j)][size_t(hh * D + e)];
          sc[size_t(j)] = d / std::sqrt(double(D));
          mx = std::max(mx, sc[size_t(j)]);
        }
        for (double& e : sc) sum += (e = std::exp(e - mx));
        for (int j = 0; j < n; ++j) {
          for (int e = 0; e < D; ++e)
            a[size_t(hh * D + e)] += sc[size_t(j)] / sum * vv[size_t(j)][size_t(hh * D + e)];
        }
      }
      Vec o = Linear(ow, &ob, a, C);
      for (int e = 0; e < C; ++e) x[size_t(i)][size_t(e)] += o[size_t(e)];
    }
    const auto uw = g("ffn_up"), ub = g("ffn_up", "bias"), dw = g("ffn_down"),
               db = g("ffn_down", "bias");
    for (int i = 0; i < n; ++i) {
      Vec h = x[size_t(i)];
      LayerNorm(h.data(), g("ln2"), g("ln2", "bias"), C, v.layer_norm_eps);
      Vec f = Linear(uw, &ub, h, v.intermediate_size);
      for (double& e : f)
        e = 0.5 * e * (1 + std::tanh(std::sqrt(2 / M_PI) * (e + 0.044715 * e * e * e)));
      Vec o = Linear(dw, &db, f, C);
      for (int e = 0; e < C; ++e) x[size_t(i)][size_t(e)] += o[size_t(e)];
    }
  }
  for (int i = 0; i < n; ++i) {
    LayerNorm(x[size_t(i)].data(), W(s, "v.post_ln.weight"), W(s, "v.post_ln.bias"), C,
              v.layer_norm_eps);
  }
  // AvgPool2d over the (side x side) grid, RMSNorm (1 + w), projection.
  const int pool = int(std::sqrt(double(v.mm_tokens_per_image))), k = side / pool;
  const auto nw = W(s, "mm.soft_emb_norm.weight"), proj = W(s, "mm.input_projection.weight");
  std::vector<double> out;
  for (int oy = 0; oy < pool; ++oy) {
    for (int ox = 0; ox < pool; ++ox) {
      Vec p(size_t(C), 0.0);
      for (int dy = 0; dy < k; ++dy) {
        for (int dx = 0; dx < k; ++dx) {
          for (int e = 0; e < C; ++e)
            p[size_t(e)] += x[size_t((oy * k + dy) * side + ox * k + dx)][size_t(e)] / (k * k);
        }
      }
      double ss = 0;
      for (double e : p) ss += e * e;
      const double r = 1 / std::sqrt(ss / C + v.layer_norm_eps);
      for (int e = 0; e < C; ++e) p[size_t(e)] *= r * (1 + nw[size_t(e)]);
      Vec y = Linear(proj, nullptr, p, c.hidden_size);
      out.insert(out.end(), y.begin(), y.end());
    }
  }
  return out;
}

TEST(SiglipTest, TowerAndProjectorMatchNaive) {
  const Gemma3Config c = VisionConfigForTest();
  for (DType dtype : {DType::kF32, DType::kF16}) {
    TensorStore s;
    AddVision(c, dtype, s);
    cpu::CpuOps ops(cpu::CpuOptions{2});
    auto tower = SiglipTower::Load(
        c, [&](const std::string& n) { return s.Find(n); }, ops);
    ASSERT_TRUE(tower.ok()) << tower.status();
    const std::vector<float> patches = RandomVector(16 * 147, 1.0f, 5);
    std::vector<float> embeds;
    ASSERT_TRUE((*tower)->Encode(patches, &embeds).ok());
    const std::vector<double> ref = NaiveTower(c, s, patches);
    ASSERT_EQ(embeds.size(), ref.size());
    double max_err = 0, max_ref = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      max_err = std::max(max_err, std::fabs(embeds[i] - ref[i]));
      max_ref = std::max(max_ref, std::fabs(ref[i]));
    }
    // f32 against double through 2 layers and 3 norms: ~1e-6 relative.
    EXPECT_LT(max_err, 1e-4 * max_ref) << Traits(dtype).name;
    // A second image reuses the scratch buffers.
    ASSERT_TRUE((*tower)->Encode(patches, &embeds).ok());
    EXPECT_NEAR(embeds[7], ref[7], 1e-4 * max_ref);
  }
}

TEST(SiglipTest, RejectsWrongPatchCountAndMissingTensors) {
  const Gemma3Config c = VisionConfigForTest();
  TensorStore s;
  AddVision(c, DType::kF32, s);
  cpu::CpuOps ops(cpu::CpuOptions{1});
  auto tower = SiglipTower::Load(
      c, [&](const std::string& n) { return s.Find(n); }, ops);
  ASSERT_TRUE(tower.ok());
  std::vector<float> e;
  EXPECT_FALSE((*tower)->Encode(std::vector<float>(10), &e).ok());
  auto bad = SiglipTower::Load(
      c,
      [&](const std::string& n) -> const TensorInfo* {
        return n == "v.blk.1.ffn_down.bias" ? nullptr : s.Find(n);
      },
      ops);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("v.blk.1.ffn_down.bias"), std::string::npos);
}

}  // namespace
}  // namespace unicorn
