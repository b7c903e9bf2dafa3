// Loads an ONNX model with the installed hybridml, runs it once on ones, prints the first output.
#include <cstdio>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL.onnx\n");
    return 2;
  }
  auto model = hml::Model::Load(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  auto session = hml::Session::Create(*model);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().ToString().c_str());
    return 1;
  }
  hml::Tensor& in = (*session)->input(0);
  for (int64_t i = 0; i < in.num_elements(); ++i) in.data<float>()[i] = i % 2 ? 1.0f : -1.0f;
  hml::Status s = (*session)->Run();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const hml::Tensor& out = (*session)->output(0);
  std::printf("output[0]=%g output[1]=%g elements=%lld\n", out.data<float>()[0],
              out.data<float>()[1], static_cast<long long>(out.num_elements()));
  return 0;
}
