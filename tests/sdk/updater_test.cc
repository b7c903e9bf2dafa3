// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device updater against an in-process repository (ota::Repository) publishing targets as
// docs/ota.md lays them out, served through fakes for the metadata (Fetcher) and the model files
// (ByteSource), with the install directory in a real temp dir and time on a ManualClock. Every
// failing case checks that the active model is still the one it was.
#include "src/sdk/updater.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <set>

#include "hml/env.h"
#include "hml/runtime/model.h"
#include "src/ota/delta.h"
#include "src/ota/repository.h"
#include "src/ota/rollout.h"
#include "tests/testing/models.h"
#include "tests/testing/ota_fakes.h"

namespace hml::sdk {
namespace {

using ::hml::testing::MapFetcher;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kStart = 1'800'000'000;  // 2027-01-15
constexpr char kModel[] = "student";
constexpr int64_t kChunk = 16 << 10;

ota::KeyPair Key(char seed) { return *ota::KeyPair::FromSeed(std::string(32, seed)); }

// Deterministic pseudo-random bytes (xorshift), so deltas and chunking see realistic data.
std::string Blob(size_t size, uint32_t seed) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

std::string TargetPath(int64_t version) {
  return "targets/" + std::string(kModel) + "/" + std::to_string(version) + ".onnx";
}

// Serves model files by range from a map and records every request. Can lose the connection
// after some bytes, take time per request, or misbehave by sending more than asked.
class MapSource : public ByteSource {
 public:
  struct Request {
    std::string name;
    int64_t offset, max_bytes;
  };
  std::map<std::string, std::string> files;
  std::vector<Request> requests;
  int64_t bytes_served = 0;
  int64_t fail_after_bytes = -1;  // -1: never
  ManualClock* clock = nullptr;
  int64_t nanos_per_request = 0;
  std::set<std::string> endless;  // answered with max_bytes + 4096 bytes, forever

  Result<std::string> FetchRange(const std::string& name, int64_t offset,
                                 int64_t max_bytes) override {
    requests.push_back({name, offset, max_bytes});
    if (clock != nullptr) clock->Advance(nanos_per_request);
    if (fail_after_bytes >= 0 && bytes_served >= fail_after_bytes) {
      return UnavailableError("connection lost");
    }
    if (endless.count(name) > 0) {
      std::string junk(static_cast<size_t>(max_bytes) + 4096, 'x');
      bytes_served += static_cast<int64_t>(junk.size());
      return junk;
    }
    auto it = files.find(name);
    if (it == files.end()) return NotFoundError("no file '" + name + "'");
    if (offset >= static_cast<int64_t>(it->second.size())) return std::string();
    std::string got =
        it->second.substr(static_cast<size_t>(offset), static_cast<size_t>(max_bytes));
    bytes_served += static_cast<int64_t>(got.size());
    return got;
  }
  bool Asked(const std::string& name) const {
    for (const Request& r : requests) {
      if (r.name == name) return true;
    }
    return false;
  }
};

class UpdaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : test) {
      if (c == '/') c = '_';
    }
    dir_ = ::testing::TempDir() + "/sdk_updater_" + test;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto repo = ota::Repository::Create({{Key('r')}, 1}, {{Key('t')}, 1}, {{Key('s')}, 1},
                                        {{Key('x')}, 1}, kStart);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::make_unique<ota::Repository>(std::move(*repo));
    shipped_root_ = repo_->files().at("1.root.json");
    clock_ = std::make_unique<ManualClock>(0, kStart * 1000000);
    Serve();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int64_t Now() const { return clock_->WallMicros() / 1000000; }
  void Serve() {
    fetcher_.files = repo_->files();
    source_.files = repo_->files();
  }
  // Publishes version `version` of the model with its channels (channel -> percent).
  void Publish(int64_t version, const std::string& bytes,
               const std::map<std::string, int64_t>& channels) {
    ota::Json fields = ota::Json::Object{};
    fields["model"] = kModel;
    fields["version"] = version;
    fields["semver"] = "1." + std::to_string(version) + ".0";
    fields["parent"] = version - 1;
    ota::Json::Object ch;
    for (const auto& [name, percent] : channels) ch[name] = percent;
    fields["channels"] = std::move(ch);
    fields["metadata"] = ota::Json::Object{};
    ASSERT_TRUE(repo_
                    ->AddTarget(std::string(kModel) + "/" + std::to_string(version) + ".onnx",
                                bytes, std::move(fields), Now())
                    .ok());
    Serve();
  }
  // Publishes the delta from `from` to `version` (its bytes given, so tests can sign bad ones).
  void PublishDelta(int64_t version, int64_t from, const std::string& delta) {
    ota::Json fields = ota::Json::Object{};
    fields["model"] = kModel;
    fields["version"] = version;
    fields["delta_from"] = from;
    ASSERT_TRUE(repo_->AddTarget(DeltaName(version, from), delta, std::move(fields), Now()).ok());
    Serve();
  }
  static std::string DeltaName(int64_t version, int64_t from) {
    return std::string(kModel) + "/" + std::to_string(version) + ".from-" + std::to_string(from) +
           ".delta";
  }

