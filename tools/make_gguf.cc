// unicorn-make-gguf: writes a random-weight Gemma 3 GGUF with the exact
// shapes and hyper-parameters of a published size, for benchmarks (ours and
// llama.cpp's llama-bench) without downloading real weights.
//
//   unicorn-make-gguf --shape gemma3-4b --out 4b.gguf [--seed N]
//                     [--tokenizer DIR] [--mmproj-out mmproj.gguf]
//
// Matrices are Q4_0, the token embedding Q8_0, norms F32 (like Google's QAT
// Q4_0 release); the mmproj has F16 SigLIP matrices and F32 vectors. With
// --tokenizer (a folder with Gemma 3's tokenizer.json and
// tokenizer_config.json) the file carries the real vocabulary, so llama.cpp
// tokenizes text with it; without, a stand-in vocabulary. Data are generated
// block by block from a counter-based generator and streamed to disk.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "CLI/CLI.hpp"
#include "model/gguf_model_writer.h"
#include "model/gguf_vocab.h"
#include "model/model_shapes.h"
#include "model/quant.h"

namespace unicorn {
namespace {

// splitmix64: fast, and seeded per tensor and row so the output does not
// depend on how rows are chunked.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float Uniform() { return float(Next() >> 40) / float(1 << 24); }  // [0, 1)
};

uint64_t Hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h;
}

// Random weights of a realistic size: |w| <~ 0.06 for matrices; Gemma norms
// stored as 1 + w with |w| < 0.1; LayerNorm weights near 1.
class RandomFiller {
 public:
  explicit RandomFiller(uint64_t seed) : seed_(seed) {
    for (int k = 0; k < 256; ++k) f16_[k] = F32ToF16(0.05f * (float(k) - 127.5f) / 127.5f);
  }

  Status operator()(const GgufTensorPlan& t, int64_t row_begin, int64_t n_rows,
                    uint8_t* out) const {
    const int64_t n = t.row_elems();
    const size_t row_bytes = RowBytes(t.type, n);
    for (int64_t r = row_begin; r < row_begin + n_rows; ++r) {
      Rng rng{seed_ ^ Hash(t.name) ^ (uint64_t(r) * 0xD1B54A32D192ED03ull)};
      FillRow(t, n, rng, out + size_t(r - row_begin) * row_bytes);
    }
    return absl::OkStatus();
  }

 private:
  void FillRow(const GgufTensorPlan& t, int64_t n, Rng& rng, uint8_t* out) const {
    switch (t.type) {
      case DType::kQ2_K:
      case DType::kQ3_K:
      case DType::kQ4_K:
      case DType::kQ5_K:
      case DType::kQ6_K:
      case DType::kNF4: {  // random weights in [-0.05, 0.05), quantized
        std::vector<float> v(static_cast<size_t>(n));
        for (float& x : v) x = 0.05f * (2 * rng.Uniform() - 1);
        QuantizeRow(t.type, v.data(), out, n);
        return;
      }
      case DType::kQ4_0:
        for (int64_t b = 0; b < n / 32; ++b) {
          BlockQ4_0 blk;
          blk.d = F32ToF16(0.002f + 0.006f * rng.Uniform());
          const uint64_t a = rng.Next(), c = rng.Next();
          std::memcpy(blk.qs, &a, 8);
          std::memcpy(blk.qs + 8, &c, 8);
          std::memcpy(out + b * sizeof(blk), &blk, sizeof(blk));
        }
        return;
      case DType::kQ8_0:
        for (int64_t b = 0; b < n / 32; ++b) {
          BlockQ8_0 blk;
          blk.d = F32ToF16((0.02f + 0.04f * rng.Uniform()) / 127);
          for (int k = 0; k < 32; k += 8) {
            const uint64_t x = rng.Next();
            std::memcpy(blk.qs + k, &x, 8);
          }
          std::memcpy(out + b * sizeof(blk), &blk, sizeof(blk));
        }
        return;
      case DType::kF16:
      case DType::kBF16:
        for (int64_t k = 0; k < n; k += 8) {
          const uint64_t x = rng.Next();
          for (int64_t j = 0; j < 8 && k + j < n; ++j) {
            uint16_t h = f16_[(x >> (8 * j)) & 0xff];
            if (t.type == DType::kBF16) h = F32ToBF16(F16ToF32(h));
            std::memcpy(out + 2 * (k + j), &h, 2);
          }
        }
        return;
      case DType::kF32: {
        const bool around_one =
            t.role == TensorRole::kNorm ||
            (t.role == TensorRole::kVector && t.name.find("ln") != std::string::npos &&
             t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".weight") == 0);
        for (int64_t k = 0; k < n; ++k) {
          const float u = 2 * rng.Uniform() - 1;
          const float v = around_one ? 1.0f + 0.1f * u : 0.05f * u;
          std::memcpy(out + 4 * k, &v, 4);
        }
        return;
      }
    }
  }

  uint64_t seed_;
  uint16_t f16_[256];
};

