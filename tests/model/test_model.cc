#include "tests/model/test_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/expected_tensors.h"
#include "model/gguf_vocab.h"
#include "model/quant.h"
#include "nlohmann/json.hpp"

namespace unicorn::testing {

namespace fs = std::filesystem;
using nlohmann::json;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "unicorn-test-XXXXXX").string();
  UNICORN_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  UNICORN_CHECK(out.good());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string F32Bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

std::string SafetensorsBytes(const std::vector<StTensor>& tensors) {
  json h = json::object();
  h["__metadata__"] = {{"format", "pt"}};
  size_t off = 0;
  std::string data;
  for (const StTensor& t : tensors) {
    h[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
    data += t.bytes;
  }
  std::string header = h.dump();
  while (header.size() % 8 != 0) header += ' ';
  const uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

Gemma3Config TinyConfig(bool vision) {
  Gemma3Config c;
  c.architecture = vision ? "Gemma3ForConditionalGeneration" : "Gemma3ForCausalLM";
  c.hidden_size = 64;
  c.num_layers = 7;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 32;
  c.intermediate_size = 128;
  c.vocab_size = 300;
  c.rms_norm_eps = 1e-6;
  c.query_pre_attn_scalar = 32;
  c.sliding_window = 16;
  for (int i = 0; i < c.num_layers; ++i) {
    c.layer_types.push_back((i + 1) % 6 == 0 ? LayerType::kGlobal : LayerType::kSliding);
  }
  c.rope_local = {10000.0, 1.0};
  c.rope_global = {1000000.0, 8.0};
  c.max_position_embeddings = 512;
  c.tie_word_embeddings = true;
  c.bos_token_id = 2;
  c.eos_token_id = 1;
  c.eos_token_ids = {1};
  c.pad_token_id = 0;
  c.has_vision = vision;
  if (vision) {
    c.vision.image_size = 32;
    c.vision.patch_size = 8;
    c.vision.num_channels = 3;
    c.vision.hidden_size = 32;
    c.vision.intermediate_size = 64;
    c.vision.num_layers = 2;
    c.vision.num_heads = 2;
    c.vision.layer_norm_eps = 1e-6;
    c.vision.mm_tokens_per_image = 4;
  }
  return c;
}

TinyModel MakeTinyModel(bool vision, uint32_t seed) {
  return MakeTinyModel(TinyConfig(vision), seed);
}

TinyModel MakeTinyModel(const Gemma3Config& config, uint32_t seed) {
  TinyModel m;
  m.config = config;
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&]() {  // splitmix64 -> uniform [-1, 1)
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return float(double(z >> 11) / double(1ull << 52) - 1.0);
  };
  std::vector<ExpectedTensor> all = ExpectedTextTensors(m.config);
  for (const ExpectedTensor& e : ExpectedVisionTensors(m.config)) all.push_back(e);
  for (const ExpectedTensor& e : all) {
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    const float scale = e.role == TensorRole::kNorm ? 0.5f : 0.1f;
    for (float& x : v) x = scale * next();
    m.w[e.name] = std::move(v);
  }
  return m;
}

namespace {

json TextJson(const Gemma3Config& c, HfDialect d) {
  json t = {
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"vocab_size", c.vocab_size},
      {"rms_norm_eps", c.rms_norm_eps},
      {"query_pre_attn_scalar", c.query_pre_attn_scalar},
      {"sliding_window", c.sliding_window},
      {"max_position_embeddings", c.max_position_embeddings},
      {"final_logit_softcapping", nullptr},
      {"attn_logit_softcapping", nullptr},
      {"hidden_activation", "gelu_pytorch_tanh"},
      {"model_type", "gemma3_text"},
  };
  if (d == HfDialect::kGoogle) {
    t["rope_theta"] = c.rope_global.theta;
    t["rope_local_base_freq"] = c.rope_local.theta;
    t["sliding_window_pattern"] = 6;
    t["rope_scaling"] =
        c.rope_global.linear_factor == 1.0
            ? json(nullptr)
            : json{{"rope_type", "linear"}, {"factor", c.rope_global.linear_factor}};
  } else {
    json full = {{"rope_theta", c.rope_global.theta}, {"rope_type", "default"}};
    if (c.rope_global.linear_factor != 1.0) {
      full["rope_type"] = "linear";
      full["factor"] = c.rope_global.linear_factor;
    }
    t["rope_parameters"] = {
        {"full_attention", full},
        {"sliding_attention", {{"rope_theta", c.rope_local.theta}, {"rope_type", "default"}}}};
    json types = json::array();
    for (LayerType lt : c.layer_types) {
      types.push_back(lt == LayerType::kGlobal ? "full_attention" : "sliding_attention");
    }
    t["layer_types"] = types;
  }
  return t;
}

void AddIds(const Gemma3Config& c, json* j) {
  (*j)["bos_token_id"] = c.bos_token_id;
  (*j)["pad_token_id"] = c.pad_token_id;
  if (c.eos_token_ids.size() > 1) {
    (*j)["eos_token_id"] = c.eos_token_ids;
  } else {
    (*j)["eos_token_id"] = c.eos_token_id;
  }
}

}  // namespace