  UpdaterOptions Options(const std::string& device = "device-1", const std::string& sub = "m") {
    UpdaterOptions o;
    o.device_id = device;
    o.model = kModel;
    o.install_dir = dir_ + "/" + sub;
    o.chunk_bytes = kChunk;
    // A crash simulated at the step named by fail_step_.
    o.fault = [this](std::string_view step) {
      steps_seen_.emplace_back(step);
      if (step == fail_step_) return AbortedError("simulated crash at " + std::string(step));
      return Status::Ok();
    };
    return o;
  }
  std::unique_ptr<ModelUpdater> Open(const UpdaterOptions& options) {
    auto u = ModelUpdater::Open(options, shipped_root_, fetcher_, source_, *clock_);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    return u.ok() ? std::move(*u) : nullptr;
  }
  std::unique_ptr<ModelUpdater> Open() { return Open(Options()); }
  static Result<UpdateResult> Check(ModelUpdater& u) {
    return u.CheckForUpdate({.unmetered = true}, false);
  }
  // Loads, and runs the watched inferences successfully: the active version becomes good.
  static void MarkGood(ModelUpdater& u) {
    ASSERT_FALSE(u.ReportLoadResult(true)->rolled_back);
    for (int i = 0; i < 3; ++i) ASSERT_FALSE(u.ReportInference(true)->rolled_back);
  }
  static std::string ActiveBytes(const ModelUpdater& u) {
    Result<std::string> path = u.ActiveModelPath();
    if (!path.ok()) return "<" + path.status().ToString() + ">";
    return *DefaultEnv()->ReadFile(*path);
  }
  std::set<std::string> Listing(const std::string& sub = "m") const {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/" + sub)) {
      names.insert(e.path().filename().string());
    }
    return names;
  }
  std::string Path(const std::string& name, const std::string& sub = "m") const {
    return dir_ + "/" + sub + "/" + name;
  }
  // Installs `v1` as version 1 and marks it good.
  std::unique_ptr<ModelUpdater> InstallGoodV1(const std::string& v1) {
    Publish(1, v1, {{"stable", 100}});
    std::unique_ptr<ModelUpdater> u = Open();
    EXPECT_NE(u, nullptr);
    if (u == nullptr) return nullptr;
    Result<UpdateResult> r = Check(*u);
    EXPECT_TRUE(r.ok() && r->installed) << r.status().ToString();
    MarkGood(*u);
    return u;
  }

  std::string dir_;
  std::unique_ptr<ota::Repository> repo_;
  std::string shipped_root_;
  MapFetcher fetcher_;
  MapSource source_;
  std::unique_ptr<ManualClock> clock_;
  std::string fail_step_;
  std::vector<std::string> steps_seen_;
};

