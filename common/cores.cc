#include "common/cores.h"

#include <thread>

namespace unicorn {

bool HasCoresToSpin() {
  // Asked on every hop: hardware_concurrency() reads the system each time,
  // so once per process.
  static const bool has = std::thread::hardware_concurrency() >= 8;
  return has;
}

}  // namespace unicorn
