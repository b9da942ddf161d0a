// NpuProbe() on made-up /dev and /sys trees (what it concludes from device
// nodes and sysfs), and on this machine (that it tells the truth here).
#include "npu_worker/xrt/npu_probe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace unicorn::npu {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ProbeTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("npu_probe_test_" + std::to_string(getpid()));
    fs::create_directories(root_ / "dev");
    fs::create_directories(root_ / "sys");
    opt_.dev_root = (root_ / "dev").string();
    opt_.sys_root = (root_ / "sys").string();
  }
  void TearDown() override { fs::remove_all(root_); }
  // An accel0 node owned by `driver`, PCI id 1022:`device`.
  void AddNpu(const std::string& driver, const std::string& device) {
    fs::create_directories(root_ / "dev/accel");
    std::ofstream(root_ / "dev/accel/accel0") << "";
    fs::path sys = root_ / "sys/class/accel/accel0/device";
    fs::create_directories(sys);
    fs::create_directories(root_ / "sys/bus/pci/drivers" / driver);
    fs::create_directory_symlink(root_ / "sys/bus/pci/drivers" / driver, sys / "driver");
    std::ofstream(sys / "vendor") << "0x1022\n";
    std::ofstream(sys / "device") << device << "\n";
  }
  fs::path root_;
  NpuProbeOptions opt_;
};

TEST_F(ProbeTree, NoAccelNodeMeansNoNpu) {
  NpuProbeResult r = NpuProbe(opt_);
  EXPECT_FALSE(r.present);
  EXPECT_FALSE(r.usable);
  EXPECT_EQ(r.reason, "no NPU found (" + opt_.dev_root + "/accel/accel0 missing)");
  EXPECT_THAT(r.Describe(), HasSubstr("no NPU"));
}

TEST_F(ProbeTree, PhoenixNodeIsFoundAndTheBuildDecidesUsability) {
  AddNpu("amdxdna", "0x1502");
  NpuProbeResult r = NpuProbe(opt_);
  EXPECT_TRUE(r.present);
  ASSERT_EQ(r.device_nodes.size(), 1u);
  EXPECT_EQ(r.driver, "amdxdna");
  EXPECT_EQ(r.pci_id, "1022:1502");
  EXPECT_EQ(r.generation, "npu1 (Phoenix / Hawk Point)");
  EXPECT_EQ(r.usable, r.xrt_built && r.hw_context);
  if (!r.xrt_built) {
    EXPECT_THAT(r.reason, HasSubstr("no XRT backend"));
  } else if (!r.hw_context) {
    EXPECT_THAT(r.reason, HasSubstr("XRT " + r.xrt_version + " has no hw_context API"));
  } else {
    EXPECT_EQ(r.reason, "");
  }
}

TEST_F(ProbeTree, StrixAndForeignDrivers) {
  AddNpu("other_driver", "0x17f0");
  NpuProbeResult r = NpuProbe(opt_);
  EXPECT_EQ(r.generation, "npu2 (Strix / Strix Halo / Krackan)");
  EXPECT_FALSE(r.usable);
  if (r.xrt_built && r.hw_context) {
    EXPECT_THAT(r.reason, HasSubstr("not amdxdna"));
  }
}

TEST(Probe, ThisMachine) {
  NpuProbeResult r = NpuProbe();
  EXPECT_EQ(r.present, fs::exists("/dev/accel/accel0"));
#if defined(UNICORN_EXPECT_XRT)
  EXPECT_TRUE(r.xrt_built);
  EXPECT_FALSE(r.xrt_version.empty());
#endif
  if (!r.present) {
    EXPECT_EQ(r.reason, "no NPU found (/dev/accel/accel0 missing)");
  }
}

}  // namespace
}  // namespace unicorn::npu