TEST_F(UpdaterTest, InstallsThePublishedModelAtomicallyAndItLoads) {
  const std::string onnx = testing::Cnn28Onnx();
  Publish(1, onnx, {{"stable", 100}});
  UpdaterOptions options = Options();
  std::vector<std::pair<int64_t, int64_t>> progress;
  options.progress = [&](int64_t done, int64_t total) { progress.emplace_back(done, total); };
  std::unique_ptr<ModelUpdater> u = Open(options);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->ActiveModelPath().status().code(), StatusCode::kNotFound);

  Result<UpdateResult> r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->installed);
  EXPECT_FALSE(r->used_delta);
  EXPECT_EQ(r->active_version, 1);
  EXPECT_EQ(r->bytes_fetched, static_cast<int64_t>(onnx.size()));
  EXPECT_EQ(*u->ActiveModelPath(), Path("student.1.onnx"));
  EXPECT_EQ(ActiveBytes(*u), onnx);
  Result<Model> model = Model::Load(*u->ActiveModelPath());
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  // One progress call per chunk, ending at the full length.
  const int64_t size = static_cast<int64_t>(onnx.size());
  ASSERT_EQ(progress.size(), static_cast<size_t>((size + kChunk - 1) / kChunk));
  EXPECT_EQ(progress.back(), std::make_pair(size, size));
  // Only the model, its pointer and the trusted metadata; no part or temp files.
  EXPECT_EQ(Listing(),
            (std::set<std::string>{"student.1.onnx", "student.active", "student.trust"}));

  // A restart finds the same model; a second check fetches no model bytes.
  u = Open(options);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->active_version(), 1);
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->installed);
  EXPECT_EQ(r->bytes_fetched, 0);
}

TEST_F(UpdaterTest, StagedRolloutPicksPerBucket) {
  // One device inside a 50 % rollout of version 2 and one outside, by their buckets.
  std::string inside, outside;
  for (int i = 0; inside.empty() || outside.empty(); ++i) {
    const std::string id = "device-" + std::to_string(i);
    (ota::RolloutBucket(id, kModel) < 5000 ? inside : outside) = id;
  }
  const std::string v1 = Blob(40000, 1), v2 = Blob(50000, 2);
  Publish(1, v1, {{"stable", 100}});
  Publish(2, v2, {{"stable", 50}});
  std::unique_ptr<ModelUpdater> in = Open(Options(inside, "in"));
  std::unique_ptr<ModelUpdater> out = Open(Options(outside, "out"));
  ASSERT_TRUE(in && out);
  ASSERT_TRUE(Check(*in).ok());
  ASSERT_TRUE(Check(*out).ok());
  EXPECT_EQ(in->active_version(), 2);
  EXPECT_EQ(ActiveBytes(*in), v2);
  EXPECT_EQ(out->active_version(), 1);
  EXPECT_EQ(ActiveBytes(*out), v1);
  // A device on another channel gets nothing.
  UpdaterOptions beta = Options(inside, "beta");
  beta.channel = "beta";
  std::unique_ptr<ModelUpdater> b = Open(beta);
  ASSERT_TRUE(b && Check(*b).ok());
  EXPECT_EQ(b->active_version(), 0);
  // At 100 % the outside device follows.
  Publish(2, v2, {{"stable", 100}});
  ASSERT_TRUE(Check(*out).ok());
  EXPECT_EQ(out->active_version(), 2);
  EXPECT_EQ(ActiveBytes(*out), v2);
}

TEST_F(UpdaterTest, UsesTheDeltaWhenAvailable) {
  const std::string v1 = Blob(200000, 1);
  std::string v2 = v1;
  v2.replace(150000, 3000, Blob(3000, 9));  // "the last layer changed"
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Result<std::string> delta = ota::MakeDelta(v1, v2);
  ASSERT_TRUE(delta.ok());
  Publish(2, v2, {{"stable", 100}});
  PublishDelta(2, 1, *delta);
  source_.requests.clear();

  Result<UpdateResult> r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->installed);
  EXPECT_TRUE(r->used_delta);
  EXPECT_EQ(r->bytes_fetched, static_cast<int64_t>(delta->size()));
  EXPECT_LT(r->bytes_fetched, 20000);
  EXPECT_FALSE(source_.Asked(TargetPath(2))) << "the full file was fetched";
  EXPECT_EQ(ActiveBytes(*u), v2);
  // Version 1 stays as the last good version.
  EXPECT_EQ(Listing(), (std::set<std::string>{"student.1.onnx", "student.2.onnx", "student.active",
                                              "student.trust"}));
}

