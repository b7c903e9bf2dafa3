// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Logging through an injected sink. Components take a `Logger*` in their options (default:
// StderrLogger()), so tests capture messages and apps route them to logcat / os_log.
#ifndef HML_LOGGING_H_
#define HML_LOGGING_H_

#include <sstream>
#include <string_view>

namespace hml {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

std::string_view LogLevelName(LogLevel level);

// A destination for log lines. Implementations must be thread-safe: Write() may be called
// from several threads at once.
class Logger {
 public:
  virtual ~Logger() = default;
  // `message` is one line without a trailing newline.
  virtual void Write(LogLevel level, std::string_view file, int line, std::string_view message) = 0;
  // Lines below this level are dropped before formatting. Default: kInfo.
  virtual LogLevel min_level() const { return LogLevel::kInfo; }
};

// A process-lifetime logger writing "I file:line] message" lines to stderr. Thread-safe.
Logger* StderrLogger();
// A logger that drops everything.
Logger* NullLogger();

namespace internal {
// Builds one log line and hands it to the logger when destroyed.
class LogMessage {
 public:
  LogMessage(Logger* logger, LogLevel level, const char* file, int line)
      : logger_(logger), level_(level), file_(file), line_(line) {}
  ~LogMessage() { logger_->Write(level_, file_, line_, stream_.str()); }
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  Logger* logger_;
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace hml

// HML_LOG(logger, kWarning) << "model " << name << " has no outputs";
// `logger` may be null, in which case the line goes to StderrLogger().
#define HML_LOG(logger, level)                                                         \
  for (::hml::Logger* hml_logger_ = (logger) ? (logger) : ::hml::StderrLogger();       \
       hml_logger_ != nullptr && ::hml::LogLevel::level >= hml_logger_->min_level();  \
       hml_logger_ = nullptr)                                                          \
  ::hml::internal::LogMessage(hml_logger_, ::hml::LogLevel::level, __FILE__, __LINE__).stream()

#endif  // HML_LOGGING_H_
