// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// ota_delta: what an over-the-air update costs as a zstd delta patch (src/ota/delta.h) against a
// full download. Target (issue 4): for a model whose last layer was fine-tuned, the delta is at
// most 25 % of the full int8 student file. bench/run_ota_delta.sh builds that scenario.
//
//   ota_delta OLD NEW [--level N] [--repeat N] [--json PATH]
//
// Sizes: OLD and NEW raw; "full zstd" is NEW compressed alone with the delta's own settings
// (MakeDelta with an empty old file: same level, long-distance matching, checksum), i.e. the best
// a full download compressed the same way can do; "delta" is MakeDelta(OLD, NEW). Ratios: delta
// against raw NEW (the target's measure) and against full zstd (what the prefix adds over plain
// compression). Times: best of --repeat runs of MakeDelta and ApplyDelta, wall clock, 1 thread.
// ApplyDelta's output is compared with NEW byte for byte; a mismatch exits with status 1.
//
// Prints one table; with --json PATH also writes the numbers as JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "hml/env.h"
#include "hml/status.h"
#include "src/ota/delta.h"

namespace hml::bench {
namespace {

constexpr char kUsage[] = R"(usage: ota_delta OLD NEW [options]
  --level N     zstd level of the delta and of the full-file baseline (default 19)
  --repeat N    timed runs of MakeDelta and ApplyDelta, best kept (default 3)
  --json PATH   also write the results as JSON
)";

struct Flags {
  std::string old_path;
  std::string new_path;
  int level = ota::DeltaOptions{}.level;
  int repeat = 3;
  std::string json_path;
};

Result<int> ParseInt(const std::string& flag, const std::string& v, int min, int max) {
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || n < min || n > max) {
    return InvalidArgumentError(flag + ": '" + v + "' is not an integer in [" +
                                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int>(n);
}

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return InvalidArgumentError(arg + " needs a value");
      return std::string(argv[++i]);
    };
    if (arg == "--level") {
      HML_ASSIGN_OR_RETURN(const std::string v, next());
      HML_ASSIGN_OR_RETURN(f.level, ParseInt(arg, v, 1, 22));
    } else if (arg == "--repeat") {
      HML_ASSIGN_OR_RETURN(const std::string v, next());
      HML_ASSIGN_OR_RETURN(f.repeat, ParseInt(arg, v, 1, 1000));
    } else if (arg == "--json") {
      HML_ASSIGN_OR_RETURN(f.json_path, next());
    } else if (arg.starts_with("--") || positional >= 2) {
      return InvalidArgumentError("unexpected argument '" + arg + "'\n" + kUsage);
    } else {
      (positional++ == 0 ? f.old_path : f.new_path) = arg;
    }
  }
  if (positional != 2) return InvalidArgumentError(std::string("need OLD and NEW\n") + kUsage);
  return f;
}

struct Measurement {
  int64_t old_bytes = 0;
  int64_t new_bytes = 0;
  int64_t full_zstd_bytes = 0;
  int64_t delta_bytes = 0;
  double make_ms = 0;   // best MakeDelta time
  double apply_ms = 0;  // best ApplyDelta time
  bool verified = false;

  double DeltaVsNew() const { return static_cast<double>(delta_bytes) / new_bytes; }
  double DeltaVsFullZstd() const { return static_cast<double>(delta_bytes) / full_zstd_bytes; }
};

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

Result<Measurement> Measure(const Flags& f, const std::string& old_file,
                            const std::string& new_file) {
  const ota::DeltaOptions options{.level = f.level};
  Measurement m;
  m.old_bytes = static_cast<int64_t>(old_file.size());
  m.new_bytes = static_cast<int64_t>(new_file.size());
  HML_ASSIGN_OR_RETURN(const std::string full, ota::MakeDelta("", new_file, options));
  m.full_zstd_bytes = static_cast<int64_t>(full.size());

  std::string delta;
  m.make_ms = 1e300;
  for (int r = 0; r < f.repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    HML_ASSIGN_OR_RETURN(delta, ota::MakeDelta(old_file, new_file, options));
    m.make_ms = std::min(m.make_ms, MillisecondsSince(start));
  }
  m.delta_bytes = static_cast<int64_t>(delta.size());

  std::string applied;
  m.apply_ms = 1e300;
  for (int r = 0; r < f.repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    HML_ASSIGN_OR_RETURN(applied, ota::ApplyDelta(old_file, delta, m.new_bytes));
    m.apply_ms = std::min(m.apply_ms, MillisecondsSince(start));
  }
  m.verified = applied == new_file;
  return m;
}

