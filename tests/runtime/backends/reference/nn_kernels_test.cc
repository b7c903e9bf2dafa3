// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include <gtest/gtest.h>

#include "tests/testing/graph_builder.h"

namespace hml {
namespace {
TEST(NnKernels, Placeholder) { EXPECT_TRUE(true); }
}  // namespace
}  // namespace hml
