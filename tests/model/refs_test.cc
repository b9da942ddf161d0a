// Cross-checks against files Unicorn did not write: the tiny Hugging Face
// models of tests/data/models (saved by transformers 5.17) and their GGUF
// conversions by llama.cpp's convert_hf_to_gguf.py (see tools/refs/README.md).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "model/config_json.h"
#include "model/gguf_config.h"
#include "model/hf_config.h"
#include "model/model_files.h"
#include "model/name_map.h"
#include "model/quant.h"

namespace unicorn {
namespace {

const std::string kModels = std::string(UNICORN_SOURCE_DIR) + "/tests/data/models/";

std::unique_ptr<ModelFiles> Open(const std::string& path, const std::string& mmproj = "") {
  auto m = ModelFiles::Open(kModels + path, mmproj.empty() ? "" : kModels + mmproj);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<float> ToF32(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  const int64_t row = t.shape.empty() ? 1 : t.shape.back();
  const size_t rb = RowBytes(t.dtype, row);
  for (int64_t r = 0; r < t.numel() / row; ++r) {
    DequantizeRow(t.dtype, t.data + size_t(r) * rb, out.data() + r * row, row);
  }
  return out;
}

// `gguf` holds the same tensors as the f32 Hugging Face `hf`:
//  - f32 tensors exactly, except Gemma norms, which llama.cpp stored as 1 + w
//    in f32: (1 + w) - 1 is exact to one ulp of 1 + w;
//  - Q8_0 tensors bit for bit equal to our reference quantizer applied to
//    the HF weights (gguf-py's quantizer is ggml's reference algorithm);
//  - f16 tensors equal to f16(hf).
void ExpectSameTensors(const ModelFiles& hf, const ModelFiles& gguf) {
  ASSERT_EQ(hf.tensors().size(), gguf.tensors().size());
  std::set<DType> seen;
  for (const TensorInfo& h : hf.tensors()) {
    const TensorInfo* g = gguf.Find(h.name);
    ASSERT_NE(g, nullptr) << h.name;
    ASSERT_EQ(g->shape, h.shape) << h.name;
    ASSERT_EQ(h.dtype, DType::kF32) << h.name;
    seen.insert(g->dtype);
    const std::vector<float> want = ToF32(h);
    if (g->dtype == DType::kQ8_0) {
      const int64_t row = h.shape.back();
      std::vector<uint8_t> q(RowBytes(DType::kQ8_0, row));
      for (int64_t r = 0; r < h.numel() / row; ++r) {
        QuantizeRow(DType::kQ8_0, want.data() + r * row, q.data(), row);
        ASSERT_EQ(std::memcmp(q.data(), g->data + size_t(r) * q.size(), q.size()), 0)
            << h.name << " row " << r;
      }
      continue;
    }
    const std::vector<float> got = ToF32(*g);
    for (size_t k = 0; k < got.size(); ++k) {
      if (g->dtype == DType::kF16) {
        ASSERT_EQ(got[k], F16ToF32(F32ToF16(want[k]))) << h.name << "[" << k << "]";
      } else if (IsGemmaRmsNorm(h.name)) {
        const float ulp = std::max(1.0f, std::fabs(1.0f + want[k])) * std::ldexp(1.0f, -23);
        ASSERT_NEAR(got[k], want[k], ulp) << h.name << "[" << k << "]";
      } else {
        ASSERT_EQ(got[k], want[k]) << h.name << "[" << k << "]";
      }
    }
  }
  EXPECT_FALSE(seen.empty());
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Refs, GoogleDialectConfigEqualsTransformers5) {
  for (const char* m : {"text-small", "vision-small"}) {
    auto a = ParseHfConfig(Read(kModels + m + "/config.json"), "config.json");
    auto b = ParseHfConfig(Read(kModels + m + "/config-google-dialect.json"), "google.json");
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(*a, *b) << m << "\n" << ConfigToJson(*a).dump(1) << ConfigToJson(*b).dump(1);
  }
}

TEST(Refs, TextSmallHfAndLlamaCppGgufAgree) {
  auto hf = Open("text-small");
  auto f32 = Open("text-small/gguf/text-small-f32.gguf");
  auto q8 = Open("text-small/gguf/text-small-q8_0.gguf");
  ASSERT_TRUE(hf && f32 && q8);
  const Gemma3Config& c = hf->config();
  EXPECT_EQ(c.final_logit_softcapping, 30.0);
  EXPECT_EQ(c.rope_global.linear_factor, 8.0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{1, 106}));
  EXPECT_EQ(f32->config(), c) << ConfigToJson(f32->config()).dump(1);
  EXPECT_EQ(q8->config(), c) << ConfigToJson(q8->config()).dump(1);
  ExpectSameTensors(*hf, *f32);
  ExpectSameTensors(*hf, *q8);
  EXPECT_EQ(q8->Find("blk.0.attn_q.weight")->dtype, DType::kQ8_0);
  EXPECT_EQ(q8->Find("token_embd.weight")->dtype, DType::kQ8_0);
  // The tokenizer data as llama.cpp wrote it.
  const GgufVocab* v = f32->vocab();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->model, "llama");
  EXPECT_EQ(v->tokens.size(), 512u);
  EXPECT_EQ(v->scores.size(), 512u);
  EXPECT_EQ(v->tokens[106], "<end_of_turn>");
  EXPECT_EQ(v->token_types[3], int32_t(GgufTokenType::kControl));  // <unk> is CONTROL there
  EXPECT_EQ(v->eos_id, 106);
  EXPECT_EQ(v->bos_id, 2);
  EXPECT_EQ(v->add_bos, true);
  EXPECT_EQ(v->add_space_prefix, false);
  EXPECT_FALSE(v->chat_template.empty());
  EXPECT_EQ(hf->vocab(), nullptr);
  EXPECT_EQ(hf->dir(), kModels + "text-small");
  EXPECT_EQ(f32->dir(), kModels + "text-small/gguf");
}

TEST(Refs, VisionSmallHfAndLlamaCppGgufAgree) {
  auto hf = Open("vision-small");
  auto gg = Open("vision-small/gguf/vision-small-q8_0.gguf",
                 "vision-small/gguf/mmproj-vision-small-f32.gguf");
  ASSERT_TRUE(hf && gg);
  const Gemma3Config& c = hf->config();
  EXPECT_TRUE(c.has_vision);
  EXPECT_EQ(c.vision.mm_tokens_per_image, 16);
  EXPECT_EQ(c.image_token_id, 602);
  EXPECT_EQ(c.boi_token_id, 600);
  EXPECT_EQ(c.eoi_token_id, 601);
  EXPECT_EQ(gg->config(), c) << ConfigToJson(gg->config()).dump(1);
  ExpectSameTensors(*hf, *gg);
  EXPECT_EQ(gg->Find("mm.input_projection.weight")->dtype, DType::kF16);
  EXPECT_EQ(gg->Find("mm.input_projection.weight")->shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(gg->Find("v.patch_embd.weight")->shape, (std::vector<int64_t>{32, 3, 8, 8}));
}

TEST(Refs, VisionSmallGoogleNamesMapLikeTransformers5Names) {
  // Google's published names and transformers 5.17's saved and in-memory
  // names of the same tensors map to the same internal names.
  std::map<std::string, std::string> shape_of[3];
  const char* files[3] = {"tensor_names.txt", "tensor_names-google-dialect.txt",
                          "tensor_names-in-memory.txt"};
  for (int f = 0; f < 3; ++f) {
    std::istringstream in(Read(kModels + "vision-small/" + files[f]));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream ls(line);
      std::string name, dtype, shape;
      ls >> name >> dtype >> shape;
      auto m = MapHfName(name);
      ASSERT_TRUE(m.has_value()) << files[f] << ": " << name;
      shape_of[f][m->internal] = shape;
    }
  }
  EXPECT_EQ(shape_of[0], shape_of[1]);
  shape_of[2].erase("output.weight");  // the tied head, in memory only
  EXPECT_EQ(shape_of[0], shape_of[2]);
  EXPECT_EQ(shape_of[0].size(), 106u + 39u);  // 8 x 13 + 2 text, 3 + 2 x 16 + 4 vision
}

TEST(Refs, TokenizerJsonGivesLlamaCppsSentencePieceVocab) {
  // llama.cpp built these vocabularies from tokenizer.model; ours come from
  // tokenizer.json + tokenizer_config.json alone: same tokens, types,
  // scores, ids, flags and chat template.
  for (const char* m :
       {"text-small/gguf/text-small-f32.gguf", "vision-small/gguf/vision-small-q8_0.gguf"}) {
    auto g = Open(m);
    ASSERT_TRUE(g);
    ASSERT_NE(g->vocab(), nullptr);
    auto v = VocabFromHfTokenizer(g->dir() + "/..", int(g->vocab()->tokens.size()));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(*v == *g->vocab()) << m;
    EXPECT_EQ(v->scores, g->vocab()->scores) << m;
    EXPECT_EQ(v->token_types, g->vocab()->token_types) << m;
  }
}

TEST(Refs, ShardedBf16AndTheQueryScalarQuirk) {
  auto m1 = Open("text-1b-like");
  ASSERT_TRUE(m1);
  EXPECT_EQ(m1->config().num_kv_heads, 1);
  EXPECT_EQ(m1->Find("blk.0.attn_q.weight")->dtype, DType::kBF16);
  std::set<std::string> files;
  for (const TensorInfo& t : m1->tensors()) files.insert(t.file);
  EXPECT_EQ(files.size(), 3u);

  auto m27 = Open("text-27b-like");
  ASSERT_TRUE(m27);
  EXPECT_EQ(m27->config().head_dim, 128);
  EXPECT_EQ(m27->config().query_pre_attn_scalar, 168);
  // llama.cpp derives the scalar from the layer count (62 layers -> 27B);
  // this 6-layer model cannot be stored in GGUF without losing it.
  GgufMetadata md;
  EXPECT_NE(TextConfigToGguf(m27->config(), &md).message().find("llama.cpp derives 128"),
            std::string::npos);
}

}  // namespace
}  // namespace unicorn
