// Translation between shared-memory descriptors (shared_mem/descriptor.h) and
// their protobuf form in control messages (wire::ShmRef).
#pragma once

#include "proto/unicorn/worker.pb.h"
#include "shared_mem/descriptor.h"

namespace unicorn {

inline wire::ShmRef ToShmRef(const shm::SlotDescriptor& d) {
  wire::ShmRef r;
  r.set_region(d.region_id);
  r.set_offset(d.offset);
  r.set_size(d.byte_size);
  r.set_sequence(d.sequence);
  r.set_generation(d.generation);
  return r;
}

inline shm::SlotDescriptor FromShmRef(const wire::ShmRef& r) {
  shm::SlotDescriptor d;
  d.region_id = r.region();
  d.offset = r.offset();
  d.byte_size = r.size();
  d.sequence = r.sequence();
  d.generation = r.generation();
  return d;
}

}  // namespace unicorn
