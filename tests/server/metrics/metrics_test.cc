// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The metrics registry and its Prometheus text exposition: exact text for a small registry
// (written by hand from the format's description), escaping, cumulative histogram buckets,
// exact sums under concurrent updates, name validation, process metrics from the real procfs
// and from fake files, and the serving metrics helper.
#include "src/server/metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace hml::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

MetricsRegistryOptions NoProcess() {
  MetricsRegistryOptions options;
  options.process_metrics = false;
  return options;
}

TEST(MetricsTest, ExposesSmallRegistryExactly) {
  MetricsRegistry registry(NoProcess());
  // Registered out of order: exposition sorts families by name and children by label values.
  Result<GaugeFamily*> temperature = registry.AddGauge("app_temperature", "Temp.");
  ASSERT_TRUE(temperature.ok()) << temperature.status().ToString();
  Result<CounterFamily*> requests =
      registry.AddCounter("app_requests_total", "Requests.", {"path", "code"});
  ASSERT_TRUE(requests.ok()) << requests.status().ToString();
  Result<HistogramFamily*> latency =
      registry.AddHistogram("app_latency_seconds", "Latency.", {"model"}, {0.1, 0.5, 1});
  ASSERT_TRUE(latency.ok()) << latency.status().ToString();
  // A labelled family without children is left out.
  ASSERT_TRUE(registry.AddGauge("app_empty", "Nothing yet.", {"x"}).ok());

  (*(*requests)->WithLabels({"/b", "200"}))->Increment(2);
  (*(*requests)->WithLabels({"/a", "500"}))->Increment(1.5);
  (*(*temperature)->WithLabels({}))->Set(-3.25);
  Histogram* m = *(*latency)->WithLabels({"m"});
  // Binary fractions, so that the sum is exact.
  for (double v : {0.0625, 0.25, 0.5, 2.0}) m->Observe(v);

  EXPECT_EQ(registry.Expose(),
            "# HELP app_latency_seconds Latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{model=\"m\",le=\"0.1\"} 1\n"
            "app_latency_seconds_bucket{model=\"m\",le=\"0.5\"} 3\n"
            "app_latency_seconds_bucket{model=\"m\",le=\"1\"} 3\n"
            "app_latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"
            "app_latency_seconds_sum{model=\"m\"} 2.8125\n"
            "app_latency_seconds_count{model=\"m\"} 4\n"
            "# HELP app_requests_total Requests.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{path=\"/a\",code=\"500\"} 1.5\n"
            "app_requests_total{path=\"/b\",code=\"200\"} 2\n"
            "# HELP app_temperature Temp.\n"
            "# TYPE app_temperature gauge\n"
            "app_temperature -3.25\n");
}

TEST(MetricsTest, UnlabelledFamiliesStartAtZero) {
  MetricsRegistry registry(NoProcess());
  ASSERT_TRUE(registry.AddCounter("a_total", "A.").ok());
  ASSERT_TRUE(registry.AddHistogram("b", "B.", {}, {}).ok());
  EXPECT_EQ(registry.Expose(),
            "# HELP a_total A.\n"
            "# TYPE a_total counter\n"
            "a_total 0\n"
            "# HELP b B.\n"
            "# TYPE b histogram\n"
            "b_bucket{le=\"+Inf\"} 0\n"
            "b_sum 0\n"
            "b_count 0\n");
}

TEST(MetricsTest, EscapesHelpAndLabelValues) {
  EXPECT_EQ(EscapeHelp("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
  EXPECT_EQ(EscapeLabelValue("a\\b\nc \"q\""), "a\\\\b\\nc \\\"q\\\"");

  MetricsRegistry registry(NoProcess());
  Result<GaugeFamily*> g = registry.AddGauge("g", "Line one\nline \\two", {"v"});
  ASSERT_TRUE(g.ok());
  (*(*g)->WithLabels({"say \"hi\"\\\n"}))->Set(1);
  EXPECT_EQ(registry.Expose(),
            "# HELP g Line one\\nline \\\\two\n"
            "# TYPE g gauge\n"
            "g{v=\"say \\\"hi\\\"\\\\\\n\"} 1\n");
}

TEST(MetricsTest, FormatsValuesAsTheTextFormatExpects) {
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(37), "37");
  EXPECT_EQ(FormatValue(-0.5), "-0.5");
  EXPECT_EQ(FormatValue(400000), "400000");
  EXPECT_EQ(FormatValue(1700000050), "1700000050");
  EXPECT_EQ(FormatValue(1e-7), "1e-07");
  EXPECT_EQ(FormatValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  MetricsRegistry registry(NoProcess());
  Result<HistogramFamily*> h = registry.AddHistogram("h", "H.", {}, {1, 2, 4});
  ASSERT_TRUE(h.ok());
  Histogram* child = *(*h)->WithLabels({});
  // On a bound counts in that bucket (le = less or equal); above the last bound and NaN count
  // only in +Inf.
  for (double v : {0.5, 1.0, 1.5, 2.0, 2.0, 3.0, 100.0}) child->Observe(v);
  child->Observe(NAN);
  const Histogram::Snapshot s = child->Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 5, 6, 8}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_TRUE(std::isnan(s.sum));

  Result<HistogramFamily*> h2 = registry.AddHistogram("h2", "H2.", {}, {1, 2, 4});
  ASSERT_TRUE(h2.ok());
  for (double v : {0.5, 1.0, 1.5, 2.0, 2.0, 3.0, 100.0}) (*(*h2)->WithLabels({}))->Observe(v);
  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("h2_bucket{le=\"1\"} 2\n"
                              "h2_bucket{le=\"2\"} 5\n"
                              "h2_bucket{le=\"4\"} 6\n"
                              "h2_bucket{le=\"+Inf\"} 7\n"
                              "h2_sum 110\n"
                              "h2_count 7\n"));
}

