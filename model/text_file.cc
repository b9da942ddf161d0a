#include "model/text_file.h"

#include <cerrno>
#include <fstream>
#include <sstream>

namespace unicorn {

StatusOr<std::string> ReadTextFile(const std::string& path, std::string_view subsystem) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ErrnoError(absl::StrCat("[", std::string(subsystem), "] open(", path, ")"), errno);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return ErrnoError(absl::StrCat("[", std::string(subsystem), "] read(", path, ")"), errno);
  }
  return ss.str();
}

}  // namespace unicorn
