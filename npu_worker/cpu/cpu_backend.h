// Registers the CPU backend (CpuOps) as "cpu".
#pragma once

#include "model/backend_registry.h"

namespace unicorn::cpu {

void RegisterCpuBackend(BackendRegistry& registry);

}  // namespace unicorn::cpu
