// unicorn: the user's command-line tool.
#include <unistd.h>

#include <filesystem>

#include "tools/cli/commands.h"

namespace unicorn::cli {

int& ExitCode() {
  static int code = 0;
  return code;
}

std::string BinDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

std::string DefaultConfigPath() {
  if (std::filesystem::exists("configs/default.yaml")) return "configs/default.yaml";
  return (std::filesystem::path(BinDir()) / "../../configs/default.yaml")
      .lexically_normal()
      .string();
}

}  // namespace unicorn::cli

int main(int argc, char** argv) {
  CLI::App app{"Unicorn: Gemma 3 inference on NPU, GPU and CPU"};
  app.require_subcommand(1);
  unicorn::cli::AddDaemonCommands(app);
  unicorn::cli::AddClientCommands(app);
  unicorn::cli::AddChatCommands(app);
  unicorn::cli::AddDoctorCommands(app);
  unicorn::cli::AddLoadtestCommands(app);
  unicorn::cli::AddTokenizeCommands(app);

  unicorn::cli::AddRunCommands(app);
  unicorn::cli::AddLogitsCommands(app);
  unicorn::cli::AddBenchCommands(app);
  unicorn::cli::AddInspectCommands(app);
  unicorn::cli::AddProfileCommands(app);
  unicorn::cli::AddQuantizeCommands(app);
  unicorn::cli::AddQualityCommands(app);
  CLI11_PARSE(app, argc, argv);
  return unicorn::cli::ExitCode();
}
