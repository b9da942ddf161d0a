#include "common/quant_recipe.h"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"

namespace unicorn {

const std::string* QuantRecipe::Find(const std::string& name) const {
  for (const Rule& r : rules) {
    if (::fnmatch(r.match.c_str(), name.c_str(), 0) == 0) return &r.type;
  }
  return nullptr;
}

StatusOr<QuantRecipe> LoadQuantRecipe(const std::string& path) {
  auto bad = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat("[recipe] ", path, ": ", msg));
  };
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return bad(e.what());
  }
  if (!root.IsMap()) return bad("expected a map with `rules` (and optionally `default`)");
  QuantRecipe r;
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (key == "default") {
        r.default_type = kv.second.as<std::string>();
      } else if (key == "rules") {
        if (!kv.second.IsSequence()) return bad("rules: expected a list");
        int i = 0;
        for (const YAML::Node& n : kv.second) {
          if (!n.IsMap() || !n["match"] || !n["type"]) {
            return bad(absl::StrCat("rules[", i, "]: expected {match: GLOB, type: TYPE}"));
          }
          r.rules.push_back({n["match"].as<std::string>(), n["type"].as<std::string>()});
          ++i;
        }
      } else {
        return bad(absl::StrCat("unknown key ", key, " (expected default, rules)"));
      }
    }
  } catch (const YAML::Exception& e) {
    return bad(e.what());
  }
  return r;
}

}  // namespace unicorn
