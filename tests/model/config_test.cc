#include <gtest/gtest.h>

#include "model/config_check.h"
#include "model/config_json.h"
#include "model/gguf_config.h"
#include "model/hf_config.h"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

// Google's published config.json files (google/gemma-3-*-it, transformers 4.50).
constexpr char k1B[] = R"({
  "architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "attn_logit_softcapping": null, "bos_token_id": 2, "cache_implementation": "hybrid",
  "eos_token_id": [1, 106], "final_logit_softcapping": null, "head_dim": 256,
  "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152, "initializer_range": 0.02,
  "intermediate_size": 6912, "max_position_embeddings": 32768, "model_type": "gemma3_text",
  "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1, "pad_token_id": 0,
  "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
  "rope_scaling": null, "rope_theta": 1000000, "sliding_window": 512,
  "sliding_window_pattern": 6, "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
  "use_cache": true, "vocab_size": 262144})";

constexpr char k4B[] = R"({
  "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
  "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
  "initializer_range": 0.02, "mm_tokens_per_image": 256, "model_type": "gemma3",
  "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
    "sliding_window": 1024},
  "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
  "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
    "patch_size": 14, "vision_use_head": false}})";

// The same model as transformers 5 saves it.
constexpr char k4BTf5[] = R"({
  "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
  "eoi_token_index": 256000, "image_token_index": 262144, "mm_tokens_per_image": 256,
  "model_type": "gemma3", "tie_word_embeddings": true,
  "text_config": {"attention_bias": false, "attn_logit_softcapping": null, "bos_token_id": 2,
    "eos_token_id": [1, 106], "final_logit_softcapping": null, "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2560, "intermediate_size": 10240,
    "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
      "sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention",
      "full_attention", "sliding_attention", "sliding_attention", "sliding_attention",
      "sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention",
      "full_attention", "sliding_attention", "sliding_attention", "sliding_attention",
      "sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
      "sliding_attention", "sliding_attention", "sliding_attention"],
    "max_position_embeddings": 131072, "model_type": "gemma3_text", "num_attention_heads": 8,
    "num_hidden_layers": 34, "num_key_value_heads": 4, "pad_token_id": 0,
    "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06,
    "rope_parameters": {
      "full_attention": {"factor": 8.0, "rope_theta": 1000000.0, "rope_type": "linear"},
      "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
    "sliding_window": 1024, "use_bidirectional_attention": false, "vocab_size": 262208},
  "vision_config": {"attention_dropout": 0.0, "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "layer_norm_eps": 1e-06,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_channels": 3,
    "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}})";

constexpr char k12B[] = R"({
  "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
  "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
  "initializer_range": 0.02, "mm_tokens_per_image": 256, "model_type": "gemma3",
  "text_config": {"hidden_size": 3840, "intermediate_size": 15360, "model_type": "gemma3_text",
    "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
  "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
  "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
    "patch_size": 14, "vision_use_head": false}})";

constexpr char k27B[] = R"({
  "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
  "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
  "initializer_range": 0.02, "mm_tokens_per_image": 256, "model_type": "gemma3",
  "text_config": {"head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504,
    "model_type": "gemma3_text", "num_attention_heads": 32, "num_hidden_layers": 62,
    "num_key_value_heads": 16, "query_pre_attn_scalar": 168,
    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
  "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
  "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
    "patch_size": 14, "vision_use_head": false}})";

Gemma3Config Parse(const char* json) {
  auto c = ParseHfConfig(json, "config.json");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : Gemma3Config();
}

