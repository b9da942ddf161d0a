#include "tools/cli/progress.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace unicorn::cli {

std::string RenderProgress(const std::string& label, int64_t done, int64_t total,
                           const std::string& what, int width) {
  const double frac = total > 0 ? double(std::clamp<int64_t>(done, 0, total)) / double(total) : 1;
  const int fill = int(frac * width);
  return absl::StrFormat("%s [%s%s] %3d%% %s", label, std::string(size_t(fill), '#'),
                         std::string(size_t(width - fill), '.'), int(frac * 100), what);
}

ProgressBar::ProgressBar(std::string label, int64_t total)
    : ProgressBar(std::move(label), total, stderr, ::isatty(STDERR_FILENO) != 0) {}

ProgressBar::ProgressBar(std::string label, int64_t total, std::FILE* out, bool enabled)
    : label_(std::move(label)), total_(total), out_(out), enabled_(enabled) {}

void ProgressBar::Set(int64_t done, const std::string& what) {
  done_ = done;
  if (!enabled_ || finished_) return;
  // Pad over whatever a longer previous line left behind.
  std::fprintf(out_, "\r%-78.78s", RenderProgress(label_, done, total_, what).c_str());
  std::fflush(out_);
}

void ProgressBar::Done() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  std::fprintf(out_, "\n");
  std::fflush(out_);
}

}  // namespace unicorn::cli
