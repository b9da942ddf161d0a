// The `unicorn` command-line tool: each file registers its subcommands here.
// A subcommand's callback stores its exit code in ExitCode().
#pragma once

#include <string>

#include "CLI/CLI.hpp"

namespace unicorn::cli {

int& ExitCode();

// The folder holding this executable (build/bin/), to find its siblings.
std::string BinDir();
// configs/default.yaml: from the working folder if present, else next to the
// build (build/bin/../../configs/default.yaml).
std::string DefaultConfigPath();

void AddDaemonCommands(CLI::App& app);  // up, down
void AddClientCommands(CLI::App& app);  // health, generate, models, stats
void AddChatCommands(CLI::App& app);    // chat (interactive)
void AddDoctorCommands(CLI::App& app);  // doctor (hardware and config check)
void AddLoadtestCommands(CLI::App& app);  // loadtest (HTTP load generator)
void AddTokenizeCommands(CLI::App& app);  // tokenize, detokenize, template

void AddRunCommands(CLI::App& app);      // run (in-process generation)
void AddLogitsCommands(CLI::App& app);   // logits (.npy of a token sequence)
void AddBenchCommands(CLI::App& app);    // bench (prefill / decode speed)
void AddInspectCommands(CLI::App& app);  // inspect
void AddProfileCommands(CLI::App& app);  // profile (traces and their summary)
void AddQuantizeCommands(CLI::App& app);  // quantize
void AddQualityCommands(CLI::App& app);   // quality

}  // namespace unicorn::cli
