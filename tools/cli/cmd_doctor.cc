// `unicorn doctor`: finds the hardware, says what Unicorn will use, and
// whether the config's placement plan fits: Vulkan devices (memory, the
// extensions Unicorn cares about), the NPU (/dev/accel, XRT), dma-buf
// (/dev/dma_heap/system, /dev/udmabuf), CPU SIMD level and memory. Ends with
// a verdict and advice. Exit code 0 when the config can run, 1 otherwise.
#include <dlfcn.h>
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "coordinator/plan.h"
#include "gpu_worker/describe.h"
#include "model/model_files.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

// "3.2 GiB", or "27.4 MiB" below a GiB.
std::string GiB(uint64_t b) {
  if (b < (1ull << 30)) return absl::StrFormat("%.1f MiB", double(b) / (1ull << 20));
  return absl::StrFormat("%.1f GiB", double(b) / (1ull << 30));
}

// MemTotal / MemAvailable of /proc/meminfo, in bytes.
std::map<std::string, uint64_t> MemInfo() {
  std::map<std::string, uint64_t> m;
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t kb;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (!key.empty() && key.back() == ':') key.pop_back();
    m[key] = kb * 1024;
  }
  return m;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "model name")) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// The best SIMD level the CPU kernels can use, and the flags behind it.
std::string SimdLevel() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  std::string level = __builtin_cpu_supports("avx512f")  ? "AVX-512"
                      : __builtin_cpu_supports("avx2")   ? "AVX2"
                      : __builtin_cpu_supports("sse4.2") ? "SSE4.2"
                                                         : "SSE2";
  std::vector<std::string> extra;
  if (__builtin_cpu_supports("avx512bw")) extra.push_back("AVX512BW");
  if (__builtin_cpu_supports("avx512vnni")) extra.push_back("AVX512-VNNI");
  if (__builtin_cpu_supports("avxvnni")) extra.push_back("AVX-VNNI");
  if (__builtin_cpu_supports("avx512bf16")) extra.push_back("AVX512-BF16");
  if (__builtin_cpu_supports("fma")) extra.push_back("FMA");
  if (__builtin_cpu_supports("f16c")) extra.push_back("F16C");
  return extra.empty() ? level : absl::StrCat(level, " (+", absl::StrJoin(extra, ", "), ")");
#elif defined(__aarch64__)
  return "NEON";
#else
  return "scalar";
#endif
}

