// Logging: spdlog behind a tiny facade so that call sites stay uniform.
// Every process logs "[time] [process] [level] message" to stderr; systemd's
// journal picks it up. Use the subsystem prefix in messages: "[shm] ...".
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

// Debian's absl::string_view is its own type (not std::string_view): teach fmt
// to print it, and absl::Status too, so log lines can take them directly.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  auto format(absl::string_view s, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(s.data(), s.size()), ctx);
  }
};
template <>
struct fmt::formatter<absl::Status> : fmt::formatter<std::string_view> {
  auto format(const absl::Status& s, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(s.ToString(), ctx);
  }
};

namespace unicorn {

// Names this process in every log line and sets the level from
// UNICORN_LOG_LEVEL (trace|debug|info|warn|error), default info.
void InitLogging(std::string_view process_name);

}  // namespace unicorn

#define LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
