#include "common/log.h"

#include <cstdlib>
#include <string>

#include "spdlog/sinks/stdout_color_sinks.h"

namespace unicorn {

void InitLogging(std::string_view process_name) {
  auto logger = spdlog::stderr_color_mt(std::string(process_name));
  logger->set_pattern("[%H:%M:%S.%e] [%n] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  const char* level = std::getenv("UNICORN_LOG_LEVEL");
  spdlog::set_level(level ? spdlog::level::from_str(level) : spdlog::level::info);
}

}  // namespace unicorn