std::vector<std::string> Glob(const std::string& pattern) {
  glob_t g{};
  std::vector<std::string> out;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

std::string Access(const std::string& path) {
  if (!std::filesystem::exists(path)) return "absent";
  return access(path.c_str(), R_OK | W_OK) == 0 ? "present, usable"
                                                : "present, NOT accessible to this user";
}

bool XrtRuntime(std::string* where) {
  for (const char* lib : {"libxrt_coreutil.so.2", "libxrt_coreutil.so"}) {
    if (void* h = dlopen(lib, RTLD_LAZY | RTLD_LOCAL)) {
      dlclose(h);
      *where = lib;
      return true;
    }
  }
  if (std::filesystem::exists("/opt/xilinx/xrt")) {
    *where = "/opt/xilinx/xrt";
    return true;
  }
  return false;
}

// Weight bytes each worker holds under `plan` (tied embedding counted on the
// embedding and LM-head workers when they differ).
std::map<std::string, uint64_t> WeightsPerWorker(const ModelFiles& files,
                                                 const ResolvedPlan& plan) {
  std::map<std::string, uint64_t> bytes;
  for (const TensorInfo& t : files.tensors()) {
    const std::string& n = t.name;
    if (absl::StartsWith(n, "v.") || absl::StartsWith(n, "mm.")) {
      if (!plan.vision.empty()) bytes[plan.vision] += t.nbytes;
    } else if (absl::StartsWith(n, "blk.")) {
      int layer = std::atoi(n.c_str() + 4);
      if (layer < 0 || layer >= plan.num_layers) continue;
      bool ffn = absl::StrContains(n, ".ffn_") || absl::StrContains(n, ".post_ffw_norm");
      bytes[ffn ? plan.ffn[size_t(layer)] : plan.attention[size_t(layer)]] += t.nbytes;
    } else if (n == "token_embd.weight") {
      bytes[plan.embedding] += t.nbytes;
      if (plan.lm_head != plan.embedding && !files.Find("output.weight")) {
        bytes[plan.lm_head] += t.nbytes;
      }
    } else {
      bytes[plan.lm_head] += t.nbytes;
    }
  }
  return bytes;
}

int Doctor(const std::string& config_path) {
  std::vector<std::string> problems, advice;
  std::cout << "== CPU\n";
  auto mem = MemInfo();
  uint64_t mem_avail = mem.count("MemAvailable") ? mem["MemAvailable"] : mem["MemTotal"];
  std::cout << "  " << CpuModel() << ", " << std::thread::hardware_concurrency() << " threads\n"
            << "  SIMD: " << SimdLevel() << "\n"
            << "  memory: " << GiB(mem["MemTotal"]) << " total, " << GiB(mem_avail)
            << " available\n";

  std::cout << "== Vulkan\n";
  auto devices = vk::DescribeDevices();
  if (!devices.ok()) {
    std::cout << "  no Vulkan: " << devices.status().message() << "\n";
  } else if (devices->empty()) {
    std::cout << "  the Vulkan loader found no device\n";
  } else {
    for (const vk::DeviceReport& d : *devices) {
      bool lavapipe = absl::StrContains(d.name, "llvmpipe");
      std::cout << absl::StrFormat("  [%d] %s (%s%s), Vulkan %s, driver %s\n", d.index, d.name,
                                   d.type, lavapipe ? ", lavapipe: software on the CPU" : "",
                                   d.api_version, d.driver);
      std::string sg = absl::StrCat(d.subgroup_size);
      if (d.max_subgroup_size > 0) {
        sg = absl::StrCat(d.subgroup_size, " (", d.min_subgroup_size, "..", d.max_subgroup_size,
                          ")");
      }
      std::cout << absl::StrFormat(
          "      memory %s device-local; subgroup %s%s; 16-bit storage %s, float16 %s, int8 %s\n",
          GiB(d.device_local_bytes), sg, d.subgroup_arithmetic ? " arithmetic" : "",
          d.storage_16bit ? "yes" : "NO", d.float16 ? "yes" : "no", d.int8 ? "yes" : "no");
      std::cout << absl::StrFormat("      external_memory_host %s, external_memory_dma_buf %s\n",
                                   d.external_memory_host ? "yes" : "no",
                                   d.external_memory_dma_buf ? "yes" : "no");
      std::cout << "      " << (d.usable ? "usable by the GPU worker" : "NOT usable: " + d.problem)
                << "\n";
    }
  }

  std::cout << "== NPU\n";
  auto accel = Glob("/dev/accel/accel*");
  std::string xrt_where;
  bool xrt = XrtRuntime(&xrt_where);
  bool xdna = std::filesystem::exists("/sys/module/amdxdna");
  if (accel.empty()) {
    std::cout << "  no NPU: /dev/accel/accel* absent\n";
  } else {
    for (const auto& a : accel) std::cout << "  " << a << ": " << Access(a) << "\n";
  }
  std::cout << "  amdxdna driver: " << (xdna ? "loaded" : "not loaded")
            << "; XRT runtime: " << (xrt ? "found (" + xrt_where + ")" : "not found") << "\n";
  bool npu = !accel.empty() && xrt;
  bool npu_planned = false;  // the config plans work on an NPU worker

  std::cout << "== dma-buf\n";
  std::cout << "  /dev/dma_heap/system: " << Access("/dev/dma_heap/system") << "\n"
            << "  /dev/udmabuf: " << Access("/dev/udmabuf") << "\n";
  bool dmabuf =
      access("/dev/dma_heap/system", R_OK | W_OK) == 0 || access("/dev/udmabuf", R_OK | W_OK) == 0;
  if (!dmabuf) {
    advice.push_back(
        "no usable dma-buf source: workers share activations through memfd shared memory "
        "(fine; dma-buf would let an NPU and GPU read them without copies)");
  }

  std::cout << "== Config " << config_path << "\n";
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cout << "  " << config.status().message() << "\n";
    problems.push_back("the config does not load");
  } else {
    auto files = ModelFiles::Open(config->model, config->mmproj);
    if (!files.ok()) {
      std::cout << "  model: " << files.status().message() << "\n";
      problems.push_back("the model cannot be opened");
    } else {
      const Gemma3Config& m = (*files)->config();
      auto plan = ResolvePlan(*config, m.num_layers);
      if (!plan.ok()) {
        std::cout << "  plan: " << plan.status().message() << "\n";
        problems.push_back("the placement plan does not resolve");
      } else {
        std::cout << "  model " << config->model << ": " << m.num_layers << " layers, hidden "
                  << m.hidden_size << "\n  plan: " << plan->Summary() << "\n";
        auto bytes = WeightsPerWorker(**files, *plan);
        uint64_t cpu_bytes = 0;
        for (const std::string& name : plan->Workers()) {
          const WorkerConfig* w = config->FindWorker(name);
          if (w == nullptr) continue;
          std::string runs_on;
          if (w->kind == "npu") npu_planned = true;
          if (w->kind == "npu") {
            if (w->backend == "xrt" && npu) {
              runs_on = "the NPU (XRT)";
            } else if (w->backend == "xrt" && !w->allow_cpu_fallback) {
              runs_on = "nothing: no NPU and allow_cpu_fallback is false";
              problems.push_back(absl::StrCat("worker ", name,
                                              " needs an NPU; set allow_cpu_fallback: true or "
                                              "backend: cpu"));
            } else {
              runs_on = "the CPU backend (no NPU)";
              cpu_bytes += bytes[name];
            }
          } else if (w->backend == "vulkan") {
            const vk::DeviceReport* pick = nullptr;
            if (devices.ok()) {
              // Instance::Select's rule: first discrete, else integrated, else any.
              for (const char* type : {"discrete", "integrated", ""}) {
                for (const auto& d : *devices) {
                  bool match = w->device.empty() ? (type[0] == 0 || d.type == type)
                                                 : (absl::StrContains(d.name, w->device) ||
                                                    std::to_string(d.index) == w->device);
                  if (match && d.usable && pick == nullptr) pick = &d;
                }
              }
            }
            if (pick == nullptr) {
              runs_on = "nothing: no usable Vulkan device";
              problems.push_back(absl::StrCat(
                  "worker ", name,
                  " needs Vulkan: install mesa-vulkan-drivers (lavapipe) or set backend: cpu"));
            } else {
              runs_on = absl::StrCat("Vulkan [", pick->index, "] ", pick->name);
              if (bytes[name] > pick->device_local_bytes) {
                problems.push_back(absl::StrCat("worker ", name, "'s weights (", GiB(bytes[name]),
                                                ") exceed ", pick->name, "'s memory (",
                                                GiB(pick->device_local_bytes), ")"));
              }
              if (pick->type == "cpu") cpu_bytes += bytes[name];
            }
          } else {
            runs_on = "the CPU backend";
            cpu_bytes += bytes[name];
          }
          std::cout << absl::StrFormat("  worker %-6s %-4s %-7s %10s of weights -> %s\n", name,
                                       w->kind, w->backend, GiB(bytes[name]), runs_on);
        }
        if (cpu_bytes > mem_avail) {
          problems.push_back(absl::StrCat("weights in host memory (", GiB(cpu_bytes),
                                          ") exceed the available memory (", GiB(mem_avail), ")"));
        } else {
          std::cout << "  host memory: " << GiB(cpu_bytes) << " of weights, " << GiB(mem_avail)
                    << " available: fits\n";
        }
      }
    }
  }
  if (!npu && npu_planned) {
    advice.push_back(
        "no NPU: attention planned on the npu worker runs on its CPU backend "
        "(allow_cpu_fallback), correct but slower");
  }
  if (devices.ok() && !devices->empty() &&
      std::all_of(devices->begin(), devices->end(),
                  [](const vk::DeviceReport& d) { return d.type == "cpu"; })) {
    advice.push_back(
        "only a software Vulkan device (lavapipe): fine for the demo model and tests; for real "
        "models use a GPU driver, or configs/gpu-only.yaml with backend: cpu");
  }

  std::cout << "== Verdict\n";
  if (problems.empty()) {
    std::cout << "  OK: this machine can run " << config_path << "\n";
  } else {
    std::cout << "  PROBLEMS: " << config_path << " will not run as configured\n";
    for (const auto& p : problems) std::cout << "  - " << p << "\n";
  }
  for (const auto& a : advice) std::cout << "  advice: " << a << "\n";
  return problems.empty() ? 0 : 1;
}

}  // namespace

void AddDoctorCommands(CLI::App& app) {
  static std::string config;
  auto* doctor = app.add_subcommand(
      "doctor", "find the hardware, say what Unicorn will use and whether the config fits");
  doctor->add_option("-c,--config", config, "config file (default: configs/default.yaml)");
  doctor->callback([] { ExitCode() = Doctor(config.empty() ? DefaultConfigPath() : config); });
}

}  // namespace unicorn::cli
