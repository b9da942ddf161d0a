#pragma once

// What this machine's cores allow the threads that wait on other work.

namespace unicorn {

// Whether this machine has cores to spare for spinning threads (>= 8
// hardware threads). On a 2-core VM, spinning processes take the cores that
// their peers need to deliver and answer the messages they wait for.
bool HasCoresToSpin();

}  // namespace unicorn
