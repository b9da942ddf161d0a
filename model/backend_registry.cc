#include "model/backend_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace unicorn {

void BackendRegistry::Register(const std::string& name, const std::string& description,
                               BackendFactory factory) {
  for (Entry& e : entries_) {
    if (e.name == name) {
      e = {name, description, std::move(factory)};
      return;
    }
  }
  entries_.push_back({name, description, std::move(factory)});
}

StatusOr<std::unique_ptr<Ops>> BackendRegistry::Create(const std::string& name,
                                                       const BackendOptions& options) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return e.factory(options);
  }
  return absl::NotFoundError(absl::StrCat("[backend] unknown backend '", name,
                                          "'; available: ", absl::StrJoin(Names(), ", ")));
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const Entry& e : entries_) names.push_back(e.name);
  return names;
}

std::string BackendRegistry::Describe() const {
  std::string out;
  for (const Entry& e : entries_) absl::StrAppend(&out, e.name, ": ", e.description, "\n");
  return out;
}

}  // namespace unicorn
