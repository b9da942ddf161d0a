#include "model/utf8.h"

namespace unicorn::utf8 {

size_t CharLen(absl::string_view s, size_t i) {
  const size_t n = s.size() - i;
  const uint8_t b0 = uint8_t(s[i]);
  if (b0 < 0x80) return 1;
  auto cont = [&](size_t k) { return k < n && (uint8_t(s[i + k]) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const uint8_t b1 = uint8_t(s[i + 1]);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const uint8_t b1 = uint8_t(s[i + 1]);
    if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

char32_t Decode(absl::string_view s, size_t i, size_t len) {
  const auto b = [&](size_t k) { return char32_t(uint8_t(s[i + k])); };
  switch (len) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

void Append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

bool IsValid(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t len = CharLen(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

size_t CountChars(absl::string_view s) {
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++count) {
    const size_t len = CharLen(s, i);
    i += len ? len : 1;
  }
  return count;
}

bool IsPySpace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

absl::string_view PyStrip(absl::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    const size_t len = CharLen(s, begin);
    if (len == 0 || !IsPySpace(Decode(s, begin, len))) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;  // find the start of the last character
    while (start > begin && (uint8_t(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
    const size_t len = CharLen(s, start);
    if (len != end - start || !IsPySpace(Decode(s, start, len))) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

}  // namespace unicorn::utf8