TEST_F(UpdaterTest, CorruptDeltaFallsBackToTheFullFile) {
  const std::string v1 = Blob(100000, 1);
  std::string v2 = v1;
  v2.replace(50000, 1000, Blob(1000, 9));
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  // Signed, but made against another old file (one already holding v2's changed region, so the
  // delta copies that region instead of carrying it): applied to the real v1 it produces wrong
  // bytes, which zstd's checksum or the sha256 check catches.
  const std::string other_base = v2;  // a copy: zstd finds no prefix matches in aliased buffers
  PublishDelta(2, 1, *ota::MakeDelta(other_base, v2));
  Result<UpdateResult> r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->installed);
  EXPECT_FALSE(r->used_delta);
  EXPECT_THAT(r->delta_fallback_reason, HasSubstr(DeltaName(2, 1)));
  EXPECT_THAT(r->delta_fallback_reason, HasSubstr("DATA_LOSS"));
  EXPECT_TRUE(source_.Asked(TargetPath(2)));
  EXPECT_EQ(ActiveBytes(*u), v2);

  // Version 3's delta is right but the bytes served are tampered with: its own sha256 fails.
  MarkGood(*u);
  std::string v3 = v2;
  v3.replace(10, 100, Blob(100, 11));
  Publish(3, v3, {{"stable", 100}});
  PublishDelta(3, 2, *ota::MakeDelta(v2, v3));
  std::string& served = source_.files.at("targets/" + DeltaName(3, 2));
  served[served.size() / 2] ^= 0x55;
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->used_delta);
  EXPECT_THAT(r->delta_fallback_reason, HasSubstr("sha256"));
  EXPECT_EQ(ActiveBytes(*u), v3);
}

TEST_F(UpdaterTest, ResumesAnInterruptedDownloadAfterARestart) {
  const std::string v1 = Blob(20000, 1), v2 = Blob(200000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  source_.bytes_served = 0;
  source_.fail_after_bytes = 4 * kChunk;
  Result<UpdateResult> r = Check(*u);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(u->active_version(), 1);
  EXPECT_EQ(ActiveBytes(*u), v1);
  EXPECT_EQ(*FileSize(Path("student.2.part")), 4 * kChunk);

  // The app restarts; the partial file survives and the download continues from its end.
  u = Open();
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(ActiveBytes(*u), v1);
  source_.fail_after_bytes = -1;
  source_.bytes_served = 0;
  source_.requests.clear();
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes_fetched, static_cast<int64_t>(v2.size()) - 4 * kChunk);
  EXPECT_LT(source_.bytes_served, static_cast<int64_t>(v2.size()));
  EXPECT_EQ(source_.requests.front().offset, 4 * kChunk);
  EXPECT_EQ(ActiveBytes(*u), v2);
  EXPECT_FALSE(std::filesystem::exists(Path("student.2.part")));
}

TEST_F(UpdaterTest, DeadlineKeepsThePartialFileForTheNextCheck) {
  const std::string v1 = Blob(20000, 1), v2 = Blob(200000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  // 50 s per request against the default 120 s deadline: three requests, then the deadline.
  source_.clock = clock_.get();
  source_.nanos_per_request = int64_t{50} * 1000000000;
  Result<UpdateResult> r = Check(*u);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(TargetPath(2)));
  EXPECT_EQ(ActiveBytes(*u), v1);
  EXPECT_EQ(*FileSize(Path("student.2.part")), 3 * kChunk);

  source_.nanos_per_request = 0;
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes_fetched, static_cast<int64_t>(v2.size()) - 3 * kChunk);
  EXPECT_EQ(ActiveBytes(*u), v2);
}