TEST(MetricsTest, SameLabelsGiveSameChildAndCountMismatchIsAnError) {
  MetricsRegistry registry(NoProcess());
  Result<CounterFamily*> c = registry.AddCounter("c_total", "C.", {"model", "version"});
  ASSERT_TRUE(c.ok());
  Result<Counter*> a = (*c)->WithLabels({"m", "1"});
  Result<Counter*> b = (*c)->WithLabels({"m", "1"});
  Result<Counter*> other = (*c)->WithLabels({"m", "2"});
  ASSERT_TRUE(a.ok() && b.ok() && other.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *other);

  Result<Counter*> short_tuple = (*c)->WithLabels({"m"});
  ASSERT_FALSE(short_tuple.ok());
  EXPECT_EQ(short_tuple.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(short_tuple.status().message(), HasSubstr("'c_total'"));
  EXPECT_THAT(short_tuple.status().message(), HasSubstr("model, version"));

  // Counters never go down.
  (*a)->Increment(3);
  (*a)->Increment(-1);
  (*a)->Increment(NAN);
  EXPECT_EQ((*a)->Value(), 3);
}

TEST(MetricsTest, ConcurrentUpdatesFromEightThreadsSumExactly) {
  MetricsRegistry registry(NoProcess());
  Result<CounterFamily*> c = registry.AddCounter("c_total", "C.", {"model"});
  Result<GaugeFamily*> g = registry.AddGauge("g", "G.");
  Result<HistogramFamily*> h = registry.AddHistogram("h", "H.", {"model"}, {0.5});
  ASSERT_TRUE(c.ok() && g.ok() && h.ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Gauge* gauge = *(*g)->WithLabels({});
      for (int i = 0; i < kPerThread; ++i) {
        // Every thread looks the children up each time, so child creation races too.
        (*(*c)->WithLabels({"m"}))->Increment();
        (*(*h)->WithLabels({"m"}))->Observe(t % 2 == 0 ? 0.25 : 1.0);
        gauge->Increment();
        gauge->Decrement();
      }
    });
  }
  // Exposition concurrently with the updates: whole lines, and a histogram's count always equals
  // its +Inf bucket (both come from one snapshot of the buckets).
  const std::regex inf_and_count(
      "h_bucket\\{model=\"m\",le=\"\\+Inf\"\\} (\\d+)\nh_sum\\{model=\"m\"\\} \\S+\n"
      "h_count\\{model=\"m\"\\} (\\d+)\n");
  for (int i = 0; i < 50; ++i) {
    const std::string text = registry.Expose();
    EXPECT_THAT(text, HasSubstr("# TYPE g gauge\n"));
    EXPECT_EQ(text.back(), '\n');
    std::smatch match;
    if (std::regex_search(text, match, inf_and_count)) {
      EXPECT_EQ(match[1], match[2]);
    }
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ((*(*c)->WithLabels({"m"}))->Value(), kThreads * kPerThread);
  EXPECT_EQ((*(*g)->WithLabels({}))->Value(), 0);
  const Histogram::Snapshot s = (*(*h)->WithLabels({"m"}))->Read();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.cumulative[0], uint64_t{kThreads / 2} * kPerThread);
  EXPECT_EQ(s.sum, (kThreads / 2) * kPerThread * 1.25);
  EXPECT_THAT(registry.Expose(), HasSubstr("c_total{model=\"m\"} 400000\n"));
}

