// Sets (or, with a null value, unsets) an environment variable for a scope
// and puts back what was there when the scope ends, also when an assertion
// returns early, so one test's setting never leaks into the next.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace unicorn::testing {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    Set(value);
  }
  ~ScopedEnv() { Set(saved_ ? saved_->c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

  // Changes the value within the scope (the restored one stays the first).
  void Set(const char* value) {
    if (value) {
      ::setenv(name_.c_str(), value, 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

}  // namespace unicorn::testing
