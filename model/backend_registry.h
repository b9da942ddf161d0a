// Compute backends by name ("cpu", later "vulkan", "xrt"): each backend
// library provides a Register<Name>Backend(BackendRegistry&) function, and the
// programs that offer a --backend option register the ones they link.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/ops.h"

namespace unicorn {

struct BackendOptions {
  int threads = 0;  // CPU threads (0 = all); other backends may ignore it
  // GPU / NPU device: "" = the backend's default, an index, or part of its name.
  std::string device;
};

using BackendFactory = std::function<StatusOr<std::unique_ptr<Ops>>(const BackendOptions&)>;

class BackendRegistry {
 public:
  // Registering a name again replaces it.
  void Register(const std::string& name, const std::string& description, BackendFactory factory);
  // An unknown name is an error listing the registered ones.
  StatusOr<std::unique_ptr<Ops>> Create(const std::string& name,
                                        const BackendOptions& options) const;
  std::vector<std::string> Names() const;
  // "cpu: description" lines, for --help.
  std::string Describe() const;

 private:
  struct Entry {
    std::string name, description;
    BackendFactory factory;
  };
  std::vector<Entry> entries_;
};

}  // namespace unicorn