TEST(MetricsTest, RejectsInvalidNames) {
  MetricsRegistry registry;
  struct Case {
    std::string name;
    std::vector<std::string> labels;
    std::string expected_in_message;
  };
  const std::vector<Case> cases = {
      {"", {}, "metric name ''"},
      {"9lives_total", {}, "'9lives_total'"},
      {"a-b_total", {}, "'a-b_total'"},
      {"a b_total", {}, "'a b_total'"},
      {"caf\xc3\xa9_total", {}, "'caf\xc3\xa9_total'"},
      {"requests", {}, "must end in _total"},
      {"ok_total", {"__reserved"}, "'__reserved'"},
      {"ok_total", {"a:b"}, "'a:b'"},
      {"ok_total", {"1st"}, "'1st'"},
      {"ok_total", {""}, "label name ''"},
      {"ok_total", {"model", "model"}, "'model' appears twice"},
  };
  for (const Case& c : cases) {
    Result<CounterFamily*> r = registry.AddCounter(c.name, "x", c.labels);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(r.status().message(), HasSubstr(c.expected_in_message)) << c.name;
  }
  // Colons are allowed in metric names (recording rules use them), not in label names.
  EXPECT_TRUE(registry.AddGauge("ns:ratio", "x", {"_private"}).ok());

  Result<HistogramFamily*> le = registry.AddHistogram("lat", "x", {"le"}, {1});
  ASSERT_FALSE(le.ok());
  EXPECT_THAT(le.status().message(), HasSubstr("'le' is reserved"));
  for (const std::vector<double>& bounds :
       std::vector<std::vector<double>>{{1, 1}, {2, 1}, {1, NAN}, {1, INFINITY}}) {
    Result<HistogramFamily*> r = registry.AddHistogram("lat", "x", {}, bounds);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("histogram 'lat'"));
  }

  ASSERT_TRUE(registry.AddGauge("dup", "x").ok());
  Result<GaugeFamily*> dup = registry.AddGauge("dup", "x");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  Result<GaugeFamily*> process = registry.AddGauge("process_open_fds", "x");
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.status().code(), StatusCode::kAlreadyExists);
  // Failed registrations leave nothing behind.
  EXPECT_THAT(registry.Expose(), Not(HasSubstr("# HELP lat ")));
}

