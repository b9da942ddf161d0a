#include "coordinator/plan.h"

#include <algorithm>

namespace unicorn {

std::vector<std::string> ResolvedPlan::AttentionWorkers() const {
  std::vector<std::string> out;
  for (const auto& w : attention) {
    if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
  }
  return out;
}

std::vector<std::string> ResolvedPlan::Workers() const {
  std::vector<std::string> out;
  for (const Stage& s : stages) {
    if (std::find(out.begin(), out.end(), s.worker) == out.end()) out.push_back(s.worker);
  }
  return out;
}

std::string ResolvedPlan::Summary() const {
  std::string s = absl::StrCat("embedding@", embedding);
  int l = 0;
  while (l < num_layers) {
    int e = l;
    while (e + 1 < num_layers && attention[e + 1] == attention[l] && ffn[e + 1] == ffn[l]) ++e;
    absl::StrAppend(&s, " | L", l, e > l ? absl::StrCat("-", e) : "", ": attention@", attention[l],
                    " ffn@", ffn[l]);
    l = e + 1;
  }
  absl::StrAppend(&s, " | lm_head@", lm_head);
  if (!vision.empty()) absl::StrAppend(&s, " | vision@", vision);
  return s;
}

StatusOr<ResolvedPlan> ResolvePlan(const Config& config, int num_layers) {
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("[plan] ", config.source_path, ": ", what));
  };
  if (num_layers <= 0) return error(absl::StrCat("model has ", num_layers, " layers"));
  ResolvedPlan p;
  p.num_layers = num_layers;
  p.attention.assign(num_layers, "");
  p.ffn.assign(num_layers, "");
  p.embedding = config.plan.embedding;
  p.lm_head = config.plan.lm_head;
  p.vision = config.plan.vision;
  for (size_t i = 0; i < config.plan.layers.size(); ++i) {
    const PlanRange& r = config.plan.layers[i];
    int last = r.last_layer < 0 ? num_layers - 1 : r.last_layer;
    if (r.first_layer >= num_layers || last >= num_layers) {
      return error(absl::StrCat("layer ", std::max(r.first_layer, last), " in plan.layers[", i,
                                "] is out of range (the model has ", num_layers, " layers)"));
    }
    for (int l = r.first_layer; l <= last; ++l) {
      p.attention[l] = r.attention;
      p.ffn[l] = r.ffn;
    }
  }
  for (int l = 0; l < num_layers; ++l) {
    if (p.attention[l].empty()) return error(absl::StrCat("layer ", l, " has no attention worker"));
    if (p.ffn[l].empty()) return error(absl::StrCat("layer ", l, " has no ffn worker"));
  }
  // Parts in forward order: embedding, (attention, ffn) per layer, lm_head.
  auto worker_of_part = [&](int part) {
    return part % 2 == 0 ? p.attention[part / 2] : p.ffn[part / 2];
  };
  Stage cur{p.embedding, true, 0, 0, false};
  for (int part = 0; part < 2 * num_layers; ++part) {
    const std::string& w = worker_of_part(part);
    if (w != cur.worker) {
      p.stages.push_back(cur);
      cur = Stage{w, false, part, part, false};
    }
    cur.last_part = part + 1;
  }
  if (p.lm_head != cur.worker) {
    p.stages.push_back(cur);
    cur = Stage{p.lm_head, false, 2 * num_layers, 2 * num_layers, false};
  }
  cur.lm_head = true;
  p.stages.push_back(cur);
  return p;
}

}  // namespace unicorn