// A JSON string literal (paths may hold quotes or backslashes).
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Status WriteJson(const Flags& f, const Measurement& m) {
  const std::filesystem::path path(f.json_path);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(f.json_path);
  if (!out) return PermissionDeniedError("cannot write " + f.json_path);
  out << "{\n  \"benchmark\": \"ota_delta\",\n";
  out << "  \"target\": \"delta_vs_new <= 0.25 for a model whose last layer was fine-tuned\",\n";
  out << "  \"old\": " << Quote(f.old_path) << ",\n  \"new\": " << Quote(f.new_path) << ",\n";
  out << "  \"level\": " << f.level << ",\n  \"repeat\": " << f.repeat << ",\n";
  out << "  \"old_bytes\": " << m.old_bytes << ",\n  \"new_bytes\": " << m.new_bytes << ",\n";
  out << "  \"full_zstd_bytes\": " << m.full_zstd_bytes << ",\n";
  out << "  \"delta_bytes\": " << m.delta_bytes << ",\n";
  out << "  \"delta_vs_new\": " << m.DeltaVsNew() << ",\n";
  out << "  \"delta_vs_full_zstd\": " << m.DeltaVsFullZstd() << ",\n";
  out << "  \"make_ms\": " << m.make_ms << ",\n  \"apply_ms\": " << m.apply_ms << ",\n";
  out << "  \"verified\": " << (m.verified ? "true" : "false") << "\n}\n";
  if (!out) return DataLossError("writing " + f.json_path + " failed");
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Result<Flags> flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "ota_delta: %s\n", std::string(flags.status().message()).c_str());
    return 2;
  }
  const int64_t max_file_bytes = ota::DeltaOptions{}.max_input_bytes;
  Result<std::string> old_file = DefaultEnv()->ReadFile(flags->old_path, max_file_bytes);
  Result<std::string> new_file = DefaultEnv()->ReadFile(flags->new_path, max_file_bytes);
  for (const Status& s : {old_file.status(), new_file.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "ota_delta: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  if (new_file->empty()) {
    std::fprintf(stderr, "ota_delta: %s is empty; ratios need a non-empty NEW\n",
                 flags->new_path.c_str());
    return 1;
  }
  Result<Measurement> m = Measure(*flags, *old_file, *new_file);
  if (!m.ok()) {
    std::fprintf(stderr, "ota_delta: %s\n", m.status().ToString().c_str());
    return 1;
  }
  std::printf("old  %s\nnew  %s\nzstd level %d, best of %d runs\n\n", flags->old_path.c_str(),
              flags->new_path.c_str(), flags->level, flags->repeat);
  std::printf("%10s %10s %10s %10s %10s %10s %10s %10s %8s\n", "old B", "new B", "full zstd",
              "delta B", "delta/new", "delta/zstd", "make ms", "apply ms", "applied");
  std::printf("%10lld %10lld %10lld %10lld %9.2f%% %9.2f%% %10.2f %10.3f %8s\n",
              static_cast<long long>(m->old_bytes), static_cast<long long>(m->new_bytes),
              static_cast<long long>(m->full_zstd_bytes), static_cast<long long>(m->delta_bytes),
              100.0 * m->DeltaVsNew(), 100.0 * m->DeltaVsFullZstd(), m->make_ms, m->apply_ms,
              m->verified ? "exact" : "MISMATCH");
  if (!flags->json_path.empty()) {
    if (Status s = WriteJson(*flags, *m); !s.ok()) {
      std::fprintf(stderr, "ota_delta: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  if (!m->verified) {
    std::fprintf(stderr, "ota_delta: ApplyDelta did not reproduce %s\n", flags->new_path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace hml::bench

int main(int argc, char** argv) { return hml::bench::Main(argc, argv); }