std::string Error(const std::string& json) {
  auto c = ParseHfConfig(json, "/m/config.json");
  EXPECT_FALSE(c.ok());
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(HfConfig, Google1B) {
  const Gemma3Config c = Parse(k1B);
  EXPECT_EQ(c.architecture, "Gemma3ForCausalLM");
  EXPECT_EQ(c.hidden_size, 1152);
  EXPECT_EQ(c.num_layers, 26);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.intermediate_size, 6912);
  EXPECT_EQ(c.vocab_size, 262144);
  EXPECT_EQ(c.sliding_window, 512);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_EQ(c.query_pre_attn_scalar, 256);
  EXPECT_EQ(c.rope_global.theta, 1e6);
  EXPECT_EQ(c.rope_global.linear_factor, 1.0);
  EXPECT_EQ(c.rope_local.theta, 1e4);
  EXPECT_EQ(c.eos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{1, 106}));
  EXPECT_FALSE(c.has_vision);
  ASSERT_EQ(c.layer_types.size(), 26u);
  for (int i = 0; i < 26; ++i) {
    EXPECT_EQ(c.layer_types[i], i % 6 == 5 ? LayerType::kGlobal : LayerType::kSliding) << i;
  }
}

TEST(HfConfig, Google4BUsesTransformersDefaults) {
  const Gemma3Config c = Parse(k4B);
  EXPECT_EQ(c.architecture, "Gemma3ForConditionalGeneration");
  EXPECT_EQ(c.hidden_size, 2560);
  EXPECT_EQ(c.num_layers, 34);
  EXPECT_EQ(c.num_heads, 8);        // default
  EXPECT_EQ(c.num_kv_heads, 4);     // default
  EXPECT_EQ(c.head_dim, 256);       // default
  EXPECT_EQ(c.vocab_size, 262208);  // default
  EXPECT_EQ(c.query_pre_attn_scalar, 256);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.sliding_window, 1024);
  EXPECT_EQ(c.rope_global.linear_factor, 8.0);
  EXPECT_EQ(c.rope_local.linear_factor, 1.0);  // rope_scaling is for global layers only
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{1, 106}));
  EXPECT_TRUE(c.has_vision);
  EXPECT_EQ(c.vision.hidden_size, 1152);
  EXPECT_EQ(c.vision.image_size, 896);
  EXPECT_EQ(c.vision.patch_size, 14);
  EXPECT_EQ(c.vision.intermediate_size, 4304);
  EXPECT_EQ(c.vision.num_layers, 27);
  EXPECT_EQ(c.vision.num_heads, 16);
  EXPECT_EQ(c.vision.mm_tokens_per_image, 256);
  EXPECT_EQ(c.image_token_id, 262144);
  EXPECT_EQ(c.boi_token_id, 255999);
  EXPECT_EQ(c.eoi_token_id, 256000);
}

TEST(HfConfig, BothDialectsGiveTheSameConfig) {
  EXPECT_EQ(Parse(k4B), Parse(k4BTf5)) << ConfigToJson(Parse(k4BTf5)).dump(1);
  testing::TinyModel m = testing::MakeTinyModel(true);
  for (bool vision : {false, true}) {
    const Gemma3Config want = testing::TinyConfig(vision);
    const Gemma3Config g = Parse(testing::HfConfigJson(want, testing::HfDialect::kGoogle).c_str());
    const Gemma3Config t =
        Parse(testing::HfConfigJson(want, testing::HfDialect::kTransformers5).c_str());
    EXPECT_EQ(g, want) << ConfigToJson(g).dump(1);
    EXPECT_EQ(t, want) << ConfigToJson(t).dump(1);
  }
}

TEST(HfConfig, Google12BAnd27B) {
  const Gemma3Config c12 = Parse(k12B);
  EXPECT_EQ(c12.hidden_size, 3840);
  EXPECT_EQ(c12.num_layers, 48);
  EXPECT_EQ(c12.num_heads, 16);
  EXPECT_EQ(c12.num_kv_heads, 8);
  EXPECT_EQ(c12.head_dim, 256);
  EXPECT_EQ(c12.intermediate_size, 15360);
  const Gemma3Config c27 = Parse(k27B);
  EXPECT_EQ(c27.hidden_size, 5376);
  EXPECT_EQ(c27.num_layers, 62);
  EXPECT_EQ(c27.num_heads, 32);
  EXPECT_EQ(c27.num_kv_heads, 16);
  EXPECT_EQ(c27.head_dim, 128);
  EXPECT_EQ(c27.intermediate_size, 21504);
  EXPECT_EQ(c27.query_pre_attn_scalar, 168);
  // llama.cpp derives 168 = 5376 / 32 for the 62-layer model: the 27B
  // round-trips through GGUF metadata.
  GgufMetadata md;
  ASSERT_TRUE(TextConfigToGguf(c27, &md).ok());
  md.Set("tokenizer.ggml.eos_token_id", GgufValue::U32(1));
  md.Set("tokenizer.ggml.eot_token_id", GgufValue::U32(106));
  auto back = TextConfigFromGguf(md, 262208);
  ASSERT_TRUE(back.ok()) << back.status();
  Gemma3Config want = c27;
  want.architecture = "Gemma3ForCausalLM";
  want.has_vision = false;
  EXPECT_EQ(ConfigToJson(*back).dump(), ConfigToJson(want).dump());
}

