// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Slow clients against the HTTP front end: a request dribbled and then stalled, through a raw
// socket, is cut off by the read timeout (and its connection closed after the keep-alive
// timeout), and the server keeps answering everyone else meanwhile; stalled clients on every
// worker delay the others by at most those timeouts.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "src/server/http/http_server.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/model_repository.h"

namespace hml::server {
namespace {

using Clock = std::chrono::steady_clock;

// A client that sends `prefix` and then nothing.
class StalledClient {
 public:
  StalledClient(int port, const std::string& prefix) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                 send(fd_, prefix.data(), prefix.size(), 0) == static_cast<ssize_t>(prefix.size());
  }
  ~StalledClient() { close(fd_); }
  bool connected() const { return connected_; }
  const std::string& received() const { return received_; }
  std::chrono::milliseconds first_byte() const { return first_byte_; }

  // Blocks until the server closes the connection (or `limit` passes); returns the time waited.
  // Whatever the server sends before closing is ignored.
  std::chrono::milliseconds WaitForClose(std::chrono::milliseconds limit) {
    const auto start = Clock::now();
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(limit.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((limit.count() % 1000) * 1000);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buffer[256];
    ssize_t n;
    while ((n = recv(fd_, buffer, sizeof(buffer), 0)) > 0) {
      received_.append(buffer, static_cast<size_t>(n));
      if (first_byte_.count() == 0) {
        first_byte_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      }
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
  std::chrono::milliseconds first_byte_{0};
};

constexpr char kPartialInfer[] =
    "POST /v2/models/m/infer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    "Content-Length: 1000\r\n\r\n{\"inputs\": [";

class SlowClientTest : public ::testing::Test {
 protected:
  void Start(int threads) {
    HttpServerOptions options;
    options.threads = threads;
    options.read_timeout_millis = 300;
    options.keep_alive_timeout_millis = 1000;
    server_ = std::make_unique<HttpServer>(repository_, metrics_, options);
    ASSERT_TRUE(server_->Start().ok());
  }
  ModelRepository repository_;
  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(SlowClientTest, AStalledRequestIsCutOffWhileOthersAreServed) {
  Start(/*threads=*/2);
  StalledClient slow(server_->port(), kPartialInfer);
  ASSERT_TRUE(slow.connected());
  // While the stalled request holds one worker, the other serves normal clients at once.
  httplib::Client client("127.0.0.1", server_->port());
  for (int i = 0; i < 5; ++i) {
    auto res = client.Get("/healthz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
  // The server answers 400 after the 300 ms read timeout and closes the connection once the
  // 1 s keep-alive wait for a next request has passed.
  const auto waited = slow.WaitForClose(std::chrono::milliseconds(5000));
  EXPECT_NE(slow.received().find("400 Bad Request"), std::string::npos) << slow.received();
  EXPECT_GE(slow.first_byte().count(), 250);
  EXPECT_LT(slow.first_byte().count(), 1000);
  EXPECT_LT(waited.count(), 2500) << slow.received();
}

TEST_F(SlowClientTest, StalledClientsOnEveryWorkerDelayOthersOnlyByTheTimeouts) {
  Start(/*threads=*/2);
  std::vector<std::unique_ptr<StalledClient>> slow;
  for (int i = 0; i < 2; ++i) {
    slow.push_back(std::make_unique<StalledClient>(server_->port(), kPartialInfer));
    ASSERT_TRUE(slow.back()->connected());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // both are being read
  httplib::Client client("127.0.0.1", server_->port());
  client.set_read_timeout(5, 0);
  const auto start = Clock::now();
  auto res = client.Get("/healthz");
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(waited, 2500) << "a normal client waited behind stalled ones for " << waited << " ms";
}

TEST(HttpServerOptionsTest, TimeoutsAreValidated) {
  HttpServerOptions options;
  options.read_timeout_millis = 0;
  EXPECT_NE(options.Validate().message().find("read_timeout_millis"), std::string::npos);
  options.read_timeout_millis = 100;
  options.write_timeout_millis = 700000;
  EXPECT_NE(options.Validate().message().find("write_timeout_millis"), std::string::npos);
}

}  // namespace
}  // namespace hml::server
