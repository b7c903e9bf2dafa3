// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backend.h"

#include "src/runtime/backends/reference/reference_backend.h"
#ifdef HML_WITH_XNNPACK
#include "src/runtime/backends/xnnpack/xnnpack_backend.h"
#endif

namespace hml::runtime {

void BackendRegistry::Add(std::string name, BackendFactory factory) {
  factories_[std::move(name)] = std::move(factory);
}

bool BackendRegistry::Has(std::string_view name) const {
  return factories_.find(name) != factories_.end();
}

std::vector<std::string> BackendRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

Result<std::unique_ptr<Backend>> BackendRegistry::Create(std::string_view name,
                                                         const BackendOptions& options) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [n, f] : factories_) known += (known.empty() ? "" : ", ") + n;
    return NotFoundError("backend '" + std::string(name) + "' is not registered (known: " +
                         known + ")");
  }
  return it->second(options);
}

void RegisterBuiltinBackends(BackendRegistry& registry) {
  registry.Add("reference", [](const BackendOptions& options) -> Result<std::unique_ptr<Backend>> {
    return CreateReferenceBackend(options);
  });
#ifdef HML_WITH_XNNPACK
  registry.Add("xnnpack", [](const BackendOptions& options) {
    return CreateXnnpackBackend(options);
  });
#endif
}

const BackendRegistry& BuiltinBackends() {
  static const BackendRegistry* registry = [] {
    auto* r = new BackendRegistry();
    RegisterBuiltinBackends(*r);
    return r;
  }();
  return *registry;
}

}  // namespace hml::runtime