TEST(HfConfig, GgufMetadataRoundTripsEveryRealSize) {
  for (const char* json : {k1B, k4B, k12B, k27B}) {
    Gemma3Config c = Parse(json);
    GgufMetadata md;
    ASSERT_TRUE(TextConfigToGguf(c, &md).ok());
    if (c.has_vision) {
      ASSERT_TRUE(VisionConfigToGguf(c, &md).ok());
    }
    md.Set("general.architecture", GgufValue::Str("gemma3"));
    md.Set("tokenizer.ggml.eos_token_id", GgufValue::U32(1));
    md.Set("tokenizer.ggml.eot_token_id", GgufValue::U32(106));
    auto back = TextConfigFromGguf(md, c.vocab_size);
    ASSERT_TRUE(back.ok()) << back.status();
    if (c.has_vision) {
      md.Set("general.architecture", GgufValue::Str("clip"));
      ASSERT_TRUE(VisionConfigFromGguf(md, &*back).ok());
    }
    EXPECT_EQ(*back, c) << ConfigToJson(*back).dump(1);
  }
}

TEST(HfConfig, GgufQuirks) {
  // A config whose query_pre_attn_scalar follows neither llama.cpp rule
  // cannot be written; a sliding window pattern other than 6 is written as
  // a bool array and read back.
  Gemma3Config c = testing::TinyConfig(false);
  c.query_pre_attn_scalar = 20;
  GgufMetadata md;
  EXPECT_NE(TextConfigToGguf(c, &md).message().find("llama.cpp derives 32"), std::string::npos);
  c.query_pre_attn_scalar = 32;
  c.layer_types = {LayerType::kSliding, LayerType::kGlobal,  LayerType::kSliding,
                   LayerType::kGlobal,  LayerType::kSliding, LayerType::kSliding,
                   LayerType::kGlobal};
  ASSERT_TRUE(TextConfigToGguf(c, &md).ok());
  ASSERT_NE(md.Find("gemma3.attention.sliding_window_pattern"), nullptr);
  auto back = TextConfigFromGguf(md, 300);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->layer_types, c.layer_types);
  // No sliding window: every layer global. A u32 pattern of 3.
  GgufMetadata md2 = md;
  md2.Set("gemma3.attention.sliding_window", GgufValue::U32(0));
  EXPECT_EQ(TextConfigFromGguf(md2, 300)->layer_types,
            std::vector<LayerType>(7, LayerType::kGlobal));
  md2 = md;
  md2.Set("gemma3.attention.sliding_window_pattern", GgufValue::U32(3));
  const std::vector<LayerType> p3 = TextConfigFromGguf(md2, 300)->layer_types;
  EXPECT_EQ(p3[2], LayerType::kGlobal);
  EXPECT_EQ(p3[3], LayerType::kSliding);
  EXPECT_EQ(p3[5], LayerType::kGlobal);
  // Old rope key and type none.
  md2 = md;
  md2.Set("gemma3.rope.scaling.type", GgufValue::Str("none"));
  EXPECT_EQ(TextConfigFromGguf(md2, 300)->rope_global.linear_factor, 1.0);
  md2 = md;
  md2.Set("gemma3.rope.scaling.type", GgufValue::Str("yarn"));
  EXPECT_NE(TextConfigFromGguf(md2, 300).status().message().find("unsupported RoPE scaling yarn"),
            std::string::npos);
  md2 = GgufMetadata();
  md2.Set("general.architecture", GgufValue::Str("llama"));
  EXPECT_EQ(TextConfigFromGguf(md2, 1).status().message(), "architecture llama is not gemma3");
}

