// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/store/bounded_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/sdk/store/store_test_util.h"

namespace hml::sdk {
namespace {

using ::hml::sdk::testing::KeyOf;
using ::hml::sdk::testing::RawQuery;
using ::hml::sdk::testing::TempFolder;
using ::testing::HasSubstr;

class BoundedQueueTest : public ::testing::Test {
 protected:
  BoundedQueueTest() : folder_("bounded_queue_test"), provider_(KeyOf('q')) {
    path_ = folder_.path() + "/store.db";
  }

  void OpenStore() {
    EncryptedStoreOptions options;
    options.keys = &provider_;
    options.device_id = "device-Q";
    Result<std::unique_ptr<EncryptedStore>> store = EncryptedStore::Open(path_, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  std::unique_ptr<BoundedQueue> MakeQueue(int64_t max_records, int64_t max_bytes,
                                          OverflowPolicy overflow) {
    BoundedQueueOptions options;
    options.table = "collected";
    options.max_records = max_records;
    options.max_bytes = max_bytes;
    options.overflow = overflow;
    Result<std::unique_ptr<BoundedQueue>> queue = BoundedQueue::Create(store_.get(), options);
    EXPECT_TRUE(queue.ok()) << queue.status().ToString();
    return queue.ok() ? std::move(*queue) : nullptr;
  }

  std::vector<std::string> Payloads(BoundedQueue& queue) {
    Result<std::vector<StoredRecord>> records = queue.Peek(100);
    EXPECT_TRUE(records.ok()) << records.status().ToString();
    std::vector<std::string> out;
    if (!records.ok()) return out;
    for (const StoredRecord& record : *records) out.push_back(record.payload);
    return out;
  }

  TempFolder folder_;
  std::string path_;
  FixedKeyProvider provider_;
  std::unique_ptr<EncryptedStore> store_;
};

TEST_F(BoundedQueueTest, DropOldestKeepsNewestAndCountsDrops) {
  OpenStore();
  auto queue = MakeQueue(3, 1000, OverflowPolicy::kDropOldest);
  ASSERT_NE(queue, nullptr);
  for (const char* payload : {"a", "b", "c", "d", "e"}) ASSERT_TRUE(queue->Enqueue(payload).ok());
  EXPECT_EQ(Payloads(*queue), (std::vector<std::string>{"c", "d", "e"}));
  TableStats stats = *queue->Stats();
  EXPECT_EQ(stats.records, 3);
  EXPECT_EQ(stats.bytes, 3);
  EXPECT_EQ(stats.dropped, 2);
  EXPECT_EQ(stats.rejected, 0);
}

TEST_F(BoundedQueueTest, DropOldestByBytes) {
  OpenStore();
  auto queue = MakeQueue(100, 10, OverflowPolicy::kDropOldest);
  ASSERT_NE(queue, nullptr);
  ASSERT_TRUE(queue->Enqueue("1234").ok());
  ASSERT_TRUE(queue->Enqueue("5678").ok());
  ASSERT_TRUE(queue->Enqueue("abcdef").ok());  // 14 bytes > 10: dropping "1234" is enough
  EXPECT_EQ(Payloads(*queue), (std::vector<std::string>{"5678", "abcdef"}));
  EXPECT_EQ(queue->Stats()->dropped, 1);
  EXPECT_EQ(queue->Stats()->bytes, 10);
  ASSERT_TRUE(queue->Enqueue("ABCDEFGHI").ok());  // 19 bytes: both older records must go
  EXPECT_EQ(Payloads(*queue), (std::vector<std::string>{"ABCDEFGHI"}));
  EXPECT_EQ(queue->Stats()->dropped, 3);
  EXPECT_EQ(queue->Stats()->bytes, 9);
}

TEST_F(BoundedQueueTest, RejectNewRefusesAndCounts) {
  OpenStore();
  auto queue = MakeQueue(2, 1000, OverflowPolicy::kRejectNew);
  ASSERT_NE(queue, nullptr);
  const int64_t first = *queue->Enqueue("a");
  ASSERT_TRUE(queue->Enqueue("b").ok());
  Result<int64_t> refused = queue->Enqueue("c");
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("table 'collected'"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("reject-new"));
  EXPECT_EQ(Payloads(*queue), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(queue->Stats()->rejected, 1);
  EXPECT_EQ(queue->Stats()->dropped, 0);
  // Acking makes room.
  const int64_t ack[] = {first};
  EXPECT_EQ(*queue->Ack(ack), 1);
  ASSERT_TRUE(queue->Enqueue("c").ok());
  EXPECT_EQ(Payloads(*queue), (std::vector<std::string>{"b", "c"}));
}

TEST_F(BoundedQueueTest, OversizedRecordIsRejectedUnderEitherPolicy) {
  OpenStore();
  auto queue = MakeQueue(10, 4, OverflowPolicy::kDropOldest);
  ASSERT_NE(queue, nullptr);
  ASSERT_TRUE(queue->Enqueue("ab").ok());
  EXPECT_EQ(queue->Enqueue("too long").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(Payloads(*queue), (std::vector<std::string>{"ab"}));  // nothing dropped for it
  EXPECT_EQ(queue->Stats()->rejected, 1);
  EXPECT_EQ(queue->Stats()->dropped, 0);
}

TEST_F(BoundedQueueTest, CountsSurviveReopen) {
  OpenStore();
  {
    auto queue = MakeQueue(1, 100, OverflowPolicy::kDropOldest);
    ASSERT_NE(queue, nullptr);
    for (const char* payload : {"a", "b", "c"}) ASSERT_TRUE(queue->Enqueue(payload).ok());
  }
  store_.reset();
  OpenStore();
  auto queue = MakeQueue(1, 100, OverflowPolicy::kDropOldest);
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->Stats()->dropped, 2);
  EXPECT_EQ(Payloads(*queue), (std::vector<std::string>{"c"}));
}

TEST_F(BoundedQueueTest, ValidatesOptions) {
  OpenStore();
  BoundedQueueOptions options;
  options.table = "bad table";
  EXPECT_EQ(BoundedQueue::Create(store_.get(), options).status().code(),
            StatusCode::kInvalidArgument);
  options.table = "ok";
  options.max_records = 0;
  EXPECT_EQ(BoundedQueue::Create(store_.get(), options).status().code(),
            StatusCode::kInvalidArgument);
}

// ---- Crash consistency: a writer SIGKILLed at random points.

// What the child reports for each acknowledged record.
struct Ack {
  int64_t id;
  int64_t round;
  int64_t seq;
};

std::string PayloadOf(int64_t round, int64_t seq) {
  return "round " + std::to_string(round) + " seq " + std::to_string(seq) + " " +
         std::string(static_cast<size_t>(40 + (seq * 37) % 400), 'p');
}

// The child: enqueue until killed; after each Enqueue returns OK, report it on `fd`.
[[noreturn]] void WriterChild(const std::string& path, int64_t round, int fd) {
  FixedKeyProvider provider(KeyOf('q'));
  EncryptedStoreOptions options;
  options.keys = &provider;
  options.device_id = "device-Q";
  Result<std::unique_ptr<EncryptedStore>> store = EncryptedStore::Open(path, options);
  if (!store.ok()) _exit(2);
  BoundedQueueOptions queue_options;
  queue_options.table = "collected";
  queue_options.max_records = 1 << 30;  // never full: every acked record must stay
  queue_options.max_bytes = int64_t{1} << 40;
  queue_options.overflow = OverflowPolicy::kRejectNew;
  Result<std::unique_ptr<BoundedQueue>> queue = BoundedQueue::Create(store->get(), queue_options);
  if (!queue.ok()) _exit(3);
  for (int64_t seq = 0; seq < 1000000; ++seq) {
    Result<int64_t> id = (*queue)->Enqueue(PayloadOf(round, seq));
    if (!id.ok()) _exit(4);
    const Ack ack{*id, round, seq};
    // sizeof(Ack) < PIPE_BUF: the write is atomic, a kill never leaves half an ack.
    if (write(fd, &ack, sizeof(ack)) != static_cast<ssize_t>(sizeof(ack))) _exit(5);
  }
  _exit(0);
}

int Iterations() {
  const char* env = getenv("HML_STORE_CRASH_ITERATIONS");
  if (env != nullptr && atoi(env) > 0) return atoi(env);
  return 50;
}

TEST_F(BoundedQueueTest, AcknowledgedRecordsSurviveSigkill) {
  const int iterations = Iterations();
  const unsigned seed = 20261126;
  std::mt19937 random(seed);
  // Kill after 0-50 ms: sometimes before or while the store opens, mostly in the middle of a
  // commit (its WAL fsync is where the writer spends its time).
  std::uniform_int_distribution<int> delay_us(0, 50000);
  std::map<int64_t, std::pair<int64_t, int64_t>> acked;  // id -> (round, seq)
  int64_t unacked_present = 0;
  for (int round = 0; round < iterations; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      WriterChild(path_, round, fds[1]);
    }
    close(fds[1]);
    const int delay = delay_us(random);
    const timespec pause{0, static_cast<long>(delay) * 1000};
    nanosleep(&pause, nullptr);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        << "round " << round << ": the writer exited by itself with status "
        << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    Ack ack;
    ssize_t n;
    while ((n = read(fds[0], &ack, sizeof(ack))) == static_cast<ssize_t>(sizeof(ack))) {
      ASSERT_EQ(ack.round, round);
      ASSERT_TRUE(acked.emplace(ack.id, std::make_pair(ack.round, ack.seq)).second)
          << "record id " << ack.id << " acknowledged twice";
    }
    ASSERT_EQ(n, 0) << "a partial ack in the pipe";
    close(fds[0]);

    // The file is consistent and every acknowledged record is there, exactly once.
    ASSERT_EQ(RawQuery(path_, "PRAGMA integrity_check"), "ok") << "round " << round;
    OpenStore();
    std::map<std::string, int> seen;
    int64_t rows = 0;
    int64_t after = 0;
    while (true) {
      Result<std::vector<StoredRecord>> page = store_->Scan("collected", after, 5000);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      if (page->empty()) break;
      for (const StoredRecord& record : *page) {
        ++seen[record.payload];
        ++rows;
        after = record.id;
      }
    }
    for (const auto& [payload, count] : seen) ASSERT_EQ(count, 1) << "duplicate record";
    for (const auto& [id, where] : acked) {
      Result<std::string> got = store_->Get("collected", id);
      ASSERT_TRUE(got.ok()) << "round " << round << ": acknowledged record " << id
                            << " lost: " << got.status().ToString();
      ASSERT_EQ(*got, PayloadOf(where.first, where.second));
    }
    // The counts kept with the records match the records.
    EXPECT_EQ(*store_->Count("collected"), rows) << "round " << round;
    // At most one committed-but-unacknowledged record per kill (killed between commit and ack).
    unacked_present = rows - static_cast<int64_t>(acked.size());
    ASSERT_GE(unacked_present, 0);
    ASSERT_LE(unacked_present, round + 1);
    store_.reset();
  }
  RecordProperty("acknowledged", static_cast<int>(acked.size()));
  std::printf(
      "%d kills (seed %u): %zu acknowledged records, all present once; %lld committed "
      "but unacknowledged\n",
      iterations, seed, acked.size(), static_cast<long long>(unacked_present));
  EXPECT_GT(acked.size(), static_cast<size_t>(iterations) / 2);
}

}  // namespace
}  // namespace hml::sdk
