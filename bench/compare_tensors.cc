// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// compare_tensors GOT.pb WANT.pb [TOL]: compares two float tensors (ONNX TensorProto files) and
// fails when max |got - want| > TOL * max |want| (relative to the output's scale, so that tiny
// outputs cannot pass trivially). Prints the max absolute difference.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "hml/runtime/tensor_util.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: compare_tensors GOT.pb WANT.pb [TOL]\n");
    return 2;
  }
  const double tol = argc > 3 ? std::atof(argv[3]) : 1e-4;
  auto got = hml::LoadTensor(argv[1]);
  auto want = hml::LoadTensor(argv[2]);
  if (!got.ok() || !want.ok()) {
    std::fprintf(stderr, "%s\n", (!got.ok() ? got : want).status().ToString().c_str());
    return 1;
  }
  if (got->dtype() != hml::DType::kFloat32 || got->shape() != want->shape() ||
      want->dtype() != hml::DType::kFloat32) {
    std::fprintf(stderr, "mismatch: %s vs %s\n", hml::SummarizeTensor(*got).c_str(),
                 hml::SummarizeTensor(*want).c_str());
    return 1;
  }
  double max_diff = 0, max_want = 0;
  for (int64_t i = 0; i < got->num_elements(); ++i) {
    max_diff = std::fmax(max_diff, std::fabs(got->data<float>()[i] - want->data<float>()[i]));
    max_want = std::fmax(max_want, std::fabs(want->data<float>()[i]));
  }
  const double bound = tol * max_want;
  std::printf("max |diff| = %.3g (bound %.3g, max |want| %.3g): %s\n", max_diff, bound, max_want,
              max_diff <= bound ? "MATCH" : "MISMATCH");
  return max_diff <= bound ? 0 : 1;
}
