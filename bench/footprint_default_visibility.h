// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Only for the "O3-visibility-hidden" variant of bench/footprint_report.py, which compiles with
// -fvisibility=hidden and force-includes this file (-include): the public headers declare no
// export attribute, so their declarations are given default visibility here, before any source
// sees them, and everything else stays hidden.
#ifndef HML_BENCH_FOOTPRINT_DEFAULT_VISIBILITY_H_
#define HML_BENCH_FOOTPRINT_DEFAULT_VISIBILITY_H_

#pragma GCC visibility push(default)
#include "hml/clock.h"
#include "hml/env.h"
#include "hml/logging.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor.h"
#include "hml/runtime/tensor_util.h"
#include "hml/status.h"
#pragma GCC visibility pop

#endif  // HML_BENCH_FOOTPRINT_DEFAULT_VISIBILITY_H_
