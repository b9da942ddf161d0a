// A Q4_K_M model (Q4_K matrices, Q6_K token_embd and the use_more_bits
// layers' attn_v / ffn_down, exactly as `unicorn quantize --type q4_k_m`
// plans it) on the Vulkan backend against the CPU backend: prefill logits at
// every position and greedy decode. The model is generated here with widths
// that are whole 256-weight super-blocks (the repository's tiny models are
// 64 wide, where every k-quant falls back to Q4_0).
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
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

// The repository's Vulkan bound: 1e-2 of the logit scale (std). The two
// backends decode the same weights but may round activations differently
// (the CPU's integer kernels quantize them to 8 bits per block; Vulkan keeps
// F32), which moves logits by ~1e-3 of their scale on this model.
constexpr double kTol = 1e-2;

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
};

Outputs RunModel(const std::string& path, const std::string& backend) {
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
  const std::vector<int> prompt = {2, 17, 250, 33, 91, 4, 120, 7, 64, 199, 12, 45};
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

TEST(VkQ4KM, LogitsAndGreedyMatchCpu) {
  testing::TempDir dir;
  const std::string path = dir.File("q4_k_m.gguf");
  std::map<std::string, int> types = WriteQ4KM(path);
  for (const auto& [name, count] : types) std::printf("%s: %d tensors\n", name.c_str(), count);
  // The mix is really there: Q4_K matrices, Q6_K token_embd + more-bits layers.
  EXPECT_GT(types["q4_k"], 0);
  EXPECT_GT(types["q6_k"], 1);

  const Outputs vk = RunModel(path, "vulkan");
  const Outputs cpu = RunModel(path, "cpu");
  ASSERT_EQ(vk.logits.size(), cpu.logits.size());
  ASSERT_FALSE(cpu.logits.empty());
  double err = 0;
  for (size_t i = 0; i < cpu.logits.size(); ++i) {
    err = std::max(err, std::fabs(double(vk.logits[i]) - double(cpu.logits[i])));
  }
  if (std::isnan(err)) err = INFINITY;
  const double rel = err / Std(cpu.logits);
  std::printf("q4_k_m: vulkan vs cpu max |dlogit| / std = %.2e\n", rel);
  EXPECT_LT(rel, kTol);
  EXPECT_EQ(vk.greedy, cpu.greedy);
}

}  // namespace
}  // namespace unicorn