TEST(HfConfig, Errors) {
  EXPECT_EQ(Error("{"), "[config] /m/config.json: not valid JSON");
  EXPECT_EQ(Error(R"({"architectures": ["Gemma3ForCausalLM"], "num_hidden_layers": 2,
                      "intermediate_size": 8})"),
            "[config] /m/config.json: missing key hidden_size");
  EXPECT_EQ(Error(R"({"architectures": ["Gemma3ForConditionalGeneration"],
                      "text_config": {"hidden_size": 64, "intermediate_size": 8},
                      "vision_config": {}})"),
            "[config] /m/config.json: missing key text_config.num_hidden_layers");
  EXPECT_EQ(Error(R"({"architectures": ["Gemma3ForConditionalGeneration"],
                      "text_config": {"hidden_size": 64, "intermediate_size": 8,
                                      "num_hidden_layers": 1}, "vision_config": {}})"),
            "[config] /m/config.json: missing key vision_config.hidden_size");
  EXPECT_EQ(Error(R"({"architectures": ["LlamaForCausalLM"]})"),
            "[config] /m/config.json: key architectures: unsupported architecture "
            "LlamaForCausalLM (Gemma3ForCausalLM or Gemma3ForConditionalGeneration)");
  const std::string base = R"({"hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 2,
                               "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,)";
  EXPECT_EQ(Error(base + R"("vocab_size": "big"})"),
            "[config] /m/config.json: key vocab_size: expected an integer");
  EXPECT_EQ(Error(base + R"("layer_types": ["full_attention"]})"),
            "[config] /m/config.json: key layer_types: expected a list of 2 layer types");
  EXPECT_EQ(Error(base + R"("rope_scaling": {"rope_type": "yarn", "factor": 4}})"),
            "[config] /m/config.json: key rope_scaling.rope_type: unsupported RoPE type \"yarn\" "
            "(default and linear are supported)");
  EXPECT_EQ(Error(base + R"("rope_scaling": {"type": "linear"}})"),
            "[config] /m/config.json: missing key rope_scaling.factor");
  EXPECT_EQ(Error(base + R"("sliding_window_pattern": 0})"),
            "[config] /m/config.json: key sliding_window_pattern: must be >= 1");
  EXPECT_EQ(Error(R"({"hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 2,
                      "num_attention_heads": 3, "num_key_value_heads": 2})"),
            "[config] /m/config.json: num_key_value_heads 2 does not divide num_attention_heads 3");
  EXPECT_EQ(Error(base + R"("num_hidden_layers": 100000000})"),
            "[config] /m/config.json: key num_hidden_layers: 100000000 is out of range [1, 1024]");
  EXPECT_EQ(Error(base + R"("hidden_activation": "relu"})"),
            "[config] /m/config.json: key hidden_activation: unsupported activation relu");
}

TEST(HfConfig, ValidateVision) {
  Gemma3Config c = testing::TinyConfig(true);
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.vision.mm_tokens_per_image = 5;
  EXPECT_FALSE(ValidateConfig(c).ok());
  c.vision.mm_tokens_per_image = 4;
  c.vision.image_size = 30;
  EXPECT_FALSE(ValidateConfig(c).ok());
}

TEST(HfConfig, PreprocessorConfig) {
  Gemma3Config c = testing::TinyConfig(true);
  ASSERT_TRUE(ApplyHfPreprocessorConfig(R"({"image_mean": [0.1, 0.2, 0.3], "image_std": null})",
                                        "p.json", &c)
                  .ok());
  EXPECT_EQ(c.vision.image_mean[2], 0.3);
  EXPECT_EQ(c.vision.image_std[0], 0.5);
  EXPECT_FALSE(ApplyHfPreprocessorConfig(R"({"image_mean": [1]})", "p.json", &c).ok());
}

}  // namespace
}  // namespace unicorn
