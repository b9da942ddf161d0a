// libFuzzer target: GGUF parsing, the config, vocabulary and vision config
// read from its metadata, and, when it parses, the whole ModelFiles path
// (tensor conversion and validation) on the same bytes as a text model and
// as an mmproj. Built and run by tools/fuzz.sh.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config_check.h"
#include "model/gguf.h"
#include "model/gguf_config.h"
#include "model/gguf_vocab.h"
#include "model/model_files.h"
#include "model/quant.h"
#include "spdlog/spdlog.h"

namespace {

volatile uint8_t g_sink;  // keeps the reads of tensor bytes

// The input as a file that MappedFile can open, without touching the disk.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("gguf_fuzz", MFD_CLOEXEC);
    if (fd_ >= 0 && size > 0 && ::write(fd_, data, size) != ssize_t(size)) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~MemFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  using namespace unicorn;
  StatusOr<GgufFile> f = ParseGguf({data, size}, "fuzz.gguf");
  if (!f.ok()) return 0;
  // Touch every tensor's bytes: they must lie inside the input.
  for (const GgufTensor& t : f->tensors) {
    for (size_t k = 0; k < t.nbytes; k += 61) g_sink = uint8_t(g_sink ^ t.data[k]);
    if (t.nbytes) g_sink = uint8_t(g_sink ^ t.data[t.nbytes - 1]);
  }
  StatusOr<Gemma3Config> c = TextConfigFromGguf(f->metadata, 512);
  if (c.ok()) {
    (void)ValidateConfig(*c);
    Gemma3Config v = *c;
    (void)VisionConfigFromGguf(f->metadata, &v);
  }
  (void)VocabFromGguf(f->metadata);
  MemFile mf(data, size);
  if (mf.ok()) {
    auto m = ModelFiles::Open(mf.path());
    if (m.ok()) {
      for (const TensorInfo& t : (*m)->tensors()) {
        if (t.numel() == 0 || t.shape.empty()) continue;
        const int64_t row = t.shape.back();
        std::vector<float> out(static_cast<size_t>(row));
        DequantizeRow(t.dtype, t.data + t.nbytes - RowBytes(t.dtype, row), out.data(), row);
      }
    }
  }
  return 0;
}