TEST_F(UpdaterTest, EndlessSourceIsStoppedAtTheDeclaredLength) {
  const std::string v1 = Blob(20000, 1), v2 = Blob(100000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  // Reopened with a progress callback: it reports every byte the updater accepted.
  UpdaterOptions options = Options();
  int64_t accepted = 0;
  options.progress = [&](int64_t done, int64_t total) { accepted = std::max(accepted, done); };
  u = Open(options);
  ASSERT_NE(u, nullptr);
  source_.endless.insert(TargetPath(2));
  source_.requests.clear();
  Result<UpdateResult> r = Check(*u);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(TargetPath(2)));
  // The first oversized answer stops the download; none of its bytes are kept.
  EXPECT_EQ(source_.requests.size(), 1u);
  EXPECT_EQ(accepted, 0);
  EXPECT_EQ(ActiveBytes(*u), v1);
  EXPECT_FALSE(std::filesystem::exists(Path("student.2.part")));

  // A source whose file is longer than the signed one: the tail is never even asked for.
  source_.endless.clear();
  source_.files[TargetPath(2)] = v2 + std::string(1 << 20, 'z');
  source_.requests.clear();
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const MapSource::Request& q : source_.requests) {
    EXPECT_LE(q.offset + q.max_bytes, static_cast<int64_t>(v2.size()));
  }
  EXPECT_EQ(ActiveBytes(*u), v2);
}

TEST_F(UpdaterTest, DeviceConditionsGateTheDownload) {
  Publish(1, Blob(30000, 1), {{"stable", 100}});
  UpdaterOptions options = Options();
  options.require_charging = true;
  std::unique_ptr<ModelUpdater> u = Open(options);
  ASSERT_NE(u, nullptr);
  const std::set<std::string> before = Listing();
  fetcher_.fetched.clear();

  Result<UpdateResult> r = u->CheckForUpdate({.unmetered = false, .charging = false}, false);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("metered"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not charging"));
  r = u->CheckForUpdate({.unmetered = true, .charging = false}, false);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("metered")));
  EXPECT_THAT(fetcher_.fetched, IsEmpty());
  EXPECT_THAT(source_.requests, IsEmpty());
  EXPECT_EQ(Listing(), before);
  EXPECT_EQ(u->active_version(), 0);

  // "Download now" overrides the policy.
  r = u->CheckForUpdate({.unmetered = false, .charging = false}, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(u->active_version(), 1);
  // All conditions met: allowed without the override.
  Publish(2, Blob(30000, 2), {{"stable", 100}});
  r = u->CheckForUpdate({.unmetered = true, .charging = true}, false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(u->active_version(), 2);
}

TEST_F(UpdaterTest, LoadFailureRollsBackAndTheBadVersionIsNotReinstalled) {
  const std::string v1 = Blob(30000, 1), v2 = Blob(30000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  ASSERT_TRUE(Check(*u).ok());
  EXPECT_EQ(ActiveBytes(*u), v2);

  Result<WatchResult> w = u->ReportLoadResult(false);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->rolled_back);
  EXPECT_EQ(w->rejected_version, 2);
  EXPECT_EQ(u->active_version(), 1);
  EXPECT_EQ(ActiveBytes(*u), v1);
  EXPECT_EQ(Listing(),
            (std::set<std::string>{"student.1.onnx", "student.active", "student.trust"}));

  // The rejection survives a restart; the next check keeps version 1 and never fetches 2.
  u = Open();
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->rejected_versions(), std::vector<int64_t>{2});
  source_.requests.clear();
  Result<UpdateResult> r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->installed);
  EXPECT_FALSE(source_.Asked(TargetPath(2)));
  EXPECT_EQ(ActiveBytes(*u), v1);
  // A fixed version 3 is installed normally.
  Publish(3, Blob(30000, 3), {{"stable", 100}});
  ASSERT_TRUE(Check(*u).ok());
  EXPECT_EQ(u->active_version(), 3);
}

