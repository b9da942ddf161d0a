#include "model/model_shapes.h"

namespace unicorn {
namespace {

struct Shape {
  std::string_view name;
  int hidden, layers, heads, kv_heads, head_dim, ffn, sliding, max_pos;
  double qpas, rope_factor;
  bool vision;
};

// From google/gemma-3-{1b,4b,12b,27b}-it config.json.
constexpr Shape kShapes[] = {
    {"gemma3-1b", 1152, 26, 4, 1, 256, 6912, 512, 32768, 256, 1.0, false},
    {"gemma3-4b", 2560, 34, 8, 4, 256, 10240, 1024, 131072, 256, 8.0, true},
    {"gemma3-12b", 3840, 48, 16, 8, 256, 15360, 1024, 131072, 256, 8.0, true},
    {"gemma3-27b", 5376, 62, 32, 16, 128, 21504, 1024, 131072, 168, 8.0, true},
    {"tiny", 128, 6, 4, 2, 32, 512, 64, 2048, 32, 8.0, true},
};

}  // namespace

std::vector<std::string_view> Gemma3ShapeNames() {
  std::vector<std::string_view> v;
  for (const Shape& s : kShapes) v.push_back(s.name);
  return v;
}

std::optional<Gemma3Config> Gemma3Shape(std::string_view name) {
  for (const Shape& s : kShapes) {
    if (s.name != name) continue;
    Gemma3Config c;
    c.architecture = s.vision ? "Gemma3ForConditionalGeneration" : "Gemma3ForCausalLM";
    c.hidden_size = s.hidden;
    c.num_layers = s.layers;
    c.num_heads = s.heads;
    c.num_kv_heads = s.kv_heads;
    c.head_dim = s.head_dim;
    c.intermediate_size = s.ffn;
    c.vocab_size = 262144;
    c.rms_norm_eps = 1e-6;
    c.query_pre_attn_scalar = s.qpas;
    c.sliding_window = s.sliding;
    for (int i = 0; i < s.layers; ++i) {
      c.layer_types.push_back((i + 1) % 6 == 0 ? LayerType::kGlobal : LayerType::kSliding);
    }
    c.rope_local = {10000.0, 1.0};
    c.rope_global = {1000000.0, s.rope_factor};
    c.max_position_embeddings = s.max_pos;
    c.tie_word_embeddings = true;
    c.bos_token_id = 2;
    c.eos_token_id = 1;
    c.eos_token_ids = {1, 106};
    c.pad_token_id = 0;
    c.has_vision = s.vision;
    if (s.name == "tiny") {
      c.vocab_size = 512;
      c.vision.image_size = 64;
      c.vision.patch_size = 8;
      c.vision.hidden_size = 64;
      c.vision.intermediate_size = 128;
      c.vision.num_layers = 2;
      c.vision.num_heads = 2;
      c.vision.mm_tokens_per_image = 16;
    }
    return c;
  }
  return std::nullopt;
}

}  // namespace unicorn
