// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Small graph queries shared by the compression passes.
#ifndef HML_SRC_COMPRESS_GRAPH_UTIL_H_
#define HML_SRC_COMPRESS_GRAPH_UTIL_H_

#include <vector>

#include "src/runtime/graph.h"

namespace hml::compress {

// For each value id, the indices of the nodes that read it (a node reading a value twice is
// listed once).
std::vector<std::vector<int>> Consumers(const runtime::Graph& graph);

}  // namespace hml::compress

#endif  // HML_SRC_COMPRESS_GRAPH_UTIL_H_
