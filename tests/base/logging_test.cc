// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/logging.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

namespace hml {
namespace {

class CapturingLogger : public Logger {
 public:
  void Write(LogLevel level, std::string_view file, int line, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(std::string(LogLevelName(level)) + ":" + std::string(message));
  }
  LogLevel min_level() const override { return LogLevel::kInfo; }
  std::mutex mu;
  std::vector<std::string> lines;
};

TEST(LoggingTest, SinkReceivesFormattedLines) {
  CapturingLogger logger;
  HML_LOG(&logger, kWarning) << "model " << 3 << " has no outputs";
  HML_LOG(&logger, kInfo) << "loaded";
  ASSERT_EQ(logger.lines.size(), 2u);
  EXPECT_EQ(logger.lines[0], "WARNING:model 3 has no outputs");
  EXPECT_EQ(logger.lines[1], "INFO:loaded");
}

TEST(LoggingTest, LinesBelowMinLevelAreNotFormatted) {
  CapturingLogger logger;
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  HML_LOG(&logger, kDebug) << "debug " << count();
  EXPECT_TRUE(logger.lines.empty());
  EXPECT_EQ(evaluated, 0);
}

TEST(LoggingTest, NullLoggerDropsEverything) {
  HML_LOG(NullLogger(), kError) << "dropped";
  SUCCEED();  // nothing to observe but must not crash or print
}

}  // namespace
}  // namespace hml