TEST_F(UpdaterTest, InferenceFailureWithinTheWatchRollsBack) {
  const std::string v1 = Blob(30000, 1), v2 = Blob(30000, 2), v3 = Blob(30000, 3);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  ASSERT_TRUE(Check(*u).ok());
  ASSERT_FALSE(u->ReportLoadResult(true)->rolled_back);
  ASSERT_FALSE(u->ReportInference(true)->rolled_back);
  Result<WatchResult> w = u->ReportInference(false);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->rolled_back);
  EXPECT_EQ(w->rejected_version, 2);
  EXPECT_EQ(ActiveBytes(*u), v1);
  Result<UpdateResult> r = Check(*u);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->installed);
  EXPECT_EQ(ActiveBytes(*u), v1);

  // After its watched inferences a version is good: a later failure does not roll back.
  Publish(3, v3, {{"stable", 100}});
  ASSERT_TRUE(Check(*u).ok());
  MarkGood(*u);
  w = u->ReportInference(false);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->rolled_back);
  EXPECT_EQ(ActiveBytes(*u), v3);
}

TEST_F(UpdaterTest, VersionRollbackAttackIsRefused) {
  const std::string v1 = Blob(30000, 1), v2 = Blob(30000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  ASSERT_TRUE(Check(*u).ok());
  MarkGood(*u);
  const std::string pointer = *DefaultEnv()->ReadFile(Path("student.active"));

  // Version 2 still lists our channel, yet the metadata would make us pick version 1.
  Publish(2, v2, {{"stable", 0}});
  Result<UpdateResult> r = Check(*u);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("rollback"));
  EXPECT_EQ(ActiveBytes(*u), v2);
  EXPECT_EQ(*DefaultEnv()->ReadFile(Path("student.active")), pointer);

  // The registry's own rollback takes the channel off version 2: going back is then allowed.
  Publish(2, v2, {{"beta", 100}});
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(u->active_version(), 1);
  EXPECT_EQ(ActiveBytes(*u), v1);
}

TEST_F(UpdaterTest, BadPartialFilesAreDeleted) {
  const std::string v1 = Blob(20000, 1), v2 = Blob(100000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  // A partial file of the right size but wrong bytes: the hash check fails and deletes it.
  ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(Path("student.2.part"), Blob(100000, 7)).ok());
  Result<UpdateResult> r = Check(*u);
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  EXPECT_EQ(ActiveBytes(*u), v1);
  EXPECT_FALSE(std::filesystem::exists(Path("student.2.part")));
  // A partial file larger than the declared length is discarded before downloading.
  ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(Path("student.2.part"), Blob(150000, 7)).ok());
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes_fetched, static_cast<int64_t>(v2.size()));
  EXPECT_EQ(ActiveBytes(*u), v2);
}

TEST_F(UpdaterTest, OpenFallsBackWhenTheActiveFileIsDamaged) {
  const std::string v1 = Blob(30000, 1), v2 = Blob(30000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  ASSERT_TRUE(Check(*u).ok());
  u.reset();
  std::ofstream(Path("student.2.onnx"), std::ios::binary | std::ios::trunc) << "garbage";
  u = Open();
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->active_version(), 1);
  EXPECT_EQ(ActiveBytes(*u), v1);
  EXPECT_FALSE(std::filesystem::exists(Path("student.2.onnx")));
}

TEST_F(UpdaterTest, OptionsAreValidated) {
  UpdaterOptions o = Options();
  EXPECT_TRUE(o.Validate().ok());
  o.model = "../evil";
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.chunk_bytes = 0;
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("chunk_bytes"));
  o = Options();
  o.device_id.clear();
  EXPECT_EQ(ModelUpdater::Open(o, shipped_root_, fetcher_, source_, *clock_).status().code(),
            StatusCode::kInvalidArgument);
}

// A crash at each step of an install: the old model stays active (or the new one once the
// switch completed), and after a restart no temp file remains and the update completes.
class UpdaterCrashTest : public UpdaterTest,
                         public ::testing::WithParamInterface<std::string_view> {};

