// Is there an AMD NPU here, and can this build drive it? A read-only look at
// /dev/accel and sysfs plus what the configure step learned about XRT; it
// calls no XRT function, so `unicorn doctor` and the NPU worker's start-up
// can run it anywhere, cheaply.
#pragma once

#include <string>
#include <vector>

namespace unicorn::npu {

struct NpuProbeOptions {
  std::string dev_root = "/dev";  // where accel/accel* are looked for (tests point it elsewhere)
  std::string sys_root = "/sys";  // where class/accel/accel*/device is read
};

struct NpuProbeResult {
  bool present = false;                   // an accel node exists
  std::vector<std::string> device_nodes;  // "/dev/accel/accel0", ...
  std::string driver;                     // "amdxdna" (sysfs), "" if unknown
  std::string pci_id;                     // "1022:1502", "" if unknown
  std::string generation;                 // "npu1 (Phoenix / Hawk Point)", "npu2 (Strix...)", ""
  bool xrt_built = false;                 // the XRT backend is compiled in
  std::string xrt_version;                // XRT found at configure time, "" without
  bool hw_context = false;                // that XRT has xrt::hw_context (amdxdna needs it)
  bool usable = false;                    // present && xrt_built && hw_context
  // Why it is not usable, in words fit for a log line; "" when usable, e.g.
  // "no NPU found (/dev/accel/accel0 missing)".
  std::string reason;

  // One line: "NPU npu1 (Phoenix / Hawk Point) at /dev/accel/accel0 (amdxdna);
  // XRT 2.13.0 without hw_context" and the like.
  std::string Describe() const;
};

NpuProbeResult NpuProbe(const NpuProbeOptions& options = {});

}  // namespace unicorn::npu
