#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "model/name_map.h"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

using testing::F32Bytes;
using testing::SafetensorsBytes;
using testing::StTensor;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Error(const std::string& bytes) {
  auto f = ParseSafetensors(Bytes(bytes), "m.safetensors");
  EXPECT_FALSE(f.ok());
  return f.ok() ? "" : std::string(f.status().message());
}

// A file from a literal JSON header and `data`.
std::string Raw(const std::string& header, const std::string& data) {
  const uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

TEST(Safetensors, ParsesTensorsAndMetadata) {
  const std::string file = SafetensorsBytes({
      {"b", "BF16", {2, 3}, std::string(12, 'b')},
      {"a", "F32", {4}, F32Bytes({1, 2, 3, 4})},
      {"s", "F16", {}, std::string(2, 's')},
  });
  auto f = ParseSafetensors(Bytes(file), "m.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->metadata.at("format"), "pt");
  ASSERT_EQ(f->tensors.size(), 3u);
  EXPECT_EQ(f->tensors[0].name, "b");  // in data order
  EXPECT_EQ(f->tensors[0].dtype, DType::kBF16);
  EXPECT_EQ(f->tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f->tensors[1].name, "a");
  float x[4];
  std::memcpy(x, f->tensors[1].data, 16);
  EXPECT_EQ(x[3], 4.0f);
  EXPECT_EQ(f->tensors[2].shape.size(), 0u);  // a scalar
  EXPECT_EQ(f->data_start % 8, 0u);
}

TEST(Safetensors, BadFiles) {
  EXPECT_EQ(Error("1234"), "[safetensors] m.safetensors: truncated file: no header length");
  EXPECT_EQ(Error(Raw("{}", "").substr(0, 9)),
            "[safetensors] m.safetensors: truncated file: header length 2 runs past the end (9 "
            "bytes)");
  std::string huge(8, '\0');
  huge[7] = 1;  // 2^56
  EXPECT_NE(Error(huge + "{}").find("header length 72057594037927936 is absurd"),
            std::string::npos);
  EXPECT_EQ(Error(Raw("{\"a\": ", "")), "[safetensors] m.safetensors: header is not valid JSON");
  EXPECT_EQ(Error(Raw("[1]", "")), "[safetensors] m.safetensors: header is not a JSON object");
  EXPECT_EQ(Error(Raw(R"({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})",
                      std::string(8, 0))),
            "[safetensors] m.safetensors: tensor a: unsupported dtype I64 (F32, F16 and BF16 are "
            "supported)");
  EXPECT_EQ(Error(Raw(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
                      std::string(8, 0))),
            "[safetensors] m.safetensors: tensor a: shape [3] x f32 is 12 bytes but data_offsets "
            "span 8");
  EXPECT_EQ(Error(Raw(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                      std::string(8, 0))),
            "[safetensors] m.safetensors: tensor a: data [0, 16) out of the data section (8 "
            "bytes)");
  EXPECT_NE(Error(Raw(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                      std::string(12, 0)))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(Error(Raw(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
                      std::string(4, 0)))
                .find("bad dimension"),
            std::string::npos);
  EXPECT_NE(Error(Raw(R"({"a": {"dtype": "F32", "shape": [1125899906842624, 1125899906842624],
                          "data_offsets": [0, 4]}})",
                      std::string(4, 0)))
                .find("absurd"),
            std::string::npos);
  EXPECT_NE(Error(Raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})",
                      std::string(4, 0)))
                .find("begin <= end"),
            std::string::npos);
  EXPECT_NE(
      Error(Raw(R"({"a": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", std::string(4, 0)))
          .find("dtype"),
      std::string::npos);
  EXPECT_NE(Error(Raw(R"({"a": 5})", "")).find("not an object"), std::string::npos);
  EXPECT_NE(Error(Raw(R"({"__metadata__": {"k": 1}})", "")).find("not a string"),
            std::string::npos);
}

TEST(Safetensors, Index) {
  auto m = ParseSafetensorsIndex(R"({"metadata": {}, "weight_map": {"a": "x.safetensors"}})", "i");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->at("a"), "x.safetensors");
  EXPECT_FALSE(ParseSafetensorsIndex(R"({"weight_map": {"a": "../x"}})", "i").ok());
  EXPECT_FALSE(ParseSafetensorsIndex(R"({"weight_map": {"a": 1}})", "i").ok());
  EXPECT_FALSE(ParseSafetensorsIndex(R"({})", "i").ok());
  EXPECT_FALSE(ParseSafetensorsIndex("nope", "i").ok());
}

TEST(NameMap, EveryDialect) {
  struct Case {
    const char* hf;
    const char* internal;
    bool transpose;
  };
  const Case cases[] = {
      {"model.embed_tokens.weight", "token_embd.weight", false},
      {"language_model.model.embed_tokens.weight", "token_embd.weight", false},
      {"model.language_model.embed_tokens.weight", "token_embd.weight", false},
      {"model.norm.weight", "output_norm.weight", false},
      {"model.layers.12.self_attn.o_proj.weight", "blk.12.attn_output.weight", false},
      {"language_model.model.layers.3.pre_feedforward_layernorm.weight", "blk.3.ffn_norm.weight",
       false},
      {"model.language_model.layers.0.post_feedforward_layernorm.weight",
       "blk.0.post_ffw_norm.weight", false},
      {"model.layers.1.self_attn.k_norm.weight", "blk.1.attn_k_norm.weight", false},
      {"lm_head.weight", "output.weight", false},
      {"vision_tower.vision_model.embeddings.patch_embedding.weight", "v.patch_embd.weight", false},
      {"model.vision_tower.vision_model.encoder.layers.26.mlp.fc2.bias", "v.blk.26.ffn_down.bias",
       false},
      {"model.vision_tower.encoder.layers.0.self_attn.out_proj.weight", "v.blk.0.attn_out.weight",
       false},
      {"vision_tower.post_layernorm.bias", "v.post_ln.bias", false},
      {"vision_tower.vision_model.encoder.layers.4.layer_norm1.weight", "v.blk.4.ln1.weight",
       false},
      {"multi_modal_projector.mm_input_projection_weight", "mm.input_projection.weight", true},
      {"model.multi_modal_projector.mm_soft_emb_norm.weight", "mm.soft_emb_norm.weight", false},
  };
  for (const Case& c : cases) {
    auto m = MapHfName(c.hf);
    ASSERT_TRUE(m.has_value()) << c.hf;
    EXPECT_EQ(m->internal, c.internal) << c.hf;
    EXPECT_EQ(m->transpose, c.transpose) << c.hf;
  }
  for (const char* unknown :
       {"model.layers.x.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.bias",
        "vision_tower.vision_model.head.probe", "model.layers.1", "other.weight", ""}) {
    EXPECT_FALSE(MapHfName(unknown).has_value()) << unknown;
  }
  EXPECT_TRUE(IsGemmaRmsNorm("blk.3.attn_q_norm.weight"));
  EXPECT_TRUE(IsGemmaRmsNorm("blk.3.post_ffw_norm.weight"));
  EXPECT_TRUE(IsGemmaRmsNorm("output_norm.weight"));
  EXPECT_TRUE(IsGemmaRmsNorm("mm.soft_emb_norm.weight"));
  EXPECT_FALSE(IsGemmaRmsNorm("v.blk.0.ln1.weight"));
  EXPECT_FALSE(IsGemmaRmsNorm("v.post_ln.weight"));
  EXPECT_FALSE(IsGemmaRmsNorm("blk.0.attn_q.weight"));
}

}  // namespace
}  // namespace unicorn
