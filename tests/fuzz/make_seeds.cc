// Writes the seed corpus of the fuzz targets (committed under
// tests/fuzz/corpus/<target>/): tiny but complete Gemma 3 files in every
// format and dialect, so the fuzzer starts from inputs that reach deep.
//   ninja -C build fuzz_seeds && build/fuzz_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <string>

#include "model/expected_tensors.h"
#include "model/gguf_model_writer.h"
#include "model/gguf_vocab.h"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

namespace fs = std::filesystem;

Gemma3Config Micro(bool vision) {
  Gemma3Config c = testing::TinyConfig(vision);
  c.hidden_size = 32;
  c.num_layers = 1;
  c.layer_types = {LayerType::kSliding};
  c.num_heads = 1;
  c.num_kv_heads = 1;
  c.head_dim = 32;
  c.intermediate_size = 32;
  c.vocab_size = 16;
  c.sliding_window = 8;
  if (vision) {
    c.vision.image_size = 16;
    c.vision.patch_size = 8;
    c.vision.hidden_size = 32;
    c.vision.intermediate_size = 32;
    c.vision.num_layers = 1;
    c.vision.num_heads = 1;
    c.vision.mm_tokens_per_image = 1;
  }
  return c;
}

testing::TinyModel MicroModel(bool vision) {
  testing::TinyModel m;
  m.config = Micro(vision);
  std::vector<ExpectedTensor> all = ExpectedTextTensors(m.config);
  for (const ExpectedTensor& e : ExpectedVisionTensors(m.config)) all.push_back(e);
  int k = 0;
  for (const ExpectedTensor& e : all) {
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = float((k++ * 37) % 101 - 50) / 500;
    m.w[e.name] = std::move(v);
  }
  return m;
}

int Main(const std::string& out) {
  const std::string g = out + "/gguf", s = out + "/safetensors", c = out + "/config";
  for (const std::string& d : {g, s, c}) fs::create_directories(d);
  const testing::TinyModel m = MicroModel(true);
  GgufModelOptions q;  // Q4_0 / Q8_0 text, F16 vision
  q.vision_matrix_type = DType::kQ8_0;
  testing::WriteGgufModel(m, g + "/micro_q4.gguf", g + "/micro_mmproj.gguf", q);
  GgufModelOptions f = testing::AllF32();
  f.alignment = 64;
  f.matrix_type = DType::kF16;
  f.embedding_type = DType::kBF16;
  testing::TinyModel text = MicroModel(false);
  testing::WriteGgufModel(text, g + "/micro_f16_align64.gguf", "", f);
  fs::copy_file(std::string(UNICORN_SOURCE_DIR) + "/tests/data/gguf/gguf_py_sample.gguf",
                g + "/gguf_py_sample.gguf", fs::copy_options::overwrite_existing);

  testing::TempDir tmp;
  testing::WriteHfFolder(m, tmp.File("google"), testing::HfDialect::kGoogle,
                         testing::HfPrefix::kGoogle, DType::kF32);
  fs::copy_file(tmp.File("google/model.safetensors"), s + "/micro_google_f32.safetensors",
                fs::copy_options::overwrite_existing);
  testing::WriteHfFolder(m, tmp.File("tf5"), testing::HfDialect::kTransformers5,
                         testing::HfPrefix::kTf5, DType::kBF16, 2);
  fs::copy_file(tmp.File("tf5/model-00001-of-00002.safetensors"), s + "/micro_tf5_bf16.safetensors",
                fs::copy_options::overwrite_existing);
  fs::copy_file(tmp.File("tf5/model.safetensors.index.json"), s + "/index.json",
                fs::copy_options::overwrite_existing);

  testing::WriteFile(c + "/google_vision.json",
                     testing::HfConfigJson(m.config, testing::HfDialect::kGoogle));
  testing::WriteFile(c + "/tf5_vision.json",
                     testing::HfConfigJson(m.config, testing::HfDialect::kTransformers5));
  testing::WriteFile(c + "/tf5_text.json",
                     testing::HfConfigJson(text.config, testing::HfDialect::kTransformers5));
  testing::WriteFile(c + "/preprocessor.json",
                     R"({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]})");
  std::printf("wrote seeds under %s\n", out.c_str());
  return 0;
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds <corpus dir>\n");
    return 2;
  }
  return unicorn::Main(argv[1]);
}