TEST_P(UpdaterCrashTest, CrashLeavesTheOldModelActive) {
  const std::string step(GetParam());
  const std::string v1 = Blob(60000, 1), v2 = Blob(60000, 2);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  Publish(2, v2, {{"stable", 100}});
  fail_step_ = step;
  Result<UpdateResult> r = Check(*u);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted) << r.status().ToString();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(step));
  const bool switched = step == "cleanup";
  const std::string& expected = switched ? v2 : v1;
  EXPECT_EQ(ActiveBytes(*u), expected);
  if (step == "write_temp" || step == "fsync" || step == "rename") {
    EXPECT_TRUE(std::filesystem::exists(Path("student.2.onnx.tmp"))) << "no crash leftovers";
  }
  if (step.starts_with("switch_")) {
    EXPECT_TRUE(std::filesystem::exists(Path("student.active.tmp"))) << "no crash leftovers";
  }

  // Restart: the same model is active, temp files and unreferenced model files are gone.
  u.reset();
  fail_step_.clear();
  u = Open();
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(ActiveBytes(*u), expected);
  for (const std::string& name : Listing()) {
    EXPECT_FALSE(name.ends_with(".tmp")) << name;
    if (!switched) {
      EXPECT_NE(name, "student.2.onnx");
    }
  }
  // The interrupted update completes on the next check.
  r = Check(*u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ActiveBytes(*u), v2);
  EXPECT_EQ(Listing(), (std::set<std::string>{"student.1.onnx", "student.2.onnx", "student.active",
                                              "student.trust"}));
}

INSTANTIATE_TEST_SUITE_P(EachStep, UpdaterCrashTest, ::testing::ValuesIn(kInstallSteps),
                         [](const auto& info) { return std::string(info.param); });

// The same with a real kill: a child process runs the update and SIGKILLs itself at the step
// (no destructors, no cleanup, buffers as the kernel has them); the parent then opens the
// install directory as a restarted app would.
TEST_P(UpdaterCrashTest, KillAtTheStepLeavesTheOldOrTheNewModelNeverAMix) {
  const std::string step(GetParam());
  const std::string v1 = Blob(60000, 1), v2 = Blob(60000, 2);
  {
    std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
    ASSERT_NE(u, nullptr);
  }
  Publish(2, v2, {{"stable", 100}});
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    UpdaterOptions options = Options();
    options.fault = [step](std::string_view at) {
      if (at == step) raise(SIGKILL);
      return Status::Ok();
    };
    auto u = ModelUpdater::Open(options, shipped_root_, fetcher_, source_, *clock_);
    if (u.ok()) (void)(*u)->CheckForUpdate({.unmetered = true}, false);
    _exit(0);  // not reached when the step ran
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << "the child was not killed";
  std::unique_ptr<ModelUpdater> u = Open();
  ASSERT_NE(u, nullptr);
  const std::string active = ActiveBytes(*u);
  EXPECT_TRUE(active == v1 || active == v2) << "neither version is active";
  EXPECT_EQ(active, step == "cleanup" ? v2 : v1);
  for (const std::string& name : Listing()) EXPECT_FALSE(name.ends_with(".tmp")) << name;
  ASSERT_TRUE(Check(*u).ok());
  EXPECT_EQ(ActiveBytes(*u), v2);
}

// Attacks seen through the updater: each check fails with its error kind, the trusted metadata
// file stays byte-identical (except when only the model file was attacked: then the metadata is
// genuine and is trusted) and the active model stays version 1.
struct MetadataAttack {
  const char* name;
  StatusCode code;
  std::function<void(UpdaterTest&)> apply;
  bool metadata_genuine = false;
};

class UpdaterMetadataAttackTest : public UpdaterTest,
                                  public ::testing::WithParamInterface<MetadataAttack> {
 public:
  MapFetcher& fetcher() { return fetcher_; }
  MapSource& source() { return source_; }
  ota::Repository& repo() { return *repo_; }
  ManualClock& clock() { return *clock_; }
};