int Run(const std::string& shape, const std::string& out, const std::string& mmproj_out,
        const std::string& tokenizer, uint64_t seed) {
  std::optional<Gemma3Config> c = Gemma3Shape(shape);
  if (!c) {
    std::fprintf(stderr, "unicorn-make-gguf: unknown shape %s\n", shape.c_str());
    return 2;
  }
  if (!mmproj_out.empty() && !c->has_vision) {
    std::fprintf(stderr, "unicorn-make-gguf: %s has no vision tower\n", shape.c_str());
    return 2;
  }
  GgufVocab vocab;
  if (!tokenizer.empty()) {
    c->vocab_size = 262144;  // Gemma 3's tokenizer
    StatusOr<GgufVocab> v = VocabFromHfTokenizer(tokenizer, c->vocab_size);
    if (!v.ok()) {
      std::fprintf(stderr, "unicorn-make-gguf: %s\n", v.status().ToString().c_str());
      return 1;
    }
    vocab = std::move(*v);
  } else {
    vocab = SyntheticVocab(c->vocab_size);
  }
  GgufModelOptions o;
  o.name = "random " + shape;
  const RandomFiller filler(seed);
  GgufTensorFiller fill = [&filler](const GgufTensorPlan& t, int64_t r, int64_t n, uint8_t* p) {
    return filler(t, r, n, p);
  };
  const auto t0 = std::chrono::steady_clock::now();
  Status s = WriteTextGguf(out, *c, &vocab, o, fill);
  if (s.ok() && !mmproj_out.empty()) s = WriteMmprojGguf(mmproj_out, *c, o, fill);
  if (!s.ok()) {
    std::fprintf(stderr, "unicorn-make-gguf: %s\n", s.ToString().c_str());
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s%s%s (%s) in %.1f s\n", out.c_str(), mmproj_out.empty() ? "" : " and ",
              mmproj_out.c_str(), shape.c_str(), secs);
  return 0;
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  CLI::App app{"Writes a random-weight Gemma 3 GGUF with exact real shapes"};
  std::string shape, out, mmproj_out, tokenizer;
  uint64_t seed = 1;
  std::vector<std::string> names;
  for (std::string_view n : unicorn::Gemma3ShapeNames()) names.emplace_back(n);
  app.add_option("--shape", shape, "model size")->required()->check(CLI::IsMember(names));
  app.add_option("--out", out, "output GGUF")->required();
  app.add_option("--mmproj-out", mmproj_out, "also write a random vision mmproj GGUF");
  app.add_option("--tokenizer", tokenizer,
                 "folder with Gemma 3's tokenizer.json and tokenizer_config.json")
      ->check(CLI::ExistingDirectory);
  app.add_option("--seed", seed, "random seed");
  CLI11_PARSE(app, argc, argv);
  return unicorn::Run(shape, out, mmproj_out, tokenizer, seed);
}
