// A PNG bar chart of where the token time goes (`unicorn profile --png`):
// one horizontal bar per summary row (coordinator stages, each worker's part
// kinds and op kinds), its length the row's share of the token time, with
// the row's name on the left and the percentage after the bar.
//
// Drawn by a tiny rasterizer (filled rectangles and a built-in 5x7 bitmap
// font; lower case is drawn as upper case) and encoded with libpng.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn::cli {

struct ChartBar {
  std::string label;
  double share = 0;  // of the token time, 0..1 (clamped)
  int level = 0;     // 0 coordinator stage, 1 worker part, 2 op: picks the colour
};

// 8-bit RGB, row-major: rgb[(y * width + x) * 3 + c].
struct ChartImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Where things are, for callers and tests: bar i fills columns
// [kBarX, kBarX + round(share * kBarWidth)) of rows
// [RowTop(i) + 2, RowTop(i) + 2 + kBarHeight) in BarColor(level).
struct ChartLayout {
  static constexpr int kWidth = 1000;
  static constexpr int kTop = 30;  // the title above the bars
  static constexpr int kRowHeight = 14;
  static constexpr int kBarHeight = 10;
  static constexpr int kBottom = 10;
  static constexpr int kLabelX = 8;
  static constexpr int kBarX = 400;
  static constexpr int kBarWidth = 520;
  static constexpr size_t kMaxBars = 400;  // more are left out (and said so in the title)
  static int Height(size_t bars);
  static int RowTop(size_t i) { return kTop + int(i) * kRowHeight; }
  static void BarColor(int level, uint8_t rgb[3]);
  static constexpr uint8_t kBackground = 255;  // white
};

ChartImage DrawShareChart(const std::string& title, const std::vector<ChartBar>& bars);

// The image as PNG bytes (8-bit RGB).
StatusOr<std::string> EncodePng(const ChartImage& image);
Status WritePngFile(const ChartImage& image, const std::string& path);

}  // namespace unicorn::cli