std::string HfConfigJson(const Gemma3Config& c, HfDialect d) {
  json j;
  if (!c.has_vision) {
    j = TextJson(c, d);
    j["architectures"] = {"Gemma3ForCausalLM"};
    AddIds(c, &j);
    return j.dump(2);
  }
  json text = TextJson(c, d);
  j["architectures"] = {"Gemma3ForConditionalGeneration"};
  j["model_type"] = "gemma3";
  if (d == HfDialect::kGoogle) {
    AddIds(c, &j);  // Google keeps the ids at the top level
  } else {
    AddIds(c, &text);
  }
  j["text_config"] = text;
  j["vision_config"] = {
      {"hidden_size", c.vision.hidden_size},
      {"image_size", c.vision.image_size},
      {"intermediate_size", c.vision.intermediate_size},
      {"num_attention_heads", c.vision.num_heads},
      {"num_hidden_layers", c.vision.num_layers},
      {"patch_size", c.vision.patch_size},
      {"layer_norm_eps", c.vision.layer_norm_eps},
      {"model_type", "siglip_vision_model"},
      {"vision_use_head", false},
  };
  j["mm_tokens_per_image"] = c.vision.mm_tokens_per_image;
  return j.dump(2);
}

std::string HfName(const std::string& internal, HfPrefix p) {
  std::string text, vis, proj;
  switch (p) {
    case HfPrefix::kCausalLm:
      text = "model.";
      break;
    case HfPrefix::kGoogle:
      text = "language_model.model.";
      vis = "vision_tower.vision_model.";
      proj = "multi_modal_projector.";
      break;
    case HfPrefix::kTf452:
      text = "model.language_model.";
      vis = "model.vision_tower.vision_model.";
      proj = "model.multi_modal_projector.";
      break;
    case HfPrefix::kTf5:
      text = "model.language_model.";
      vis = "model.vision_tower.";
      proj = "model.multi_modal_projector.";
      break;
  }
  static const std::map<std::string, std::string> kText = {
      {"attn_norm", "input_layernorm"},
      {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"},
      {"attn_q_norm", "self_attn.q_norm"},
      {"attn_k_norm", "self_attn.k_norm"},
      {"post_attention_norm", "post_attention_layernorm"},
      {"ffn_norm", "pre_feedforward_layernorm"},
      {"post_ffw_norm", "post_feedforward_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},
      {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},
  };
  static const std::map<std::string, std::string> kVision = {
      {"ln1", "layer_norm1"},
      {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},
      {"attn_out", "self_attn.out_proj"},
      {"ln2", "layer_norm2"},
      {"ffn_up", "mlp.fc1"},
      {"ffn_down", "mlp.fc2"},
  };
  if (internal == "token_embd.weight") return text + "embed_tokens.weight";
  if (internal == "output_norm.weight") return text + "norm.weight";
  if (internal == "output.weight") return "lm_head.weight";
  if (internal == "v.patch_embd.weight") return vis + "embeddings.patch_embedding.weight";
  if (internal == "v.patch_embd.bias") return vis + "embeddings.patch_embedding.bias";
  if (internal == "v.position_embd.weight") return vis + "embeddings.position_embedding.weight";
  if (internal == "v.post_ln.weight") return vis + "post_layernorm.weight";
  if (internal == "v.post_ln.bias") return vis + "post_layernorm.bias";
  if (internal == "mm.input_projection.weight") return proj + "mm_input_projection_weight";
  if (internal == "mm.soft_emb_norm.weight") return proj + "mm_soft_emb_norm.weight";
  // blk.N.what.weight / v.blk.N.what.kind
  const bool v = internal.rfind("v.blk.", 0) == 0;
  std::string rest = internal.substr(v ? 6 : 4);
  const std::string layer = rest.substr(0, rest.find('.'));
  rest = rest.substr(layer.size() + 1);
  const std::string what = rest.substr(0, rest.find('.'));
  const std::string kind = rest.substr(what.size() + 1);
  if (v) return vis + "encoder.layers." + layer + "." + kVision.at(what) + "." + kind;
  return text + "layers." + layer + "." + kText.at(what) + "." + kind;
}

void WriteHfFolder(const TinyModel& m, const std::string& dir, HfDialect dialect, HfPrefix prefix,
                   DType dtype, int shards) {
  fs::create_directories(dir);
  WriteFile(dir + "/config.json", HfConfigJson(m.config, dialect));
  std::vector<std::vector<StTensor>> files(size_t(std::max(shards, 1)));
  std::vector<ExpectedTensor> all = ExpectedTextTensors(m.config);
  for (const ExpectedTensor& e : ExpectedVisionTensors(m.config)) all.push_back(e);
  const char* dt = dtype == DType::kBF16 ? "BF16" : dtype == DType::kF16 ? "F16" : "F32";
  size_t k = 0;
  for (const ExpectedTensor& e : all) {
    std::vector<float> v = m.w.at(e.name);
    std::vector<int64_t> shape = e.shape;
    if (e.name == "mm.input_projection.weight") {  // HF: [v_hidden, hidden]
      std::vector<float> t(v.size());
      for (int64_t r = 0; r < shape[0]; ++r)
        for (int64_t c = 0; c < shape[1]; ++c) t[c * shape[0] + r] = v[r * shape[1] + c];
      v = t;
      shape = {shape[1], shape[0]};
    }
    std::string bytes(RowBytes(dtype, int64_t(v.size())), '\0');
    QuantizeRow(dtype, v.data(), reinterpret_cast<uint8_t*>(bytes.data()), int64_t(v.size()));
    files[k++ % files.size()].push_back({HfName(e.name, prefix), dt, shape, bytes});
  }
  if (files.size() == 1) {
    WriteFile(dir + "/model.safetensors", SafetensorsBytes(files[0]));
    return;
  }
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (size_t f = 0; f < files.size(); ++f) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", f + 1, files.size());
    WriteFile(dir + "/" + name, SafetensorsBytes(files[f]));
    for (const StTensor& t : files[f]) index["weight_map"][t.name] = name;
  }
  WriteFile(dir + "/model.safetensors.index.json", index.dump(2));
}

std::vector<float> TensorToF32(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  const int64_t row = t.shape.empty() ? 1 : t.shape.back();
  if (row == 0) return out;
  const size_t row_bytes = RowBytes(t.dtype, row);
  for (int64_t r = 0; r < t.numel() / row; ++r) {
    DequantizeRow(t.dtype, t.data + size_t(r) * row_bytes, out.data() + r * row, row);
  }
  return out;
}

GgufModelOptions AllF32() {
  GgufModelOptions o;
  o.matrix_type = o.embedding_type = o.vision_matrix_type = o.projection_type = DType::kF32;
  return o;
}

void WriteGgufModel(const TinyModel& m, const std::string& text_path,
                    const std::string& mmproj_path, const GgufModelOptions& o) {
  const GgufVocab vocab = SyntheticVocab(m.config.vocab_size);
  GgufTensorFiller fill =
      FillerFromF32([&](const std::string& name) { return m.w.at(name).data(); });
  Status s = WriteTextGguf(text_path, m.config, &vocab, o, fill);
  ASSERT_TRUE(s.ok()) << s;
  if (m.config.has_vision) {
    s = WriteMmprojGguf(mmproj_path, m.config, o, fill);
    ASSERT_TRUE(s.ok()) << s;
  }
}

}  // namespace unicorn::testing
