// Q4_K_M models (Q4_K matrices, Q6_K token_embd and the use_more_bits
// layers' attn_v / ffn_down, as `unicorn quantize --type q4_k_m` plans them)
// on the Vulkan backend:
//  - a random model generated here with widths that are whole 256-weight
//    super-blocks (the repository's tiny models are 64 wide, where every
//    k-quant falls back to Q4_0), against the double-precision reference on
//    the file's dequantized weights, and the CPU backend;
//  - the trained demo model (models/demo) quantized by the `unicorn` binary,
//    against the CPU backend: logits and greedy tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

#include "gpu_worker/vulkan_backend.h"
#include "model/engine.h"
#include "model/ggml_types.h"
#include "model/gguf.h"
#include "model/quant_plan.h"
#include "npu_worker/cpu/cpu_backend.h"
#include "tests/model/gemma3_reference.h"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

// Vulkan keeps activations in F32 and decodes the weights exactly, so it
// matches the double reference on the same dequantized weights to F32
// rounding (~1e-6 of the logit scale); 1e-4 as gemma3_vulkan_test.
constexpr double kRefTol = 1e-4;
// The CPU backend rounds activations to 8 bits per block before its integer
// kernels (Q8_K for the k-quants, Q8_0 for Q4_0/Q8_0). On a random model
// nothing in the logits stands above that noise: measured ~0.13 of the logit
// std (max over 3600 logits; Q8_0 weights give ~0.08 on the same model), so
// this bound (0.3) only catches gross errors; the trained model below holds
// the CPU to the repository's Vulkan bound.
constexpr double kCpuRandomTol = 0.3;
// Between the backends on the trained demo model: the repository's 1e-2 of
// the logit scale holds where both keep F32 activations; here the CPU rounds
// them to 8 bits. Measured on this model (max |dlogit| / std, 12 positions):
// Q4_K_M 2.3e-2, and for the older formats Q4_0 2.1e-2, Q8_0 1.9e-2. 5e-2
// keeps Q4_K_M in that family; a wrong sub-block scale costs O(1).
constexpr double kDemoTol = 5e-2;

const BackendRegistry& Registry() {
  static const BackendRegistry* r = [] {
    auto* reg = new BackendRegistry();
    cpu::RegisterCpuBackend(*reg);
    vk::RegisterVulkanBackend(*reg);
    return reg;
  }();
  return *r;
}

Gemma3Config KQuantConfig() {
  Gemma3Config c = testing::TinyConfig(false);
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;  // attn_output rows: 4 * 64 = 256
  c.query_pre_attn_scalar = 64;
  c.num_layers = 8;  // use_more_bits picks layers 0, 2, 5, 7
  c.layer_types.clear();
  for (int i = 0; i < c.num_layers; ++i) {
    c.layer_types.push_back((i + 1) % 6 == 0 ? LayerType::kGlobal : LayerType::kSliding);
  }
  return c;
}

// Writes the model as `unicorn quantize --type q4_k_m` would and returns the
// count of tensors per ggml type name.
std::map<std::string, int> WriteQ4KM(const std::string& path) {
  testing::TinyModel m = testing::MakeTinyModel(KQuantConfig(), 5);
  GgufModelOptions o = testing::AllF32();
  o.unicorn_extensions = true;
  o.matrix_type = DType::kQ4_K;
  const int layers = m.config.num_layers;
  o.text_type = [&](const GgufTensorPlan& p) {
    return WithFallback(SchemeType("q4_k_m", p.name, p.role, LayerOf(p.name), layers),
                        p.row_elems());
  };
  testing::WriteGgufModel(m, path, "", o);
  std::map<std::string, int> types;
  const std::string bytes = testing::ReadFile(path);
  auto g = ParseGguf({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path);
  EXPECT_TRUE(g.ok()) << g.status();
  if (g.ok()) {
    for (const GgufTensor& t : g->tensors) ++types[GgmlTypeName(t.ggml_type)];
  }
  return types;
}

struct Outputs {
  std::vector<float> logits;  // [prompt, vocab]
  std::vector<int> greedy;    // 16 tokens after the prompt
  testing::TensorStore f32;   // the file's tensors, dequantized
  Gemma3Config config;
};

Outputs RunModel(const std::string& path, const std::string& backend,
                 const std::vector<int>& prompt, bool keep_weights = false) {
  Outputs out;
  EngineOptions eo;
  eo.model = path;
  eo.backend = backend;
  if (const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE"); sel && backend == "vulkan") {
    eo.backend_options.device = sel;
  }
  auto engine = Engine::Open(eo, Registry());
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return out;
  const int vocab = (*engine)->config().vocab_size;
  out.config = (*engine)->config();
  if (keep_weights) {
    for (const TensorInfo& t : (*engine)->files().tensors()) {
      out.f32.Add(t.name, DType::kF32, t.shape, testing::TensorStore::Dequantized(t));
    }
  }
  SessionOptions so;
  so.max_context = 64;
  so.max_chunk = 32;
  auto s = Gemma3Session::Create((*engine)->model(), so);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return out;
  Status st = (*s)->Prefill(prompt, {}, LogitsMode::kAll, &out.logits);
  EXPECT_TRUE(st.ok()) << st;
  std::vector<float> last(out.logits.end() - vocab, out.logits.end());
  for (int i = 0; i < 16 && st.ok(); ++i) {
    const int next = int(std::max_element(last.begin(), last.end()) - last.begin());
    out.greedy.push_back(next);
    st = (*s)->Decode(next, &last);
    EXPECT_TRUE(st.ok()) << st;
  }
  return out;
}

double Std(const std::vector<float>& v) {
  double m = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()), s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double err = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    err = std::isnan(d) ? INFINITY : std::max(err, d);
  }
  return err;
}

