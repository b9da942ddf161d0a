// The instruction sequence of an mlir-aie design (its runtime sequence
// lowered to NPU DMA/sync words), as the build writes it: insts.txt (one
// 32-bit hex word per line) or insts.bin (little-endian 32-bit words).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn::npu {

// Loads the words of `path` (.txt: hex per line, blank lines and '#'
// comments skipped; anything else: raw little-endian words). Errors name the
// file and, for text, the line: a missing file, an empty sequence, a size
// that is not a whole number of words, a line that is not a hex word.
StatusOr<std::vector<uint32_t>> LoadInstructions(const std::string& path);

}  // namespace unicorn::npu
