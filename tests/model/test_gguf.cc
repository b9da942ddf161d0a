#include "tests/model/test_gguf.h"

#include "model/gguf_config.h"
#include "model/gguf_vocab.h"
#include "model/gguf_writer.h"
#include "model/name_map.h"

namespace unicorn::testing {

Status WriteTestGguf(const std::string& path, const Gemma3Config& config,
                     const TensorStore& store) {
  UNICORN_ASSIGN_OR_RETURN(auto w, GgufWriter::Create(path));
  UNICORN_RETURN_IF_ERROR(TextConfigToGguf(config, &w->metadata()));
  // Byte pieces and placeholders: enough for `unicorn run` to tokenize.
  VocabToGguf(SyntheticVocab(config.vocab_size), &w->metadata());
  std::vector<std::vector<uint8_t>> data;
  for (const auto& [name, t] : store.tensors()) {
    if (IsGemmaRmsNorm(name)) {  // GGUF holds 1 + w, in f32
      std::vector<float> v = TensorStore::Dequantized(t);
      for (float& x : v) x += 1.0f;
      UNICORN_RETURN_IF_ERROR(w->AddTensor(name, DType::kF32, t.shape));
      const uint8_t* p = reinterpret_cast<const uint8_t*>(v.data());
      data.emplace_back(p, p + v.size() * 4);
    } else {
      UNICORN_RETURN_IF_ERROR(w->AddTensor(name, t.dtype, t.shape));
      data.emplace_back(t.data, t.data + t.nbytes);
    }
  }
  UNICORN_RETURN_IF_ERROR(w->WriteHeader());
  for (const auto& d : data) UNICORN_RETURN_IF_ERROR(w->Write(d.data(), d.size()));
  return w->Finish();
}

}  // namespace unicorn::testing
