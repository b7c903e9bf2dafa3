// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Linking alloc_counter.cc into a test binary replaces global operator new/delete with versions
// that count allocations, so a test can assert that a code path allocates nothing.
#ifndef HML_TESTS_TESTING_ALLOC_COUNTER_H_
#define HML_TESTS_TESTING_ALLOC_COUNTER_H_

#include <cstdint>

namespace hml::testing {
// Number of operator new calls so far in this process.
int64_t AllocationCount();
// False in sanitizer builds, where the counting operator new is not installed.
bool AllocationCountingEnabled();
}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_ALLOC_COUNTER_H_