TEST_P(UpdaterMetadataAttackTest, RefusedWithTrustedFilesAndActiveModelUnchanged) {
  const std::string v1 = Blob(30000, 1);
  std::unique_ptr<ModelUpdater> u = InstallGoodV1(v1);
  ASSERT_NE(u, nullptr);
  const std::string trusted_path = Path("student.trust/trusted.json");
  const std::string trusted = *DefaultEnv()->ReadFile(trusted_path);
  clock_->Advance(int64_t{600} * 1'000'000'000);
  Publish(2, Blob(30000, 2), {{"stable", 100}});
  GetParam().apply(*this);
  Result<UpdateResult> r = Check(*u);
  EXPECT_EQ(r.status().code(), GetParam().code) << r.status().ToString();
  if (!GetParam().metadata_genuine) {
    EXPECT_EQ(*DefaultEnv()->ReadFile(trusted_path), trusted);
  }
  EXPECT_EQ(ActiveBytes(*u), v1);
  EXPECT_EQ(u->active_version(), 1);
}

const MetadataAttack kMetadataAttacks[] = {
    {"TimestampByUnknownKey", StatusCode::kUnauthenticated,
     [](UpdaterTest& t) {
       auto& self = static_cast<UpdaterMetadataAttackTest&>(t);
       ota::TimestampMeta ts = self.repo().timestamp();
       ts.version += 1;
       const ota::KeyPair attacker = Key('a');
       self.fetcher().files["timestamp.json"] =
           ota::SignEnvelope(ts.ToJson(), {&attacker, 1}).Serialize();
     }},
    {"NewTimestampOldSnapshot", StatusCode::kDataLoss,
     [](UpdaterTest& t) {
       auto& self = static_cast<UpdaterMetadataAttackTest&>(t);
       // The snapshot of the repository before version 2: its hash is not the timestamp's.
       ota::SnapshotMeta snap = self.repo().snapshot();
       snap.version -= 1;
       self.fetcher().files["snapshot.json"] =
           ota::SignEnvelope(snap.ToJson(), self.repo().signers(ota::Role::kSnapshot).keys)
               .Serialize();
     }},
    {"FrozenExpiredMetadata", StatusCode::kDeadlineExceeded,
     [](UpdaterTest& t) {
       auto& self = static_cast<UpdaterMetadataAttackTest&>(t);
       self.clock().Advance(int64_t{3} * 86400 * 1'000'000'000);  // past the timestamp's day
     }},
    {"EndlessTimestamp", StatusCode::kResourceExhausted,
     [](UpdaterTest& t) {
       auto& self = static_cast<UpdaterMetadataAttackTest&>(t);
       self.fetcher().files["timestamp.json"] = std::string(int64_t{3} << 20, ' ');
     }},
    {"RootSkippingAVersion", StatusCode::kFailedPrecondition,
     [](UpdaterTest& t) {
       auto& self = static_cast<UpdaterMetadataAttackTest&>(t);
       ota::RootMeta root = self.repo().root();
       root.version = 3;
       self.fetcher().files["2.root.json"] =
           ota::SignEnvelope(root.ToJson(), self.repo().signers(ota::Role::kRoot).keys)
               .Serialize();
     }},
    {"ReplacedModelBytes", StatusCode::kDataLoss,
     [](UpdaterTest& t) {
       auto& self = static_cast<UpdaterMetadataAttackTest&>(t);
       self.source().files["targets/student/2.onnx"] = Blob(30000, 99);
     },
     /*metadata_genuine=*/true},
};

INSTANTIATE_TEST_SUITE_P(Attacks, UpdaterMetadataAttackTest, ::testing::ValuesIn(kMetadataAttacks),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(UpdaterTest, EveryInstallStepIsAFaultPoint) {
  Publish(1, Blob(30000, 1), {{"stable", 100}});
  std::unique_ptr<ModelUpdater> u = Open();
  ASSERT_NE(u, nullptr);
  ASSERT_TRUE(Check(*u).ok());
  std::vector<std::string> distinct;
  for (const std::string& s : steps_seen_) {
    if (distinct.empty() || distinct.back() != s) distinct.push_back(s);
  }
  EXPECT_EQ(distinct, std::vector<std::string>(kInstallSteps.begin(), kInstallSteps.end()));
}

}  // namespace
}  // namespace hml::sdk
