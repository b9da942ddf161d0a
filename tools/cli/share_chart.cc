#include "tools/cli/share_chart.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace unicorn::cli {
namespace {

// 5x7 glyphs: 7 rows, bit 4 is the leftmost column.
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}},
    {'#', {0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'*', {0x00, 0x04, 0x15, 0x0e, 0x15, 0x04, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},
    {'3', {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'=', {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'?', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
    {'@', {0x0e, 0x11, 0x17, 0x15, 0x17, 0x10, 0x0f}},
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}},
    {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}},
    {'D', {0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}},
    {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}},
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}},
    {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}},
    {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},
    {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}},
    {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}},
    {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}},
    {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}},
    {'[', {0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e}},
    {']', {0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f}},
};
constexpr int kGlyphAdvance = 6;  // 5 columns and a space
constexpr uint8_t kText[3] = {0x20, 0x20, 0x20};
constexpr uint8_t kAxis[3] = {0xb0, 0xb0, 0xb0};

const uint8_t* GlyphRows(char c) {
  if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  for (const Glyph& g : kFont) {
    if (g.c == c) return g.rows;
  }
  for (const Glyph& g : kFont) {
    if (g.c == '?') return g.rows;
  }
  return nullptr;
}

class Canvas {
 public:
  explicit Canvas(ChartImage* img) : img_(*img) {}
  void Fill(int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    x0 = std::max(x0, 0);
    y0 = std::max(y0, 0);
    x1 = std::min(x1, img_.width);
    y1 = std::min(y1, img_.height);
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x)
        std::memcpy(&img_.rgb[(size_t(y) * img_.width + x) * 3], rgb, 3);
    }
  }
  // Text with its top-left corner at (x, y), cut at `max_chars`.
  void Text(int x, int y, const std::string& s, size_t max_chars = 1000) {
    for (size_t i = 0; i < s.size() && i < max_chars; ++i, x += kGlyphAdvance) {
      const uint8_t* rows = GlyphRows(s[i]);
      if (rows == nullptr) continue;
      for (int r = 0; r < 7; ++r) {
        for (int c = 0; c < 5; ++c) {
          if (rows[r] & (0x10 >> c)) Fill(x + c, y + r, x + c + 1, y + r + 1, kText);
        }
      }
    }
  }

 private:
  ChartImage& img_;
};

void OnPngError(png_structp png, png_const_charp msg) {
  auto* error = static_cast<std::string*>(png_get_error_ptr(png));
  *error = msg;
  png_longjmp(png, 1);
}

void OnPngWarning(png_structp, png_const_charp) {}

void AppendBytes(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}

void NoFlush(png_structp) {}

}  // namespace

int ChartLayout::Height(size_t bars) {
  return kTop + int(std::min(bars, kMaxBars)) * kRowHeight + kBottom;
}

void ChartLayout::BarColor(int level, uint8_t rgb[3]) {
  static constexpr uint8_t kColors[3][3] = {
      {0x3b, 0x6e, 0xc4},  // coordinator stages: blue
      {0x3c, 0xa0, 0x5a},  // worker parts: green
      {0xe0, 0x8a, 0x2c},  // ops: orange
  };
  std::memcpy(rgb, kColors[std::clamp(level, 0, 2)], 3);
}

ChartImage DrawShareChart(const std::string& title, const std::vector<ChartBar>& bars) {
  ChartImage img;
  img.width = ChartLayout::kWidth;
  img.height = ChartLayout::Height(bars.size());
  img.rgb.assign(size_t(img.width) * img.height * 3, ChartLayout::kBackground);
  Canvas canvas(&img);
  const size_t shown = std::min(bars.size(), ChartLayout::kMaxBars);
  std::string head = title;
  if (shown < bars.size()) absl::StrAppend(&head, " (first ", shown, " of ", bars.size(), " rows)");
  canvas.Text(ChartLayout::kLabelX, 10, head);
  canvas.Fill(ChartLayout::kBarX - 1, ChartLayout::kTop - 2, ChartLayout::kBarX,
              ChartLayout::Height(shown) - ChartLayout::kBottom, kAxis);
  const size_t label_chars = (ChartLayout::kBarX - ChartLayout::kLabelX - 8) / kGlyphAdvance;
  for (size_t i = 0; i < shown; ++i) {
    const ChartBar& b = bars[i];
    const int top = ChartLayout::RowTop(i);
    const double share = std::clamp(b.share, 0.0, 1.0);
    const int len = int(std::lround(share * ChartLayout::kBarWidth));
    uint8_t color[3];
    ChartLayout::BarColor(b.level, color);
    canvas.Fill(ChartLayout::kBarX, top + 2, ChartLayout::kBarX + len,
                top + 2 + ChartLayout::kBarHeight, color);
    canvas.Text(ChartLayout::kLabelX, top + 3, b.label, label_chars);
    canvas.Text(ChartLayout::kBarX + len + 4, top + 3, absl::StrFormat("%.1f%%", 100 * b.share));
  }
  return img;
}

StatusOr<std::string> EncodePng(const ChartImage& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != size_t(image.width) * image.height * 3) {
    return absl::InvalidArgumentError(absl::StrCat("[png] image of ", image.width, "x",
                                                   image.height, " with ", image.rgb.size(),
                                                   " bytes of pixels"));
  }
  std::string out, error;
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, OnPngError, OnPngWarning);
  if (png == nullptr) return absl::InternalError("[png] png_create_write_struct failed");
  png_infop info = png_create_info_struct(png);
  // libpng reports errors by longjmp to here: nothing between setjmp and the
  // end needs a destructor run (out and error live outside).
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return absl::InternalError(absl::StrCat("[png] encoding failed: ", error));
  }
  png_set_write_fn(png, &out, AppendBytes, NoFlush);
  png_set_IHDR(png, info, png_uint_32(image.width), png_uint_32(image.height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y) {
    png_write_row(png, const_cast<png_bytep>(&image.rgb[size_t(y) * image.width * 3]));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

Status WritePngFile(const ChartImage& image, const std::string& path) {
  UNICORN_ASSIGN_OR_RETURN(std::string bytes, EncodePng(image));
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.close();
  if (!f) return absl::UnavailableError(absl::StrCat("[png] cannot write ", path));
  return absl::OkStatus();
}

}  // namespace unicorn::cli
