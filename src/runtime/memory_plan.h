// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Static memory planning: every intermediate tensor of a session gets an offset in one arena,
// tensors whose lifetimes overlap never share bytes. Greedy by size (largest first), each placed
// at the lowest offset that fits between the already placed tensors it overlaps in time.
#ifndef HML_SRC_RUNTIME_MEMORY_PLAN_H_
#define HML_SRC_RUNTIME_MEMORY_PLAN_H_

#include <cstddef>
#include <span>
#include <vector>

namespace hml::runtime {

struct BufferRequest {
  size_t bytes = 0;
  // Inclusive range of execution steps during which the buffer's contents must survive.
  int first_step = 0;
  int last_step = 0;
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per request, multiples of the alignment
  size_t arena_bytes = 0;
};

// REQUIRES: alignment is a power of two; first_step <= last_step for every request.
MemoryPlan PlanMemory(std::span<const BufferRequest> requests, size_t alignment = 64);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_MEMORY_PLAN_H_
