// `unicorn up` / `unicorn down`: run the coordinator and the workers of a
// config in the background without systemd (development, README demo).
// Each process gets <runtime_dir>/<name>.pid and <runtime_dir>/logs/<name>.log.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "common/config.h"
#include "common/daemon.h"
#include "tools/cli/client.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

namespace unicorn::cli {
namespace {

namespace fs = std::filesystem;

struct Proc {
  std::string name;  // "coordinator" or the worker's name
  std::string exe;
  std::vector<std::string> args;
};

std::vector<Proc> ProcsOf(const Config& c) {
  std::vector<Proc> procs;
  procs.push_back({"coordinator", BinDir() + "/unicorn-coordinator", {"--config", c.source_path}});
  for (const auto& w : c.workers) {
    procs.push_back({w.name,
                     BinDir() + "/unicorn-" + w.kind + "-worker",
                     {"--config", c.source_path, "--name", w.name}});
  }
  return procs;
}

std::string PidFile(const Config& c, const std::string& name) {
  return c.runtime_dir + "/" + name + ".pid";
}
std::string LogFile(const Config& c, const std::string& name) {
  return c.runtime_dir + "/logs/" + name + ".log";
}

// The pid in `file` if that process is alive and is a Unicorn daemon.
pid_t LivePid(const std::string& file) {
  std::ifstream in(file);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0;
  std::getline(cmd, argv0, '\0');
  return argv0.find("unicorn-") != std::string::npos ? pid : 0;
}

void PrintLogTail(const std::string& file, int lines) {
  std::ifstream in(file);
  std::vector<std::string> all;
  for (std::string l; std::getline(in, l);) all.push_back(l);
  size_t from = all.size() > size_t(lines) ? all.size() - lines : 0;
  for (size_t i = from; i < all.size(); ++i) std::cerr << "    " << all[i] << "\n";
}

StatusOr<pid_t> Spawn(const Proc& p, const std::string& log) {
  if (!fs::exists(p.exe)) {
    return absl::NotFoundError(absl::StrCat("[up] ", p.exe, " not found (build first)"));
  }
  pid_t pid = fork();
  if (pid < 0) return ErrnoError("[up] fork", errno);
  if (pid == 0) {
    setsid();
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int devnull = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(p.exe.c_str()));
    for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(p.exe.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int Down(const Config& c, bool quiet);

// One step per milestone: the coordinator answers, then each worker is
// connected and has loaded its shard (ModelInfo's alive / ready).
void ShowStartup(Client& client, ProgressBar* bar) {
  if (!bar->enabled()) return;
  auto info = client.ModelInfo();
  if (!info.ok()) return;  // the coordinator is still starting
  int64_t done = 1;
  std::string loading;
  for (const auto& w : info->workers()) {
    done += int(w.alive()) + int(w.ready());
    if (w.alive() && !w.ready()) loading += (loading.empty() ? "loading: " : ", ") + w.name();
  }
  bar->Set(done, loading);
}

int Up(const std::string& config_path, int timeout_s) {
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "unicorn up: " << config.status().message() << "\n";
    return 2;
  }
  // How to ask the coordinator whether it serves (over TLS if it does).
  auto endpoint = EndpointOf(*config);
  if (!endpoint.ok()) {
    std::cerr << "unicorn up: " << endpoint.status().message() << "\n";
    return 2;
  }
  for (const std::string& dir : {config->runtime_dir, config->runtime_dir + "/logs"}) {
    if (Status s = EnsurePrivateDir(dir); !s.ok()) {
      std::cerr << "unicorn up: " << s.message() << "\n";
      return 2;
    }
  }
  std::vector<Proc> procs = ProcsOf(*config);
  for (const auto& p : procs) {
    if (pid_t pid = LivePid(PidFile(*config, p.name))) {
      std::cerr << "unicorn up: " << p.name << " is already running (pid " << pid
                << "); run `unicorn down --config " << config_path << "` first\n";
      return 1;
    }
  }
  std::vector<pid_t> pids;
  for (const auto& p : procs) {
    std::string log = LogFile(*config, p.name);
    auto pid = Spawn(p, log);
    if (!pid.ok()) {
      std::cerr << "unicorn up: " << pid.status().message() << "\n";
      Down(*config, true);
      return 1;
    }
    std::ofstream(PidFile(*config, p.name)) << *pid << "\n";
    pids.push_back(*pid);
    std::cout << "started " << p.name << " (pid " << *pid << "), log " << log << "\n";
  }

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  Client client(*endpoint);
  // On a terminal: coordinator up, then each worker connected and loaded.
  const int n_workers = int(procs.size()) - 1;
  ProgressBar bar("starting", 1 + 2 * n_workers);
  while (std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < pids.size(); ++i) {
      int st = 0;
      if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
        bar.Done();
        std::cerr << "unicorn up: " << procs[i].name << " exited ("
                  << (WIFEXITED(st) ? "status " + std::to_string(WEXITSTATUS(st))
                                    : "signal " + std::to_string(WTERMSIG(st)))
                  << "); the end of its log:\n";
        PrintLogTail(LogFile(*config, procs[i].name), 15);
        Down(*config, true);
        return 1;
      }
    }
    if (client.Serving(std::chrono::milliseconds(500))) {
      bar.Set(1 + 2 * n_workers, "SERVING");
      bar.Done();
      std::cout << "unicorn is SERVING on " << config->coordinator.grpc_address << "\n";
      return 0;
    }
    ShowStartup(client, &bar);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  bar.Done();
  std::cerr << "unicorn up: not SERVING after " << timeout_s << " s; the ends of the logs:\n";
  for (const auto& p : procs) {
    std::cerr << "  " << p.name << ":\n";
    PrintLogTail(LogFile(*config, p.name), 8);
  }
  Down(*config, true);
  return 1;
}

int Down(const Config& c, bool quiet) {
  std::vector<Proc> procs = ProcsOf(c);
  std::vector<std::pair<std::string, pid_t>> live;
  for (const auto& p : procs) {
    std::string file = PidFile(c, p.name);
    if (pid_t pid = LivePid(file)) {
      kill(pid, SIGTERM);
      live.push_back({p.name, pid});
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (const auto& [name, pid] : live) {
    while (kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
      waitpid(pid, nullptr, WNOHANG);  // reap if it is our child
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (kill(pid, 0) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      if (!quiet) std::cout << "killed " << name << " (pid " << pid << ", ignored SIGTERM)\n";
    } else if (!quiet) {
      std::cout << "stopped " << name << " (pid " << pid << ")\n";
    }
  }
  for (const auto& p : procs) fs::remove(PidFile(c, p.name));
  if (live.empty() && !quiet) std::cout << "nothing was running\n";
  return 0;
}

}  // namespace

void AddDaemonCommands(CLI::App& app) {
  auto* up = app.add_subcommand("up", "start the coordinator and workers in the background");
  static std::string up_config = DefaultConfigPath();
  static int timeout_s = 120;
  up->add_option("-c,--config", up_config, "config file")->check(CLI::ExistingFile);
  up->add_option("--timeout", timeout_s, "seconds to wait for SERVING");
  up->callback([] { ExitCode() = Up(up_config, timeout_s); });

  auto* down = app.add_subcommand("down", "stop what `unicorn up` started");
  static std::string down_config = DefaultConfigPath();
  down->add_option("-c,--config", down_config, "config file")->check(CLI::ExistingFile);
  down->callback([] {
    auto config = LoadConfig(down_config);
    if (!config.ok()) {
      std::cerr << "unicorn down: " << config.status().message() << "\n";
      ExitCode() = 2;
      return;
    }
    ExitCode() = Down(*config, false);
  });
}

}  // namespace unicorn::cli