int ArgMax(const float* v, int n) { return int(std::max_element(v, v + n) - v); }

TEST(VkQ4KM, RandomModelMatchesReference) {
  testing::TempDir dir;
  const std::string path = dir.File("q4_k_m.gguf");
  std::map<std::string, int> types = WriteQ4KM(path);
  for (const auto& [name, count] : types) std::printf("%s: %d tensors\n", name.c_str(), count);
  // The mix is really there: Q4_K matrices, Q6_K token_embd + more-bits layers.
  EXPECT_GT(types["q4_k"], 0);
  EXPECT_GT(types["q6_k"], 1);

  const std::vector<int> prompt = {2, 17, 250, 33, 91, 4, 120, 7, 64, 199, 12, 45};
  const Outputs vk = RunModel(path, "vulkan", prompt, true);
  const Outputs cpu = RunModel(path, "cpu", prompt);
  ASSERT_FALSE(vk.logits.empty());
  ASSERT_EQ(vk.greedy.size(), 16u);
  // The reference over the prompt and Vulkan's greedy tokens (teacher
  // forced): its logits at the prompt, and its argmax at every later step.
  std::vector<int> seq = prompt;
  seq.insert(seq.end(), vk.greedy.begin(), vk.greedy.end() - 1);
  const std::vector<float> ref = testing::ReferenceLogits(vk.config, vk.f32, seq, {});
  const int V = vk.config.vocab_size;
  const std::vector<float> ref_prompt(ref.begin(), ref.begin() + size_t(prompt.size()) * V);
  const double scale = Std(ref_prompt);
  const double err_vk = MaxDiff(vk.logits, ref_prompt) / scale;
  const double err_cpu = MaxDiff(cpu.logits, ref_prompt) / scale;
  std::printf(
      "random q4_k_m: max |dlogit| / std: vulkan vs reference %.2e, cpu vs reference %.2e\n",
      err_vk, err_cpu);
  EXPECT_LT(err_vk, kRefTol);
  EXPECT_LT(err_cpu, kCpuRandomTol);
  for (size_t i = 0; i < vk.greedy.size(); ++i) {
    const size_t pos = prompt.size() - 1 + i;
    EXPECT_EQ(vk.greedy[i], ArgMax(ref.data() + pos * V, V)) << "step " << i;
  }
}

// The trained demo model (hidden 192: its Q4_K_M has Q4_K/Q6_K attn_output
// and ffn_down, the 192-wide matrices fall back to Q4_0, token_embd to Q8_0).
TEST(VkQ4KM, DemoModelMatchesCpu) {
  testing::TempDir dir;
  const std::string path = dir.File("demo-q4_k_m.gguf");
  const std::string cmd = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn quantize --in " +
                          UNICORN_SOURCE_DIR + "/models/demo --out " + path +
                          " --type q4_k_m > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // Token ids of "The capital of France is" style text would do; any ids
  // work for the logits. Greedy from here has no near-tie in 16 steps.
  const std::vector<int> prompt = {2, 1045, 1013, 1217, 622, 3000, 17, 99, 405, 1200, 77, 310};
  const Outputs vk = RunModel(path, "vulkan", prompt);
  const Outputs cpu = RunModel(path, "cpu", prompt);
  ASSERT_FALSE(cpu.logits.empty());
  const double rel = MaxDiff(vk.logits, cpu.logits) / Std(cpu.logits);
  std::printf("demo q4_k_m: vulkan vs cpu max |dlogit| / std = %.2e\n", rel);
  EXPECT_LT(rel, kDemoTol);
  EXPECT_EQ(vk.greedy, cpu.greedy);
}

}  // namespace
}  // namespace unicorn
