#include "npu_worker/xrt/npu_probe.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#ifndef UNICORN_XRT_VERSION
#define UNICORN_XRT_VERSION ""
#endif
#ifndef UNICORN_XRT_HAS_HW_CONTEXT
#define UNICORN_XRT_HAS_HW_CONTEXT 0
#endif

namespace unicorn::npu {
namespace {

namespace fs = std::filesystem;

std::string ReadTrimmed(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return std::string(absl::StripAsciiWhitespace(s));
}

// PCI device ids of the XDNA NPUs (the amdxdna driver's table).
std::string Generation(const std::string& device_id) {
  if (device_id == "0x1502") return "npu1 (Phoenix / Hawk Point)";
  if (device_id == "0x17f0") return "npu2 (Strix / Strix Halo / Krackan)";
  return "";
}

}  // namespace

std::string NpuProbeResult::Describe() const {
  std::string s;
  if (present) {
    absl::StrAppend(&s, "NPU ", generation.empty() ? "(unknown generation)" : generation, " at ",
                    absl::StrJoin(device_nodes, ", "));
    if (!driver.empty()) absl::StrAppend(&s, " (", driver, ")");
  } else {
    s = "no NPU";
  }
  if (xrt_built) {
    absl::StrAppend(&s, "; XRT ", xrt_version, hw_context ? " with" : " without", " hw_context");
  } else {
    absl::StrAppend(&s, "; no XRT backend in this build");
  }
  if (!usable) absl::StrAppend(&s, "; not usable: ", reason);
  return s;
}

NpuProbeResult NpuProbe(const NpuProbeOptions& options) {
  NpuProbeResult r;
  std::error_code ec;
  fs::path accel = fs::path(options.dev_root) / "accel";
  for (const auto& e : fs::directory_iterator(accel, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("accel", 0) == 0) r.device_nodes.push_back(e.path().string());
  }
  std::sort(r.device_nodes.begin(), r.device_nodes.end());
  r.present = !r.device_nodes.empty();
  if (r.present) {
    fs::path sys = fs::path(options.sys_root) / "class/accel" /
                   fs::path(r.device_nodes.front()).filename() / "device";
    fs::path driver = fs::read_symlink(sys / "driver", ec);
    if (!ec) r.driver = driver.filename().string();
    std::string vendor = ReadTrimmed(sys / "vendor"), device = ReadTrimmed(sys / "device");
    if (!vendor.empty() && !device.empty()) {
      r.pci_id = absl::StrCat(vendor.substr(vendor.rfind('x') + 1), ":",
                              device.substr(device.rfind('x') + 1));
      r.generation = Generation(device);
    }
  }
#ifdef UNICORN_XRT_BUILT
  r.xrt_built = true;
#endif
  r.xrt_version = UNICORN_XRT_VERSION;
  r.hw_context = UNICORN_XRT_HAS_HW_CONTEXT != 0;

  std::string first = (accel / "accel0").string();
  if (!r.present) {
    r.reason = absl::StrCat("no NPU found (", first, " missing)");
  } else if (!r.xrt_built) {
    r.reason = "this build has no XRT backend (configure with -DUNICORN_WITH_XRT=ON)";
  } else if (!r.hw_context) {
    r.reason = absl::StrCat("XRT ", r.xrt_version,
                            " has no hw_context API, which the amdxdna NPU driver needs "
                            "(build with a newer XRT and the XDNA driver plugin)");
  } else if (!r.driver.empty() && r.driver != "amdxdna") {
    r.reason = absl::StrCat(first, " belongs to driver '", r.driver, "', not amdxdna");
  } else {
    r.usable = true;
  }
  return r;
}

}  // namespace unicorn::npu
