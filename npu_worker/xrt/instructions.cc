#include "npu_worker/xrt/instructions.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace unicorn::npu {
namespace {

Status Bad(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("[npu] ", path, ": ", what));
}

}  // namespace

StatusOr<std::vector<uint32_t>> LoadInstructions(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("[npu] ", path, ": cannot open instruction file"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<uint32_t> words;
  if (absl::EndsWith(path, ".txt")) {
    size_t line_no = 0, pos = 0;
    while (pos < bytes.size()) {
      size_t end = bytes.find('\n', pos);
      if (end == std::string::npos) end = bytes.size();
      std::string line(absl::StripAsciiWhitespace(absl::string_view(bytes).substr(pos, end - pos)));
      pos = end + 1;
      ++line_no;
      if (line.empty() || line[0] == '#') continue;
      if (absl::StartsWithIgnoreCase(line, "0x")) line = line.substr(2);
      bool hex = !line.empty() && line.size() <= 8;
      for (char c : line) hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(c));
      if (!hex) {
        return Bad(path, absl::StrCat("line ", line_no, ": '", line.substr(0, 40),
                                      "' is not a 32-bit hex word"));
      }
      words.push_back(static_cast<uint32_t>(std::stoul(line, nullptr, 16)));
    }
  } else {
    if (bytes.size() % 4 != 0) {
      return Bad(path, absl::StrCat(bytes.size(), " bytes is not a whole number of 32-bit words"));
    }
    words.resize(bytes.size() / 4);
    if (!bytes.empty()) std::memcpy(words.data(), bytes.data(), bytes.size());
  }
  if (words.empty()) return Bad(path, "empty instruction sequence");
  return words;
}

}  // namespace unicorn::npu
