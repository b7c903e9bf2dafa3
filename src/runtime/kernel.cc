// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/kernel.h"

namespace hml::runtime {
namespace {
std::string_view CanonicalDomain(std::string_view domain) {
  return domain == "ai.onnx" ? std::string_view() : domain;
}
}  // namespace

Status KernelArgs::Error(std::string_view why) const {
  std::string msg = node->op_type + " '" + node->name + "': ";
  msg += why;
  return InvalidArgumentError(msg);
}

void KernelRegistry::Add(std::string domain, std::string op_type, KernelFactory factory) {
  factories_[{std::string(CanonicalDomain(domain)), std::move(op_type)}] = factory;
}

KernelFactory KernelRegistry::Find(std::string_view domain, std::string_view op_type) const {
  auto it = factories_.find(
      std::pair<std::string, std::string>(CanonicalDomain(domain), op_type));
  return it == factories_.end() ? nullptr : it->second;
}

}  // namespace hml::runtime
