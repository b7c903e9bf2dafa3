// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace hml::runtime {

MemoryPlan PlanMemory(std::span<const BufferRequest> requests, size_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(requests.size(), 0);
  auto aligned = [alignment](size_t n) { return (n + alignment - 1) & ~(alignment - 1); };

  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return requests[a].bytes > requests[b].bytes; });

  struct Placed {
    size_t offset;
    size_t bytes;
    int first;
    int last;
  };
  std::vector<Placed> placed;
  std::vector<Placed> conflicts;
  for (size_t r : order) {
    const BufferRequest& req = requests[r];
    const size_t bytes = aligned(std::max<size_t>(req.bytes, 1));
    conflicts.clear();
    for (const Placed& p : placed) {
      if (p.first <= req.last_step && req.first_step <= p.last) conflicts.push_back(p);
    }
    std::sort(conflicts.begin(), conflicts.end(),
              [](const Placed& a, const Placed& b) { return a.offset < b.offset; });
    size_t offset = 0;
    for (const Placed& p : conflicts) {
      if (offset + bytes <= p.offset) break;
      offset = std::max(offset, p.offset + p.bytes);
    }
    plan.offsets[r] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + bytes);
    placed.push_back({offset, bytes, req.first_step, req.last_step});
  }
  return plan;
}

}  // namespace hml::runtime
