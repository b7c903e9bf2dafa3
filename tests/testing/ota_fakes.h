// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Fakes of the OTA transport for tests of ota::Client and of the device updater.
#ifndef HML_TESTS_TESTING_OTA_FAKES_H_
#define HML_TESTS_TESTING_OTA_FAKES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hml/status.h"
#include "src/ota/client.h"

namespace hml::testing {

// Serves metadata files from a map (usually a copy of an ota::Repository's files, which tests
// may replace or add to in order to attack the client) and records every name asked for.
class MapFetcher : public ota::Fetcher {
 public:
  std::map<std::string, std::string> files;
  std::vector<std::string> fetched;

  Result<std::string> Fetch(const std::string& name, int64_t max_bytes) override {
    fetched.push_back(name);
    auto it = files.find(name);
    if (it == files.end()) return NotFoundError("no file '" + name + "'");
    if (static_cast<int64_t>(it->second.size()) > max_bytes) {
      return ResourceExhaustedError("'" + name + "' exceeds " + std::to_string(max_bytes) +
                                    " bytes");
    }
    return it->second;
  }
};

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_OTA_FAKES_H_
