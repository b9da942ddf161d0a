// `unicorn profile --png`'s chart: the PNG decodes (with the project's own
// image decoder, stb) to the size the layout states, and each row's bar has
// as many bar-coloured pixels as its share of the bar width (the text is
// drawn in another colour, so labels and percentages do not count).
#include "tools/cli/share_chart.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "model/image.h"

namespace unicorn::cli {
namespace {

// Pixels of bar i in the bar area [kBarX, kWidth) that have its colour.
int BarPixels(const Image& img, size_t i, int level) {
  uint8_t c[3];
  ChartLayout::BarColor(level, c);
  int n = 0;
  for (int y = ChartLayout::RowTop(i); y < ChartLayout::RowTop(i) + ChartLayout::kRowHeight; ++y) {
    for (int x = ChartLayout::kBarX; x < img.width; ++x) {
      const uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
      n += p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
    }
  }
  return n;
}

TEST(ShareChart, PngOfTheStatedSizeWithBarsProportionalToTheShares) {
  const std::vector<ChartBar> bars = {
      {"schedule", 0.01, 0},
      {"hop 0: embedding + L0-L7 @gpu", 0.80, 0},
      {"  ffn @gpu (vulkan, GPU time)", 0.45, 1},
      {"    op matmul ffn_down @gpu (vulkan, GPU time)", 0.20, 2},
      {"sample", 0.0, 0},
      {"stream write", 1.5, 0},  // more than the whole: clamped to the full width
  };
  const std::string path =
      (std::filesystem::temp_directory_path() / "unicorn_share_chart_test.png").string();
  ASSERT_TRUE(WritePngFile(DrawShareChart("share of token time", bars), path).ok());
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto img = DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "chart");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->width, ChartLayout::kWidth);
  EXPECT_EQ(img->height, ChartLayout::Height(bars.size()));
  EXPECT_EQ(ChartLayout::Height(bars.size()),
            ChartLayout::kTop + 6 * ChartLayout::kRowHeight + ChartLayout::kBottom);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double share = std::min(1.0, bars[i].share);
    const int want = int(std::lround(share * ChartLayout::kBarWidth)) * ChartLayout::kBarHeight;
    EXPECT_EQ(BarPixels(*img, i, bars[i].level), want) << bars[i].label;
  }
  // Labels are drawn: dark pixels left of the bars on every row.
  for (size_t i = 0; i < bars.size(); ++i) {
    int dark = 0;
    for (int y = ChartLayout::RowTop(i); y < ChartLayout::RowTop(i) + ChartLayout::kRowHeight;
         ++y) {
      for (int x = 0; x < ChartLayout::kBarX - 1; ++x) {
        dark += img->rgb[(size_t(y) * img->width + x) * 3] < 0x80;
      }
    }
    EXPECT_GT(dark, 20) << bars[i].label;
  }
}

TEST(ShareChart, EncodeRefusesAnImageWithoutPixels) {
  ChartImage bad;
  bad.width = 4;
  bad.height = 4;
  EXPECT_FALSE(EncodePng(bad).ok());
}

}  // namespace
}  // namespace unicorn::cli
