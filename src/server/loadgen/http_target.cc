// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The HTTP transport of the load generator: `http_connections` worker threads, each owning one
// keep-alive cpp-httplib client, take requests from one FIFO queue and POST the v2 JSON body
// (serialized once) to /v2/models/{name}[/versions/{v}]/infer. Send() only queues, so the
// sender never waits for a connection; a queued request keeps its intended send time, and when
// its deadline (timeout_ms after the intended time) has passed before a connection is free it is
// answered kDeadline without being sent.
//
// cpp-httplib (Debian's compiled 0.11; its pkg-config flags are used as given) is included only
// here on the client side. Its client reports failures as values; the one call that could throw
// (a std::bad_alloc in the library) is caught in the worker and becomes kError.
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "src/server/loadgen/targets.h"

namespace hml::server::loadgen_internal {
namespace {

// The client's timeouts: the connect timeout, and a read timeout of the request's timeout plus
// a second (or a minute without one), so that the server's 504 arrives before the client gives
// up.
void ConfigureClient(httplib::Client& client, const LoadgenOptions& options) {
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  const int64_t connect_ms = options.connect_timeout_ms;
  client.set_connection_timeout(connect_ms / 1000, (connect_ms % 1000) * 1000);
  const int64_t read_ms = options.timeout_ms > 0 ? options.timeout_ms + 1000 : 60'000;
  client.set_read_timeout(read_ms / 1000, (read_ms % 1000) * 1000);
  client.set_write_timeout(read_ms / 1000, (read_ms % 1000) * 1000);
  if (!options.ca_cert.empty()) {
    client.set_ca_cert_path(options.ca_cert);
    client.enable_server_certificate_verification(true);
  }
}

// The one translation of httplib::Error: its names are terse ("Connection"), so they are
// spelled out.
std::string ErrorText(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "connection failed (is the server up, and is this its HTTP port?)";
    case httplib::Error::Read:
      return "reading the response failed (connection closed or read timeout)";
    case httplib::Error::Write:
      return "writing the request failed";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "the server's certificate did not verify against --ca-cert";
    default:
      return "httplib error " + httplib::to_string(error);
  }
}

// The input specs of a v2 model metadata JSON body. kInvalidArgument naming what is malformed.
Result<std::vector<TensorSpec>> InputsFromMetadataJson(const std::string& body) {
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError("model metadata is not a JSON object");
  }
  auto inputs = doc.find("inputs");
  if (inputs == doc.end() || !inputs->is_array()) {
    return InvalidArgumentError("model metadata has no \"inputs\" array");
  }
  std::vector<TensorSpec> specs;
  for (const nlohmann::json& input : *inputs) {
    if (!input.is_object()) return InvalidArgumentError("a metadata input is not an object");
    auto name = input.find("name");
    auto datatype = input.find("datatype");
    auto shape = input.find("shape");
    if (name == input.end() || !name->is_string() || datatype == input.end() ||
        !datatype->is_string() || shape == input.end() || !shape->is_array()) {
      return InvalidArgumentError("a metadata input lacks a string name, datatype or a shape");
    }
    TensorSpec spec;
    spec.name = name->get<std::string>();
    HML_ASSIGN_OR_RETURN(
        spec.dtype, DTypeFromV2DataType(datatype->get<std::string>(), "input '" + spec.name + "'"));
    for (const nlohmann::json& d : *shape) {
      if (!d.is_number_integer()) {
        return InvalidArgumentError("input '" + spec.name + "': a dimension is not an integer");
      }
      spec.shape.push_back(d.get<int64_t>());
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

class HttpTarget final : public LoadTarget {
 public:
  HttpTarget(const LoadgenOptions& options, std::string base_url, Clock* clock)
      : options_(options), base_url_(std::move(base_url)), clock_(clock) {
    model_path_ = "/v2/models/" + options_.model;
    if (options_.version > 0) model_path_ += "/versions/" + std::to_string(options_.version);
  }

  ~HttpTarget() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& w : workers_) w.join();
  }

  // Reads the model's metadata, serializes the body and starts the workers.
  Status Prepare() {
    httplib::Client client = MakeClient();
    httplib::Headers headers = Credentials();
    httplib::Result res = client.Get(model_path_, headers);
    if (!res) {
      return UnavailableError("cannot reach the HTTP server at " + base_url_ + " (GET " +
                              model_path_ + "): " + ErrorText(res.error()));
    }
    if (res->status != 200) {
      const std::string what =
          "GET " + model_path_ + ": HTTP " + std::to_string(res->status) + " " + res->body;
      return res->status == 404   ? NotFoundError(what)
             : res->status == 401 ? UnauthenticatedError(what)
             : res->status == 403 ? PermissionDeniedError(what)
                                  : UnavailableError(what);
    }
    HML_ASSIGN_OR_RETURN(std::vector<TensorSpec> inputs, InputsFromMetadataJson(res->body));
    HML_ASSIGN_OR_RETURN(V2InferRequest request,
                         RandomRequest(inputs, options_.batch, options_.seed));
    shape_ = FirstInputShape(request);
    HML_ASSIGN_OR_RETURN(body_, SerializeV2InferRequestJson(request));
    for (int i = 0; i < options_.http_connections; ++i) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
    return Status::Ok();
  }

  void Send(int64_t intended_nanos, DoneFn done) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(Job{intended_nanos, std::move(done)});
    }
    cv_.notify_one();
  }

  std::string Describe() const override {
    return "http " + base_url_ + " model '" + options_.model + "' " + shape_ + " (" +
           std::to_string(options_.http_connections) + " connections)";
  }

 private:
  struct Job {
    int64_t intended_nanos = 0;
    DoneFn done;
  };

  httplib::Client MakeClient() const {
    httplib::Client client(base_url_, options_.client_cert, options_.client_key);
    ConfigureClient(client, options_);
    return client;
  }

  httplib::Headers Credentials() const {
    httplib::Headers headers;
    if (!options_.token.empty()) headers.emplace("authorization", "Bearer " + options_.token);
    return headers;
  }

  void WorkerLoop() {
    httplib::Client client = MakeClient();
    const std::string path = model_path_ + "/infer";
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      httplib::Headers headers = Credentials();
      if (options_.timeout_ms > 0) {
        const int64_t left_nanos =
            job.intended_nanos + options_.timeout_ms * 1'000'000 - clock_->NowNanos();
        if (left_nanos <= 0) {
          job.done(LoadOutcome::kDeadline, "deadline passed while queued in the client");
          continue;
        }
        headers.emplace("Timeout-Ms", std::to_string((left_nanos + 999'999) / 1'000'000));
      }
      Post(client, path, headers, job.done);
    }
  }

  void Post(httplib::Client& client, const std::string& path, const httplib::Headers& headers,
            const DoneFn& done) {
    LoadOutcome outcome = LoadOutcome::kError;
    std::string error;
    try {
      httplib::Result res = client.Post(path, headers, body_, "application/json");
      if (!res) {
        error = "POST " + path + ": " + ErrorText(res.error());
      } else if (res->status == 200) {
        outcome = LoadOutcome::kOk;
      } else if (res->status == 429) {
        outcome = LoadOutcome::kRejected;
        error = res->body;
      } else if (res->status == 504) {
        outcome = LoadOutcome::kDeadline;
        error = res->body;
      } else {
        error = "POST " + path + ": HTTP " + std::to_string(res->status) + " " + res->body;
      }
    } catch (const std::exception& e) {
      outcome = LoadOutcome::kError;
      error = std::string("HTTP client: ") + e.what();
    }
    done(outcome, error);
  }

  const LoadgenOptions options_;
  const std::string base_url_;  // "http://host:port" or "https://host:port"
  Clock* const clock_;
  std::string model_path_;  // /v2/models/{name}[/versions/{v}]
  std::string body_;        // the infer request, serialized once
  std::string shape_;
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
};

}  // namespace

Result<std::unique_ptr<LoadTarget>> ConnectHttp(const LoadgenOptions& options, Clock* clock) {
  HML_ASSIGN_OR_RETURN(HostPort hp, ParseTarget(options.target));
  if (hp.scheme == "grpc") {
    return InvalidArgumentError("target '" + options.target + "': grpc:// with --protocol http");
  }
  const bool tls = hp.scheme == "https" || !options.ca_cert.empty();
  const std::string base_url =
      std::string(tls ? "https://" : "http://") + hp.host + ":" + std::to_string(hp.port);
  auto target = std::make_unique<HttpTarget>(options, base_url, clock);
  HML_RETURN_IF_ERROR(target->Prepare());
  return std::unique_ptr<LoadTarget>(std::move(target));
}

}  // namespace hml::server::loadgen_internal
