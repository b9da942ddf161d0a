// A one-line progress bar on stderr for long CLI work (model load,
// quantization, load tests). It draws only when stderr is a terminal, so
// scripted use and logs see nothing of it; the caller need not check.
//
//   ProgressBar bar("loading", n_layers);
//   for (...) bar.Set(i + 1, "layer 3");
//   bar.Done();
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace unicorn::cli {

// "label [##########....................]  33% what" (width '#'/'.' cells).
// `done` is clamped to [0, total]; total <= 0 reads as complete.
std::string RenderProgress(const std::string& label, int64_t done, int64_t total,
                           const std::string& what, int width = 30);

class ProgressBar {
 public:
  // Draws on `out` if `enabled`; by default on stderr when it is a TTY.
  ProgressBar(std::string label, int64_t total);
  ProgressBar(std::string label, int64_t total, std::FILE* out, bool enabled);
  ~ProgressBar() { Done(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void Set(int64_t done, const std::string& what = "");
  void Add(int64_t n, const std::string& what = "") { Set(done_ + n, what); }
  // Ends the line (once); later calls draw nothing.
  void Done();
  int64_t done() const { return done_; }
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  int64_t total_, done_ = 0;
  std::FILE* out_;
  bool enabled_, finished_ = false;
};

}  // namespace unicorn::cli
