// Hardware tests (label npu): every NPU op against its CPU twin on a real
// AMD NPU. The NPU worker's only NPU op is GEMM (NpuOps::NpuMatMul), once per
// kernel of the config that npu_worker/kernels/build.sh writes
// ($UNICORN_NPU_CONFIG, default build/npu_kernels/1b-npu1-bf16/unicorn-npu.yaml).
// Skips with a message where /dev/accel/accel0 is missing; fails, saying why,
// where an NPU exists but this build or the kernels cannot drive it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "common/config.h"
#include "npu_worker/cpu/cpu_ops.h"
#include "npu_worker/xrt/npu_ops.h"
#include "npu_worker/xrt/npu_probe.h"

namespace unicorn::npu {
namespace {

std::string ConfigPath() {
  const char* env = std::getenv("UNICORN_NPU_CONFIG");
  return env && *env ? env : UNICORN_BINARY_DIR "/npu_kernels/1b-npu1-bf16/unicorn-npu.yaml";
}

TEST(NpuHardware, EveryKernelMatchesItsCpuTwin) {
  if (!std::filesystem::exists("/dev/accel/accel0")) {
    GTEST_SKIP() << "no NPU here (/dev/accel/accel0 missing): NPU hardware tests skipped";
  }
  NpuProbeResult probe = NpuProbe();
  ASSERT_TRUE(probe.usable) << probe.Describe();
  auto config = LoadConfig(ConfigPath());
  ASSERT_TRUE(config.ok()) << config.status()
                           << " (build the kernels first: npu_worker/kernels/build.sh)";
  const WorkerConfig* w = config->FindWorker("npu");
  ASSERT_NE(w, nullptr);
  ASSERT_FALSE(w->kernels.empty()) << ConfigPath() << ": no kernels";
  auto device = OpenXrtDevice(0);
  ASSERT_TRUE(device.ok()) << device.status();

  for (const NpuKernelConfig& k : w->kernels) {
    SCOPED_TRACE(k.name);
    GemmSpec s{k.name, k.xclbin, k.insts, k.kernel, *ParseGemmDType(k.dtype), k.m, k.k, k.n};
    auto ops = NpuOps::Create(**device, {s}, cpu::CpuOptions{});
    ASSERT_TRUE(ops.ok()) << ops.status();
    cpu::CpuOps cpu;
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.05f);
    std::vector<float> wd(size_t(k.n) * k.k), x(size_t(k.m + 5) * k.k);
    for (auto& v : wd) v = d(rng);
    for (auto& v : x) v = d(rng) * 20;
    TensorInfo t{"w",           DType::kF32,
                 {k.n, k.k},    reinterpret_cast<const uint8_t*>(wd.data()),
                 wd.size() * 4, ""};
    const int rows = k.m + 5;  // two runs, the second padded
    std::vector<float> got(size_t(rows) * k.n), want(got.size());
    for (int pass = 0; pass < 2; ++pass) {
      Ops& o = pass == 0 ? static_cast<Ops&>(**ops) : static_cast<Ops&>(cpu);
      auto wt = o.LoadWeight(t);
      ASSERT_TRUE(wt.ok()) << wt.status();
      auto xb = o.Alloc(x.size()), yb = o.Alloc(got.size());
      o.Write(*xb, 0, x.data(), x.size());
      if (pass == 0) {
        Status st = (*ops)->NpuMatMul(*xb, **wt, rows, *yb);
        ASSERT_TRUE(st.ok()) << st;
      } else {
        o.MatMul(*xb, **wt, nullptr, rows, *yb);
      }
      o.Read(*yb, 0, (pass == 0 ? got : want).data(), got.size());
    }
    // bf16: both operands rounded to 8-bit mantissas (2^-9 relative each);
    // int8: max|row| / 254 per operand. Bound: that error on k terms of
    // |x| ~ 1, |w| ~ 0.05, as an RMS over the output (random-walk sum).
    double err = 0, ref = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err += (got[i] - want[i]) * double(got[i] - want[i]);
      ref += double(want[i]) * want[i];
    }
    double rel = std::sqrt(err / std::max(ref, 1e-30));
    EXPECT_LT(rel, k.dtype == "bf16" ? 1e-2 : 3e-2) << "relative RMS error " << rel;
  }
}

}  // namespace
}  // namespace unicorn::npu
