// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/compress/graph_util.h"

#include <algorithm>

namespace hml::compress {

std::vector<std::vector<int>> Consumers(const runtime::Graph& graph) {
  std::vector<std::vector<int>> readers(graph.values.size());
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    for (runtime::ValueId in : graph.nodes[n].inputs) {
      if (in == runtime::kNoValue) continue;
      std::vector<int>& r = readers[static_cast<size_t>(in)];
      if (std::find(r.begin(), r.end(), static_cast<int>(n)) == r.end()) {
        r.push_back(static_cast<int>(n));
      }
    }
  }
  return readers;
}

}  // namespace hml::compress
