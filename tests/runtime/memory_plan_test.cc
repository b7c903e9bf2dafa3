// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/memory_plan.h"

#include <gtest/gtest.h>

#include <random>

namespace hml::runtime {
namespace {

bool Overlaps(const BufferRequest& a, size_t oa, const BufferRequest& b, size_t ob) {
  const bool time = a.first_step <= b.last_step && b.first_step <= a.last_step;
  const bool space = oa < ob + b.bytes && ob < oa + a.bytes;
  return time && space;
}

TEST(MemoryPlanTest, DisjointLifetimesShareMemory) {
  std::vector<BufferRequest> r = {{1000, 0, 1}, {1000, 2, 3}, {1000, 4, 5}};
  MemoryPlan p = PlanMemory(r);
  EXPECT_EQ(p.arena_bytes, 1024u);
  EXPECT_EQ(p.offsets, (std::vector<size_t>{0, 0, 0}));
}

TEST(MemoryPlanTest, TouchingLifetimesDoNotShare) {
  // A node reads buffer 0 and writes buffer 1 in the same step: they must not alias.
  std::vector<BufferRequest> r = {{64, 0, 1}, {64, 1, 2}};
  MemoryPlan p = PlanMemory(r);
  EXPECT_NE(p.offsets[0], p.offsets[1]);
  EXPECT_EQ(p.arena_bytes, 128u);
}

TEST(MemoryPlanTest, RandomRequestsNeverConflictAndAreAligned) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<BufferRequest> r;
    size_t naive = 0;
    for (int i = 0; i < 40; ++i) {
      const int a = static_cast<int>(rng() % 30);
      const int b = a + static_cast<int>(rng() % 8);
      r.push_back({1 + rng() % 5000, a, b});
      naive += (r.back().bytes + 63) / 64 * 64;
    }
    MemoryPlan p = PlanMemory(r);
    EXPECT_LE(p.arena_bytes, naive);
    for (size_t i = 0; i < r.size(); ++i) {
      EXPECT_EQ(p.offsets[i] % 64, 0u);
      EXPECT_LE(p.offsets[i] + r[i].bytes, p.arena_bytes);
      for (size_t j = i + 1; j < r.size(); ++j) {
        EXPECT_FALSE(Overlaps(r[i], p.offsets[i], r[j], p.offsets[j])) << i << " vs " << j;
      }
    }
  }
}

}  // namespace
}  // namespace hml::runtime
