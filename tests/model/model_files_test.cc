#include "model/model_files.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/config_json.h"
#include "model/expected_tensors.h"
#include "model/ggml_types.h"
#include "model/gguf_config.h"
#include "model/gguf_writer.h"
#include "model/quant.h"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

using testing::AllF32;
using testing::HfDialect;
using testing::HfPrefix;
using testing::MakeTinyModel;
using testing::TempDir;
using testing::TinyModel;

std::unique_ptr<ModelFiles> OpenOk(const std::string& path, const std::string& mmproj = "") {
  auto m = ModelFiles::Open(path, mmproj);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

std::string OpenError(const std::string& path, const std::string& mmproj = "") {
  auto m = ModelFiles::Open(path, mmproj);
  EXPECT_FALSE(m.ok());
  return m.ok() ? "" : std::string(m.status().message());
}

// Every tensor of the model matches the tiny model's weights. Norm weights
// read from GGUF went through (1 + w) - 1 in f32: that is exact to half an
// ulp of 1 + w (|w| < 1, so 2^-24 * 2), hence the tolerance for them.
void ExpectWeights(const ModelFiles& m, const TinyModel& tm, float matrix_tol) {
  size_t n = 0;
  for (const auto& [name, want] : tm.w) {
    const TensorInfo* t = m.Find(name);
    ASSERT_NE(t, nullptr) << name;
    std::vector<float> got = testing::TensorToF32(*t);
    ASSERT_EQ(got.size(), want.size()) << name;
    const bool norm = name.find("norm.weight") != std::string::npos && name.rfind("v.", 0) != 0;
    const float tol = norm ? 2.5e-7f : matrix_tol;
    for (size_t k = 0; k < got.size(); ++k) {
      ASSERT_NEAR(got[k], want[k], tol) << name << "[" << k << "]";
    }
    ++n;
  }
  EXPECT_EQ(n, m.tensors().size());
}

TEST(ModelFiles, HfFolderInEveryDialectMatchesGguf) {
  TempDir tmp;
  for (bool vision : {false, true}) {
    const TinyModel tm = MakeTinyModel(vision);
    const std::string gguf = tmp.File(vision ? "v.gguf" : "t.gguf");
    const std::string mmproj = tmp.File("mmproj.gguf");
    testing::WriteGgufModel(tm, gguf, mmproj, AllF32());
    auto g = OpenOk(gguf, vision ? mmproj : "");
    ASSERT_TRUE(g);
    EXPECT_EQ(g->config(), tm.config) << ConfigToJson(g->config()).dump(1) << "\n"
                                      << ConfigToJson(tm.config).dump(1);
    ExpectWeights(*g, tm, 0.0f);

    std::vector<HfPrefix> prefixes = {HfPrefix::kCausalLm};
    if (vision) prefixes = {HfPrefix::kGoogle, HfPrefix::kTf452, HfPrefix::kTf5};
    int i = 0;
    for (HfPrefix p : prefixes) {
      for (HfDialect d : {HfDialect::kGoogle, HfDialect::kTransformers5}) {
        const std::string dir = tmp.File("hf" + std::to_string(vision) + std::to_string(i++));
        testing::WriteHfFolder(tm, dir, d, p, DType::kF32, /*shards=*/i % 2 ? 1 : 3);
        auto h = OpenOk(dir);
        ASSERT_TRUE(h);
        EXPECT_EQ(h->config(), g->config()) << ConfigToJson(h->config()).dump(1);
        EXPECT_EQ(h->format(), ModelFiles::Format::kSafetensors);
        EXPECT_EQ(h->dir(), dir);
        ExpectWeights(*h, tm, 0.0f);  // f32 in both: exact
      }
    }
  }
}

TEST(ModelFiles, QuantizedGgufWithinQuantizationError) {
  TempDir tmp;
  const TinyModel tm = MakeTinyModel(true, 7);
  GgufModelOptions o;  // Q4_0 matrices, Q8_0 embedding, F16 vision, F16 projection
  testing::WriteGgufModel(tm, tmp.File("q.gguf"), tmp.File("mmproj.gguf"), o);
  auto m = OpenOk(tmp.File("q.gguf"), tmp.File("mmproj.gguf"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Find("blk.0.attn_q.weight")->dtype, DType::kQ4_0);
  EXPECT_EQ(m->Find("token_embd.weight")->dtype, DType::kQ8_0);
  EXPECT_EQ(m->Find("v.blk.0.attn_q.weight")->dtype, DType::kF16);
  EXPECT_EQ(m->Find("mm.input_projection.weight")->dtype, DType::kF16);
  EXPECT_EQ(m->Find("blk.0.attn_norm.weight")->dtype, DType::kF32);
  // Weights are in [-0.1, 0.1): Q4_0's worst error is one step, amax/8 <=
  // 0.0125 (see quant_test.cc), plus the f16 rounding of the scale.
  ExpectWeights(*m, tm, 0.0126f);
}

TEST(ModelFiles, NormsAreHeldAsWAndProjectionTransposed) {
  TempDir tmp;
  TinyModel tm = MakeTinyModel(true);
  tm.w["blk.2.attn_q_norm.weight"][5] = 0.25f;
  tm.w["mm.input_projection.weight"][1 * 32 + 7] = 0.5f;  // [hidden=64, v_hidden=32]: row 1, col 7
  testing::WriteGgufModel(tm, tmp.File("m.gguf"), tmp.File("p.gguf"), AllF32());
  auto m = OpenOk(tmp.File("m.gguf"), tmp.File("p.gguf"));
  ASSERT_TRUE(m);
  const TensorInfo* norm = m->Find("blk.2.attn_q_norm.weight");
  EXPECT_EQ(reinterpret_cast<const float*>(norm->data)[5], 0.25f);  // file holds 1.25
  const TensorInfo* p = m->Find("mm.input_projection.weight");
  EXPECT_EQ(p->shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(reinterpret_cast<const float*>(p->data)[1 * 32 + 7], 0.5f);
  // SigLIP LayerNorms are not Gemma norms: held as stored.
  const TensorInfo* ln = m->Find("v.blk.0.ln1.weight");
  EXPECT_EQ(testing::TensorToF32(*ln), tm.w["v.blk.0.ln1.weight"]);
}

TEST(ModelFiles, BF16FolderIsMappedInPlace) {
  TempDir tmp;
  const TinyModel tm = MakeTinyModel(false);
  testing::WriteHfFolder(tm, tmp.path(), HfDialect::kGoogle, HfPrefix::kCausalLm, DType::kBF16);
  auto m = OpenOk(tmp.path());
  ASSERT_TRUE(m);
  const TensorInfo* t = m->Find("blk.0.ffn_down.weight");
  EXPECT_EQ(t->dtype, DType::kBF16);
  EXPECT_EQ(t->file, tmp.File("model.safetensors"));
  // bf16 keeps 8 bits of mantissa: relative error <= 2^-9.
  std::vector<float> got = testing::TensorToF32(*t);
  const std::vector<float>& want = tm.w.at("blk.0.ffn_down.weight");
  for (size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], want[k], std::fabs(want[k]) / 256);
  m->WillNeed(*t);  // advisory; must not fail
}

TEST(ModelFiles, FindGetAndDir) {
  TempDir tmp;
  const TinyModel tm = MakeTinyModel(false);
  testing::WriteGgufModel(tm, tmp.File("m.gguf"), "", AllF32());
  auto m = OpenOk(tmp.File("m.gguf"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Find("nope"), nullptr);
  auto g = m->Get("blk.99.attn_q.weight");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("blk.99.attn_q.weight"), std::string::npos);
  EXPECT_NE(g.status().message().find(tmp.File("m.gguf")), std::string::npos);
  EXPECT_EQ(m->dir(), tmp.path());
  ASSERT_NE(m->vocab(), nullptr);
  EXPECT_EQ(m->vocab()->tokens.size(), 300u);
  EXPECT_EQ(m->vocab()->tokens[2], "<bos>");
  EXPECT_EQ(m->tensors().size(), ExpectedTextTensors(tm.config).size());
}

TEST(ModelFiles, ShapeMismatchNamesTensorAndShapes) {
  TempDir tmp;
  TinyModel tm = MakeTinyModel(false);
  testing::WriteHfFolder(tm, tmp.path(), HfDialect::kGoogle, HfPrefix::kCausalLm);
  // Rewrite config.json with 4 heads: attn_q must then be [128, 64].
  Gemma3Config c = tm.config;
  c.num_heads = 4;
  testing::WriteFile(tmp.File("config.json"), testing::HfConfigJson(c, HfDialect::kGoogle));
  EXPECT_EQ(OpenError(tmp.path()),
            "[model] " + tmp.path() +
                ": blk.0.attn_q.weight: shape [64, 64] but the config needs [128, 64]");
}

TEST(ModelFiles, MissingTensorIsAnError) {
  TempDir tmp;
  TinyModel tm = MakeTinyModel(false);
  tm.config.num_layers = 8;  // a layer the file does not have
  tm.config.layer_types.push_back(LayerType::kSliding);
  testing::WriteFile(tmp.File("config.json"), testing::HfConfigJson(tm.config, HfDialect::kGoogle));
  tm.config.num_layers = 7;
  tm.config.layer_types.pop_back();
  std::vector<testing::StTensor> ts;
  for (const auto& [name, v] : tm.w)
    ts.push_back({testing::HfName(name, HfPrefix::kCausalLm), "F32", {}, testing::F32Bytes(v)});
  for (auto& t : ts) {
    for (const ExpectedTensor& e : ExpectedTextTensors(tm.config)) {
      if (testing::HfName(e.name, HfPrefix::kCausalLm) == t.name) t.shape = e.shape;
    }
  }
  testing::WriteFile(tmp.File("model.safetensors"), testing::SafetensorsBytes(ts));
  EXPECT_EQ(OpenError(tmp.path()), "[model] " + tmp.path() +
                                       ": missing tensor blk.7.attn_norm.weight (the config "
                                       "needs [64])");
}

TEST(ModelFiles, UnknownTensorsAreIgnoredAndTiedHeadDropped) {
  TempDir tmp;
  const TinyModel tm = MakeTinyModel(false);
  std::vector<testing::StTensor> ts;
  for (const ExpectedTensor& e : ExpectedTextTensors(tm.config)) {
    ts.push_back({testing::HfName(e.name, HfPrefix::kCausalLm), "F32", e.shape,
                  testing::F32Bytes(tm.w.at(e.name))});
  }
  ts.push_back(
      {"lm_head.weight", "F32", {300, 64}, testing::F32Bytes(tm.w.at("token_embd.weight"))});
  ts.push_back({"model.some_future_thing", "F32", {2}, testing::F32Bytes({1, 2})});
  testing::WriteFile(tmp.File("model.safetensors"), testing::SafetensorsBytes(ts));
  testing::WriteFile(tmp.File("config.json"), testing::HfConfigJson(tm.config, HfDialect::kGoogle));
  auto m = OpenOk(tmp.path());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Find("output.weight"), nullptr);
  EXPECT_EQ(m->tensors().size(), ExpectedTextTensors(tm.config).size());
}

TEST(ModelFiles, UntiedHeadIsRequiredAndKept) {
  TempDir tmp;
  TinyModel tm = MakeTinyModel(false);
  tm.config.tie_word_embeddings = false;
  tm.w["output.weight"] = tm.w["token_embd.weight"];
  testing::WriteGgufModel(tm, tmp.File("m.gguf"), "", AllF32());
  auto m = OpenOk(tmp.File("m.gguf"));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->config().tie_word_embeddings);
  EXPECT_NE(m->Find("output.weight"), nullptr);
}

