#include "model/npy.h"

#include <gtest/gtest.h>

#include <cstring>

namespace unicorn {
namespace {

TEST(NpyTest, F32RoundTripWithNumpyV1Header) {
  const std::vector<float> v = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.5f};
  const std::string bytes = EncodeNpyF32(v.data(), {2, 3});
  // numpy.load needs: magic, v1.0, header padded so data starts 64-aligned.
  ASSERT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  EXPECT_NE(bytes.find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
            std::string::npos);
  auto a = ParseNpy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(*a->ToFloat(), v);
  const std::string one = EncodeNpyF32(v.data(), {6});
  EXPECT_NE(one.find("'shape': (6,), }"), std::string::npos);
}

TEST(NpyTest, ReadsIntegerArraysAndRejectsBadFiles) {
  // numpy.save(np.array([[2, 105], [-1, 7]], dtype=np.int64)) header, by hand.
  std::string dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }";
  dict.append(64 - (10 + dict.size() + 1) % 64, ' ');
  dict += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(dict.size()) + '\0' + dict;
  for (int64_t x : {int64_t(2), int64_t(105), int64_t(-1), int64_t(7)}) {
    bytes.append(reinterpret_cast<const char*>(&x), 8);
  }
  auto a = ParseNpy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "ids.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a->ToInt64(), (std::vector<int64_t>{2, 105, -1, 7}));
  EXPECT_EQ(*a->ToFloat(), (std::vector<float>{2, 105, -1, 7}));

  auto truncated =
      ParseNpy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size() - 1, "ids.npy");
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("ids.npy"), std::string::npos);
  std::string fortran = bytes;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_FALSE(
      ParseNpy(reinterpret_cast<const uint8_t*>(fortran.data()), fortran.size(), "f").ok());
  EXPECT_FALSE(ParseNpy(reinterpret_cast<const uint8_t*>("hello"), 5, "x").ok());
  EXPECT_FALSE(ReadNpy("/nonexistent/file.npy").ok());
}

}  // namespace
}  // namespace unicorn
