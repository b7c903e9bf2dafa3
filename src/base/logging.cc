// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/logging.h"

#include <cstdio>
#include <mutex>
#include <string>

namespace hml {

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

namespace {

class StderrLoggerImpl final : public Logger {
 public:
  void Write(LogLevel level, std::string_view file, int line, std::string_view message) override {
    const size_t slash = file.rfind('/');
    if (slash != std::string_view::npos) file.remove_prefix(slash + 1);
    std::string text;
    text.reserve(message.size() + file.size() + 16);
    text += LogLevelName(level).front();
    text += ' ';
    text += file;
    text += ':';
    text += std::to_string(line);
    text += "] ";
    text += message;
    text += '\n';
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(text.data(), 1, text.size(), stderr);
  }

 private:
  std::mutex mu_;
};

class NullLoggerImpl final : public Logger {
 public:
  void Write(LogLevel, std::string_view, int, std::string_view) override {}
  LogLevel min_level() const override { return static_cast<LogLevel>(100); }
};

}  // namespace

Logger* StderrLogger() {
  static StderrLoggerImpl* logger = new StderrLoggerImpl();  // never destroyed: usable at exit
  return logger;
}

Logger* NullLogger() {
  static NullLoggerImpl* logger = new NullLoggerImpl();
  return logger;
}

}  // namespace hml