TEST(ModelFiles, FusedQkvIsSplitIntoViews) {
  TempDir tmp;
  const TinyModel tm = MakeTinyModel(false);
  const Gemma3Config& c = tm.config;
  GgufMetadata md;
  ASSERT_TRUE(TextConfigToGguf(c, &md).ok());
  auto w = GgufWriter::Create(tmp.File("f.gguf"));
  ASSERT_TRUE(w.ok());
  for (const auto& [k, v] : md.entries()) (*w)->SetKv(k, v);
  std::vector<std::pair<std::string, std::vector<float>>> data;
  for (const ExpectedTensor& e : ExpectedTextTensors(c)) {
    if (e.name.find(".attn_k.") != std::string::npos ||
        e.name.find(".attn_v.") != std::string::npos)
      continue;
    std::vector<float> v = tm.w.at(e.name);
    std::vector<int64_t> shape = e.shape;
    std::string name = e.name;
    if (e.name.find(".attn_q.") != std::string::npos) {
      const std::string blk = e.name.substr(0, e.name.find(".attn_q."));
      for (const char* kv : {".attn_k.weight", ".attn_v.weight"}) {
        const auto& x = tm.w.at(blk + kv);
        v.insert(v.end(), x.begin(), x.end());
      }
      shape = {64 + 32 + 32, 64};
      name = blk + ".attn_qkv.weight";
    } else if (e.role == TensorRole::kNorm) {
      for (float& x : v) x += 1;
    }
    ASSERT_TRUE((*w)->AddTensor(name, DType::kF32, shape).ok());
    data.emplace_back(name, v);
  }
  ASSERT_TRUE((*w)->WriteHeader().ok());
  for (const auto& [n, v] : data) ASSERT_TRUE((*w)->Write(v.data(), v.size() * 4).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto m = OpenOk(tmp.File("f.gguf"));
  ASSERT_TRUE(m);
  EXPECT_EQ(testing::TensorToF32(*m->Find("blk.3.attn_k.weight")), tm.w.at("blk.3.attn_k.weight"));
  EXPECT_EQ(testing::TensorToF32(*m->Find("blk.3.attn_v.weight")), tm.w.at("blk.3.attn_v.weight"));
  EXPECT_EQ(testing::TensorToF32(*m->Find("blk.3.attn_q.weight")), tm.w.at("blk.3.attn_q.weight"));
}

TEST(ModelFiles, UnsupportedTensorTypeIsAClearError) {
  TempDir tmp;
  const TinyModel tm = MakeTinyModel(false);
  GgufMetadata md;
  ASSERT_TRUE(TextConfigToGguf(tm.config, &md).ok());
  auto w = GgufWriter::Create(tmp.File("k.gguf"));
  ASSERT_TRUE(w.ok());
  for (const auto& [k, v] : md.entries()) (*w)->SetKv(k, v);
  ASSERT_TRUE((*w)->AddTensor("token_embd.weight", DType::kF32, {300, 64}).ok());
  ASSERT_TRUE((*w)->AddTensor("blk.0.attn_q.weight", kGgmlIQ4_XS, {64, 256}).ok());
  ASSERT_TRUE((*w)->WriteHeader().ok());
  std::vector<uint8_t> zeros(300 * 64 * 4 + 64 * 136);
  ASSERT_TRUE((*w)->Write(zeros.data(), zeros.size()).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_EQ(OpenError(tmp.File("k.gguf")),
            "[gguf] " + tmp.File("k.gguf") +
                ": unsupported tensor type IQ4_XS in tensor blk.0.attn_q.weight (supported: "
                "F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, UNICORN_NF4)");
}

TEST(ModelFiles, BadInputsAreErrorsNamingTheFile) {
  TempDir tmp;
  EXPECT_NE(OpenError(tmp.File("absent")).find("no such file"), std::string::npos);
  // A folder without weights.
  const TinyModel tm = MakeTinyModel(true);
  testing::WriteFile(tmp.File("config.json"), testing::HfConfigJson(tm.config, HfDialect::kGoogle));
  EXPECT_NE(OpenError(tmp.path()).find("no model.safetensors"), std::string::npos);
  // An mmproj given with an HF folder; an mmproj given as the model.
  EXPECT_NE(OpenError(tmp.path(), "x.gguf").find("mmproj"), std::string::npos);
  testing::WriteGgufModel(tm, tmp.File("t.gguf"), tmp.File("p.gguf"), AllF32());
  EXPECT_NE(OpenError(tmp.File("p.gguf")).find("vision projector (mmproj)"), std::string::npos);
  // A text GGUF given as the mmproj.
  EXPECT_NE(OpenError(tmp.File("t.gguf"), tmp.File("t.gguf")).find("not an mmproj"),
            std::string::npos);
  // A sharded index that points at a missing file.
  const std::string dir = tmp.File("sharded");
  testing::WriteHfFolder(tm, dir, HfDialect::kGoogle, HfPrefix::kGoogle, DType::kF32, 2);
  std::filesystem::remove(dir + "/model-00002-of-00002.safetensors");
  EXPECT_NE(OpenError(dir).find("model-00002-of-00002.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace unicorn
