#include "shared_mem/descriptor.h"

#include <bit>
#include <cstring>

namespace unicorn::shm {

// Every target (x86-64, the NPU/iGPU laptops) is little-endian; the encoding
// is then the struct's own bytes, which keeps encode/decode at a memcpy.
static_assert(std::endian::native == std::endian::little,
              "descriptor encoding assumes a little-endian host");

EncodedDescriptor Encode(const SlotDescriptor& d) {
  EncodedDescriptor out;
  std::memcpy(out.data(), &d, sizeof(d));
  return out;
}

StatusOr<SlotDescriptor> Decode(std::span<const uint8_t> bytes) {
  if (bytes.size() != kDescriptorBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("[shm] descriptor: ", bytes.size(), " bytes, expected ", kDescriptorBytes));
  }
  SlotDescriptor d;
  std::memcpy(&d, bytes.data(), sizeof(d));
  if (d.flags != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("[shm] descriptor: unknown flags 0x", absl::Hex(d.flags)));
  }
  return d;
}

std::string DescriptorString(const SlotDescriptor& d) {
  return absl::StrCat("region ", d.region_id, " @", d.offset, "+", d.byte_size, " seq ", d.sequence,
                      " gen ", d.generation);
}

}  // namespace unicorn::shm
