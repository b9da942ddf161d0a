// Small UTF-8 helpers for the tokenizer and the chat template. Text is UTF-8
// in std::string / absl::string_view; nothing here allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace unicorn::utf8 {

// Length in bytes of the well-formed UTF-8 character that starts at s[i]
// (1..4), or 0 when the bytes there are not one (a stray continuation byte, an
// overlong form, a surrogate, a truncated sequence, a value above U+10FFFF).
size_t CharLen(absl::string_view s, size_t i);

// The code point of the well-formed character of `len` bytes at s[i].
char32_t Decode(absl::string_view s, size_t i, size_t len);

// Appends the UTF-8 form of code point `cp` (<= U+10FFFF, not a surrogate).
void Append(std::string& out, char32_t cp);

// True when all of `s` is well-formed UTF-8.
bool IsValid(absl::string_view s);

// Number of code points (Python's len()); a malformed byte counts as one.
size_t CountChars(absl::string_view s);

// Python's str.isspace() for one code point.
bool IsPySpace(char32_t cp);

// Python's str.strip() with no argument (what Jinja's `trim` filter does):
// removes leading and trailing characters for which str.isspace() is true.
absl::string_view PyStrip(absl::string_view s);

}  // namespace unicorn::utf8