TEST(MetricsTest, ProcessMetricsFromProcAreSane) {
  Result<ProcessStats> stats = ReadProcessStats("/proc");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_GT(stats->resident_bytes, 0);
  EXPECT_GE(stats->virtual_bytes, stats->resident_bytes);
  EXPECT_GE(stats->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GE(stats->cpu_seconds, 0);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(stats->start_time_seconds, now + 1);
  EXPECT_GT(stats->start_time_seconds, now - 24 * 3600);

  MetricsRegistry registry;
  ASSERT_TRUE(registry.AddGauge("zzz", "Last.").ok());
  const std::string text = registry.Expose();
  for (std::string_view line :
       {"# TYPE process_cpu_seconds_total counter\n", "# TYPE process_open_fds gauge\n",
        "# TYPE process_resident_memory_bytes gauge\n", "# TYPE process_start_time_seconds gauge\n",
        "# TYPE process_virtual_memory_bytes gauge\n"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  // Sorted among the registry's families.
  EXPECT_LT(text.find("process_virtual_memory_bytes"), text.find("# HELP zzz"));
}

// A procfs look-alike with known contents.
class FakeProc {
 public:
  FakeProc() : dir_(fs::temp_directory_path() / ("hml_fake_proc_" + std::to_string(getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "self" / "fd");
  }
  ~FakeProc() { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::string dir() const { return dir_.string(); }

 private:
  fs::path dir_;
};

TEST(MetricsTest, ProcessMetricsParseFakeProc) {
  FakeProc proc;
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  // Fields 14/15 (utime, stime) = 3 and 2 seconds of ticks, 22 (starttime) = 50 s after boot,
  // 23 (vsize) = 123456789 bytes, 24 (rss) = 1000 pages. The command name holds ") (" to check
  // that fields are counted from the last ')'.
  std::string stat = "4242 (my) (odd proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 ";
  stat += std::to_string(3 * ticks) + " " + std::to_string(2 * ticks) + " 0 0 20 0 1 0 ";
  stat += std::to_string(50 * ticks) + " 123456789 1000 18446744073709551615 1 1 0 0 0\n";
  proc.Write("self/stat", stat);
  proc.Write("stat", "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n");
  for (const char* fd : {"0", "1", "2", "7"}) proc.Write(std::string("self/fd/") + fd, "");

  Result<ProcessStats> stats = ReadProcessStats(proc.dir());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->cpu_seconds, 5);
  EXPECT_EQ(stats->start_time_seconds, 1700000050);
  EXPECT_EQ(stats->virtual_bytes, 123456789);
  EXPECT_EQ(stats->resident_bytes, 1000.0 * page);
  EXPECT_EQ(stats->open_fds, 4);

  MetricsRegistryOptions options;
  options.proc_dir = proc.dir();
  MetricsRegistry registry(options);
  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("\nprocess_cpu_seconds_total 5\n"));
  EXPECT_THAT(text, HasSubstr("\nprocess_open_fds 4\n"));
  EXPECT_THAT(text, HasSubstr("\nprocess_start_time_seconds 1700000050\n"));
  EXPECT_THAT(text, HasSubstr("\nprocess_virtual_memory_bytes 123456789\n"));

  // Unparseable or missing files are errors naming the file, and exposition leaves the process
  // metrics out rather than exposing wrong values.
  proc.Write("self/stat", "4242 (x) S 1 2 3\n");
  Result<ProcessStats> short_stat = ReadProcessStats(proc.dir());
  ASSERT_FALSE(short_stat.ok());
  EXPECT_EQ(short_stat.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(short_stat.status().message(), HasSubstr("self/stat"));
  EXPECT_THAT(registry.Expose(), Not(HasSubstr("process_")));
  Result<ProcessStats> missing = ReadProcessStats(proc.dir() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(MetricsTest, ServingMetricsRecordTheConventionalSeries) {
  MetricsRegistry registry(NoProcess());
  Result<std::unique_ptr<ServingMetrics>> serving = ServingMetrics::Create(registry);
  ASSERT_TRUE(serving.ok()) << serving.status().ToString();
  Result<ModelMetrics*> m = (*serving)->ForModel("cnn", "3");
  Result<ModelMetrics*> again = (*serving)->ForModel("cnn", "3");
  ASSERT_TRUE(m.ok() && again.ok());
  EXPECT_EQ(*m, *again);

  (*m)->RecordRequest(ServingProtocol::kHttp, StatusCode::kOk);
  (*m)->RecordRequest(ServingProtocol::kHttp, StatusCode::kOk);
  (*m)->RecordRequest(ServingProtocol::kGrpc, StatusCode::kOk);
  (*m)->RecordRequest(ServingProtocol::kGrpc, StatusCode::kResourceExhausted);
  (*m)->RecordRejected(ServingProtocol::kGrpc);
  (*m)->ObserveQueueTime(0.002);
  (*m)->ObserveComputeTime(0.03);
  (*m)->ObserveBatchSize(3);

  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("# TYPE hml_inference_requests_total counter\n"
                              "hml_inference_requests_total{model=\"cnn\",version=\"3\","
                              "protocol=\"grpc\",code=\"OK\"} 1\n"
                              "hml_inference_requests_total{model=\"cnn\",version=\"3\","
                              "protocol=\"grpc\",code=\"RESOURCE_EXHAUSTED\"} 1\n"
                              "hml_inference_requests_total{model=\"cnn\",version=\"3\","
                              "protocol=\"http\",code=\"OK\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE hml_inference_failures_total counter\n"
                              "hml_inference_failures_total{model=\"cnn\",version=\"3\","
                              "protocol=\"grpc\",code=\"RESOURCE_EXHAUSTED\"} 1\n# "));
  EXPECT_THAT(text, HasSubstr("hml_inference_rejected_total{model=\"cnn\",version=\"3\","
                              "protocol=\"grpc\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("hml_inference_queue_time_seconds_bucket{model=\"cnn\","
                              "version=\"3\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("hml_inference_compute_time_seconds_bucket{model=\"cnn\","
                              "version=\"3\",le=\"0.025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("hml_inference_batch_size_bucket{model=\"cnn\",version=\"3\","
                              "le=\"2\"} 0\n"
                              "hml_inference_batch_size_bucket{model=\"cnn\",version=\"3\","
                              "le=\"4\"} 1\n"));
  // A split request is a request too, and is counted in its own series.
  (*m)->RecordSplitRequest(ServingProtocol::kHttp, StatusCode::kInvalidArgument);
  const std::string split_text = registry.Expose();
  EXPECT_THAT(split_text,
              HasSubstr("# TYPE hml_inference_split_requests_total counter\n"
                        "hml_inference_split_requests_total{model=\"cnn\",version=\"3\","
                        "protocol=\"http\",code=\"INVALID_ARGUMENT\"} 1\n"));
  EXPECT_THAT(split_text, HasSubstr("hml_inference_requests_total{model=\"cnn\",version=\"3\","
                                    "protocol=\"http\",code=\"INVALID_ARGUMENT\"} 1\n"));
  EXPECT_THAT(split_text, HasSubstr("hml_inference_failures_total{model=\"cnn\",version=\"3\","
                                    "protocol=\"http\",code=\"INVALID_ARGUMENT\"} 1\n"));
  // A loaded version's histograms are exposed before its first request.
  ASSERT_TRUE((*serving)->ForModel("idle", "1").ok());
  EXPECT_THAT(registry.Expose(),
              HasSubstr("hml_inference_batch_size_count{model=\"idle\",version=\"1\"} 0\n"));

  Result<std::unique_ptr<ServingMetrics>> twice = ServingMetrics::Create(registry);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace hml::server
