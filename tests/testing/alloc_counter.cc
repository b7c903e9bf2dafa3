// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "tests/testing/alloc_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

// Under AddressSanitizer the replacement would clash with ASan's own operator new (memory
// allocated by one and freed by the other is reported as a mismatch), so counting is off there.
#if defined(__SANITIZE_ADDRESS__)
#define HML_COUNT_ALLOCATIONS 0
#else
#define HML_COUNT_ALLOCATIONS 1
#endif

namespace {
std::atomic<int64_t> g_allocations{0};
}

#if HML_COUNT_ALLOCATIONS

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  std::abort();
}
void* operator new[](size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace hml::testing {
int64_t AllocationCount() { return g_allocations.load(std::memory_order_relaxed); }
bool AllocationCountingEnabled() { return HML_COUNT_ALLOCATIONS != 0; }
}  // namespace hml::testing
