// `unicorn doctor` on this machine: in CI that is lavapipe and no NPU, and the
// doctor must say so, and find that the default config (demo model) fits.
#include <gtest/gtest.h>

#include <regex>

#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::Shell;

TEST(CliDoctor, ReportsDevicesNpuDmabufCpuAndVerdict) {
  std::string bin = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn";
  auto r = Shell(bin + " doctor --config " UNICORN_SOURCE_DIR "/configs/default.yaml");
  const std::string& out = r.out;
  // Every section is there.
  for (const char* s : {"== CPU", "== Vulkan", "== NPU", "== dma-buf", "== Config", "== Verdict"}) {
    EXPECT_NE(out.find(s), std::string::npos) << s << "\n" << out;
  }
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(SIMD: (AVX-512|AVX2|SSE4\.2|SSE2|NEON))")))
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(memory: \d+\.\d GiB total)"))) << out;
  EXPECT_NE(out.find("/dev/dma_heap/system: "), std::string::npos) << out;
  // A Vulkan device with its memory and extensions.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\[0\] .+ Vulkan 1\.\d+\.\d+)"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(external_memory_host (yes|no))"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(16-bit storage (yes|NO))"))) << out;
  // The demo model's weights, placed per the plan.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(worker npu .* of weights -> )"))) << out;
  if (std::regex_search(out, std::regex(R"(\[\d\] llvmpipe)"))) {  // lavapipe (CI)
    EXPECT_NE(out.find("lavapipe: software on the CPU"), std::string::npos) << out;
  }
  if (Shell("ls /dev/accel/accel* >/dev/null 2>&1").code != 0) {
    EXPECT_NE(out.find("no NPU"), std::string::npos) << out;
    EXPECT_NE(out.find("the CPU backend (no NPU)"), std::string::npos) << out;
  }
  EXPECT_NE(out.find("OK: this machine can run"), std::string::npos) << out;
  EXPECT_EQ(r.code, 0) << out;
}

TEST(CliDoctor, SaysWhenThePlanCannotRun) {
  auto dir = std::filesystem::temp_directory_path() / ("ucdoc" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string config = (dir / "x.yaml").string();
  std::ofstream(config) << "model: " UNICORN_SOURCE_DIR "/models/demo\n"
                        << "workers:\n  npu: {kind: npu, backend: xrt, allow_cpu_fallback: false}\n"
                        << "  gpu: {kind: gpu, backend: cpu}\n"
                        << "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: "
                           "gpu}]}\n";
  auto r = Shell(std::string(UNICORN_BINARY_DIR) + "/bin/unicorn doctor --config " + config);
  std::filesystem::remove_all(dir);
  if (Shell("ls /dev/accel/accel* >/dev/null 2>&1").code == 0)
    GTEST_SKIP() << "this machine has an NPU";
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("PROBLEMS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("allow_cpu_fallback"), std::string::npos) << r.out;
}

}  // namespace
