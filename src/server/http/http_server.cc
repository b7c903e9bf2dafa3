// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/http/http_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <future>
#include <optional>
#include <string_view>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "src/ota/metadata.h"
#include "src/server/auth/authenticator.h"
#include "src/server/protocol/v2_json.h"
#include "src/server/tls/certs.h"

namespace hml::server {
namespace {

constexpr char kJson[] = "application/json";

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kUnimplemented:
      return 501;
    default:
      return 500;
  }
}

void SetError(httplib::Response& res, int http_status, std::string_view message) {
  res.status = http_status;
  res.set_content(SerializeV2ErrorJson(message), kJson);
}

void SetStatusError(httplib::Response& res, const Status& status) {
  SetError(res, HttpStatusFor(status.code()), status.message());
}

// A request the backend refused: its status, with Retry-After (whole seconds, rounded up) for
// an overload refusal.
void SetRefusal(httplib::Response& res, const SubmitResult& refused) {
  if (refused.status.code() == StatusCode::kResourceExhausted) {
    const int64_t seconds =
        std::max<int64_t>(1, (refused.retry_after_micros + 999999) / 1000000);
    res.set_header("Retry-After", std::to_string(seconds));
  }
  SetStatusError(res, refused.status);
}

// "" -> 0 (latest); otherwise a positive decimal version number.
Result<int64_t> ParseVersion(const std::string& text) {
  if (text.empty()) return int64_t{0};
  int64_t version = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size() || version < 1) {
    return InvalidArgumentError("version '" + text + "' is not a positive integer");
  }
  return version;
}

// Runs `handler`, turning any exception (httplib's, or std::bad_alloc) into a 500 so that none
// escapes into httplib's worker threads.
template <typename F>
httplib::Server::Handler Guarded(F handler) {
  return [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    try {
      handler(req, res);
    } catch (const std::exception& e) {
      SetError(res, 500, std::string("internal error: ") + e.what());
    } catch (...) {
      SetError(res, 500, "internal error");
    }
  };
}

// Routes reachable without a credential when authentication is on (see http_server.h).
bool IsOpenPath(const std::string& path) {
  return path == "/healthz" || path == "/metrics" || path == "/v2/health/live" ||
         path == "/v2/health/ready";
}

// 401 or 403 (or the store's own error) for a refused credential. RFC 6750: 401 carries
// WWW-Authenticate with the Bearer scheme, and error="invalid_token" when a token was sent.
void SetAuthError(httplib::Response& res, const Status& status, bool token_sent) {
  if (status.code() == StatusCode::kUnauthenticated) {
    res.set_header("WWW-Authenticate", token_sent
                                           ? R"(Bearer realm="hybridml", error="invalid_token")"
                                           : R"(Bearer realm="hybridml")");
  }
  SetStatusError(res, status);
}

// The request's Authorization header, nullopt when there is none. The view points into `req`.
std::optional<std::string_view> AuthorizationHeader(const httplib::Request& req) {
  const auto it = req.headers.find("Authorization");  // httplib compares names case-insensitively
  if (it == req.headers.end()) return std::nullopt;
  return std::string_view(it->second);
}

nlohmann::json DeviceJson(const DeviceInfo& device) {
  return {{"device_id", device.id},
          {"device_name", device.name},
          {"platform", device.platform},
          {"enrollment_secret_id", device.enrollment_secret_id},
          {"created_unix", device.created_unix},
          {"revoked", device.revoked},
          {"revoked_unix", device.revoked ? device.revoked_unix : 0}};
}

// A file under the OTA repository opened for a Range-capable content provider.
struct OpenFile {
  int fd = -1;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Status HttpServerOptions::Validate() const {
  if (address.empty()) return InvalidArgumentError("HttpServerOptions: address is empty");
  if (port < 0 || port > 65535) {
    return InvalidArgumentError("HttpServerOptions: port " + std::to_string(port) +
                                " is not in [0, 65535]");
  }
  if (max_body_bytes == 0) return InvalidArgumentError("HttpServerOptions: max_body_bytes is 0");
  if (threads < 1 || threads > 1024) {
    return InvalidArgumentError("HttpServerOptions: threads " + std::to_string(threads) +
                                " is not in [1, 1024]");
  }
  for (const auto& [name, millis] :
       {std::pair<const char*, int64_t>{"read_timeout_millis", read_timeout_millis},
        {"write_timeout_millis", write_timeout_millis},
        {"keep_alive_timeout_millis", keep_alive_timeout_millis}}) {
    if (millis < 1 || millis > 600000) {
      return InvalidArgumentError("HttpServerOptions: " + std::string(name) + " " +
                                  std::to_string(millis) + " is not in [1, 600000]");
    }
  }
  if (clock == nullptr) return InvalidArgumentError("HttpServerOptions: clock is null");
  if (cert_file.empty() != key_file.empty()) {
    return InvalidArgumentError("HttpServerOptions: cert_file and key_file must be set together");
  }
  if (!client_ca_file.empty() && cert_file.empty()) {
    return InvalidArgumentError("HttpServerOptions: client_ca_file needs cert_file and key_file");
  }
  return Status::Ok();
}

class HttpServer::Impl {
 public:
  Impl(InferenceBackend& backend, MetricsRegistry& metrics, HttpServerOptions options)
      : backend_(backend), metrics_(metrics), options_(std::move(options)) {}

  // Binds and starts the listener thread; returns the port.
  Result<int> Start() {
    HML_RETURN_IF_ERROR(options_.Validate());
    const bool tls = !options_.cert_file.empty();
    // httplib's loader only reports "invalid"; this check names the file and the reason first.
    if (tls) {
      HML_RETURN_IF_ERROR(
          CheckPemFiles(options_.cert_file, options_.key_file, options_.client_ca_file));
    }
    try {
      if (tls) {
        // With a client CA file, httplib sets SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT:
        // a client without a certificate signed by that CA fails the handshake (mutual TLS).
        auto ssl = std::make_unique<httplib::SSLServer>(
            options_.cert_file.c_str(), options_.key_file.c_str(),
            options_.client_ca_file.empty() ? nullptr : options_.client_ca_file.c_str());
        if (!ssl->is_valid()) {
          return InvalidArgumentError("HTTPS server: cannot load certificate '" +
                                      options_.cert_file + "', key '" + options_.key_file +
                                      "' or client CA '" + options_.client_ca_file + "'");
        }
        server_ = std::move(ssl);
      } else {
        server_ = std::make_unique<httplib::Server>();
      }
      Routes();
      server_->new_task_queue = [threads = options_.threads] {
        return new httplib::ThreadPool(static_cast<size_t>(threads));
      };
      server_->set_payload_max_length(options_.max_body_bytes);
      auto split = [](int64_t millis) {
        return std::pair<time_t, time_t>{static_cast<time_t>(millis / 1000),
                                         static_cast<time_t>((millis % 1000) * 1000)};
      };
      const auto [read_s, read_us] = split(options_.read_timeout_millis);
      const auto [write_s, write_us] = split(options_.write_timeout_millis);
      const auto [idle_s, idle_us] = split(options_.keep_alive_timeout_millis);
      server_->set_read_timeout(read_s, read_us);
      server_->set_write_timeout(write_s, write_us);
      server_->set_keep_alive_timeout(std::max<time_t>(1, idle_s + (idle_us > 0 ? 1 : 0)));
      // httplib writes a response's headers and body separately: with Nagle on, the body waits
      // for the client's delayed ACK of the headers (~40 ms) on a kept-alive connection, which
      // capped one connection at ~50 requests/s (measured with hybridml loadgen).
      server_->set_tcp_nodelay(true);
      int port = options_.port;
      if (port == 0) {
        port = server_->bind_to_any_port(options_.address);
      } else if (!server_->bind_to_port(options_.address, port)) {
        port = -1;
      }
      if (port <= 0) {
        return UnavailableError("HTTP server: cannot bind " + options_.address + ":" +
                                std::to_string(options_.port));
      }
      thread_ = std::thread([this] {
        try {
          server_->listen_after_bind();
        } catch (...) {
          // The listener ends; Stop() still joins.
        }
      });
      return port;
    } catch (const std::exception& e) {
      return InternalError(std::string("HTTP server: cannot start: ") + e.what());
    }
  }

  void Stop() {
    if (server_ == nullptr) return;
    try {
      server_->stop();
    } catch (...) {
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Routes() {
    // Every request but the open ones is authenticated here, before routing and before its body
    // is read, so a refused request reaches no handler.
    if (options_.authenticator != nullptr) {
      server_->set_pre_routing_handler([this](const httplib::Request& req,
                                              httplib::Response& res) {
        try {
          if (IsOpenPath(req.path)) return httplib::Server::HandlerResponse::Unhandled;
          const std::optional<std::string_view> header = AuthorizationHeader(req);
          Result<Principal> caller = options_.authenticator->Authenticate(header);
          if (caller.ok()) return httplib::Server::HandlerResponse::Unhandled;
          SetAuthError(res, caller.status(), header.has_value());
        } catch (...) {
          SetError(res, 500, "internal error");
        }
        return httplib::Server::HandlerResponse::Handled;
      });
      server_->Get("/v1/devices",
                   Guarded([this](const httplib::Request& req, httplib::Response& res) {
                     ListDevices(req, res);
                   }));
      server_->Get(R"(/v1/devices/([^/]+))",
                   Guarded([this](const httplib::Request& req, httplib::Response& res) {
                     GetDevice(req, res);
                   }));
    }
    server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
      // httplib's own errors get a JSON body: 404 without a route, 413 from Content-Length, 400
      // for a request it could not read (malformed, or cut off by the read timeout).
      if (res.body.empty()) {
        const char* message = res.status == 413   ? "request body exceeds the size limit"
                              : res.status == 404 ? "no such resource"
                                                  : "malformed or incomplete request";
        SetError(res, res.status, message);
      }
    });
    server_->set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          SetError(res, 500, "internal error");
        });
    server_->Get("/v2", Guarded([](const httplib::Request&, httplib::Response& res) {
                   nlohmann::json body = {{"name", "hybridml"},
                                          {"version", "0.1.0"},
                                          {"extensions", nlohmann::json::array()}};
                   res.set_content(body.dump(), kJson);
                 }));
    server_->Get("/v2/health/live", Guarded([](const httplib::Request&, httplib::Response& res) {
                   res.status = 200;
                 }));
    server_->Get("/v2/health/ready",
                 Guarded([this](const httplib::Request&, httplib::Response& res) {
                   res.status = backend_.Ready() ? 200 : 503;
                 }));
    server_->Get(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)",
                 Guarded([this](const httplib::Request& req, httplib::Response& res) {
                   ModelMetadata(req, res);
                 }));
    server_->Get(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?/ready)",
                 Guarded([this](const httplib::Request& req, httplib::Response& res) {
                   Result<int64_t> version = ParseVersion(req.matches[2]);
                   if (!version.ok()) return SetStatusError(res, version.status());
                   Result<ServedModel> model = backend_.GetModel(req.matches[1], *version);
                   if (!model.ok()) return SetStatusError(res, model.status());
                   res.status = 200;
                 }));
    server_->Post(
        R"(/v2/models/([^/]+)(?:/versions/([^/]+))?/infer)",
        Guarded([this](const httplib::Request& req, httplib::Response& res) { Infer(req, res); }));
    server_->Get("/metrics", Guarded([this](const httplib::Request&, httplib::Response& res) {
                   res.set_content(metrics_.Expose(), std::string(kExpositionContentType).c_str());
                 }));
    server_->Get("/healthz", Guarded([](const httplib::Request&, httplib::Response& res) {
                   res.set_content("ok\n", "text/plain");
                 }));
    server_->Get(R"(/ota/(.*))", Guarded([this](const httplib::Request& req,
                                                httplib::Response& res) { OtaFile(req, res); }));
  }

  void ModelMetadata(const httplib::Request& req, httplib::Response& res) {
    Result<int64_t> version = ParseVersion(req.matches[2]);
    if (!version.ok()) return SetStatusError(res, version.status());
    Result<ServedModel> model = backend_.GetModel(req.matches[1], *version);
    if (!model.ok()) return SetStatusError(res, model.status());
    V2ModelMetadata metadata;
    metadata.name = model->name;
    for (int64_t v : model->versions) metadata.versions.push_back(std::to_string(v));
    metadata.platform = "hybridml_onnx";
    metadata.inputs = model->inputs;
    metadata.outputs = model->outputs;
    Result<std::string> body = SerializeV2ModelMetadataJson(metadata);
    if (!body.ok()) return SetStatusError(res, body.status());
    res.set_content(*body, kJson);
  }

  void Infer(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    Result<int64_t> version = ParseVersion(req.matches[2]);
    if (!version.ok()) return SetStatusError(res, version.status());
    Result<ServedModel> model = backend_.GetModel(name, *version);
    if (!model.ok()) return SetStatusError(res, model.status());
    // Overload is refused before the body is parsed: parsing JSON it then refuses would take
    // the cores the queued requests need.
    if (SubmitResult admitted =
            backend_.CheckAdmission(name, model->version, ServingProtocol::kHttp);
        !admitted.ok()) {
      return SetRefusal(res, admitted);
    }

    V2JsonOptions json_options;
    json_options.max_body_bytes = options_.max_body_bytes;
    Result<V2InferRequest> parsed = ParseV2InferRequestJson(req.body, json_options);
    if (!parsed.ok()) {
      // The parser's kResourceExhausted is an oversized body or nesting: 413, not 429.
      const int http = parsed.status().code() == StatusCode::kResourceExhausted
                           ? 413
                           : HttpStatusFor(parsed.status().code());
      return SetError(res, http, parsed.status().message());
    }

    // The backend matches the input names to the model (its inputs, or a cut for split
    // inference).
    NamedInferRequest request;
    request.inputs = std::move(parsed->inputs);
    for (const V2RequestedOutput& wanted : parsed->outputs) {
      bool known = false;
      for (const TensorSpec& spec : model->outputs) known = known || spec.name == wanted.name;
      if (!known) {
        return SetError(res, 400,
                        "model '" + name + "' has no output '" + wanted.name + "'");
      }
    }
    if (req.has_header("Timeout-Ms")) {
      const std::string text = req.get_header_value("Timeout-Ms");
      int64_t ms = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
      if (ec != std::errc() || end != text.data() + text.size() || ms < 0 ||
          ms > int64_t{86400} * 1000) {
        return SetError(res, 400, "header Timeout-Ms '" + text + "' is not in [0, 86400000]");
      }
      request.deadline_nanos = options_.clock->NowNanos() + ms * 1000000;
    }

    // The handler thread waits for the batcher's answer; `done` is called exactly once for an
    // accepted request.
    auto promise = std::make_shared<std::promise<Result<std::vector<Tensor>>>>();
    std::future<Result<std::vector<Tensor>>> future = promise->get_future();
    request.done = [promise](Result<std::vector<Tensor>> result) {
      promise->set_value(std::move(result));
    };
    SubmitResult submitted = backend_.Infer(name, model->version, ServingProtocol::kHttp, std::move(request));
    if (!submitted.ok()) return SetRefusal(res, submitted);
    Result<std::vector<Tensor>> outputs = future.get();
    if (!outputs.ok()) return SetStatusError(res, outputs.status());

    std::vector<NamedTensor> named;
    for (size_t i = 0; i < outputs->size() && i < model->outputs.size(); ++i) {
      const std::string& output_name = model->outputs[i].name;
      bool wanted = parsed->outputs.empty();
      for (const V2RequestedOutput& o : parsed->outputs) wanted = wanted || o.name == output_name;
      if (wanted) named.push_back(NamedTensor{output_name, std::move((*outputs)[i])});
    }
    Result<std::string> body =
        SerializeV2InferResponseJson(name, std::to_string(model->version), parsed->id, named);
    if (!body.ok()) return SetStatusError(res, body.status());
    res.set_content(*body, kJson);
  }

  // The caller, authenticated again: the pre-routing check let it through but does not hand the
  // principal over.
  Result<Principal> Caller(const httplib::Request& req, httplib::Response& res) {
    const std::optional<std::string_view> header = AuthorizationHeader(req);
    Result<Principal> caller = options_.authenticator->Authenticate(header);
    if (!caller.ok()) SetAuthError(res, caller.status(), header.has_value());
    return caller;
  }

  void ListDevices(const httplib::Request& req, httplib::Response& res) {
    Result<Principal> caller = Caller(req, res);
    if (!caller.ok()) return;
    if (Status allowed = Authenticator::RequireAdmin(*caller, "list devices"); !allowed.ok()) {
      return SetStatusError(res, allowed);
    }
    Result<std::vector<DeviceInfo>> devices = options_.authenticator->store().ListDevices();
    if (!devices.ok()) return SetStatusError(res, devices.status());
    nlohmann::json body = {{"devices", nlohmann::json::array()}};
    for (const DeviceInfo& device : *devices) body["devices"].push_back(DeviceJson(device));
    res.set_content(body.dump(), kJson);
  }

  void GetDevice(const httplib::Request& req, httplib::Response& res) {
    Result<Principal> caller = Caller(req, res);
    if (!caller.ok()) return;
    const std::string id = req.matches[1];
    if (Status allowed = Authenticator::RequireAdminOrDevice(*caller, id, "get device " + id);
        !allowed.ok()) {
      return SetStatusError(res, allowed);
    }
    Result<DeviceInfo> device = options_.authenticator->store().GetDevice(id);
    if (!device.ok()) return SetStatusError(res, device.status());
    res.set_content(DeviceJson(*device).dump(), kJson);
  }

  // Serves <ota_repo_dir>/<path>; httplib applies the request's Range (206 + Content-Range,
  // 416 for an unsatisfiable range) to the content provider.
  void OtaFile(const httplib::Request& req, httplib::Response& res) {
    if (options_.ota_repo_dir.empty()) {
      return SetError(res, 404, "this server has no OTA repository");
    }
    const std::string path = req.matches[1];
    if (Status valid = ota::ValidateTargetName(path); !valid.ok()) {
      return SetError(res, 400, "OTA path '" + path + "': " + std::string(valid.message()));
    }
    const std::string full = options_.ota_repo_dir + "/" + path;
    auto file = std::make_shared<OpenFile>();
    file->fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (file->fd < 0 || ::fstat(file->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      return SetError(res, 404, "OTA file '" + path + "' does not exist");
    }
    const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
    res.set_header("Accept-Ranges", "bytes");
    res.set_content_provider(
        static_cast<size_t>(st.st_size), json ? kJson : "application/octet-stream",
        [file](size_t offset, size_t length, httplib::DataSink& sink) {
          char buffer[64 * 1024];
          const size_t chunk = std::min(length, sizeof(buffer));
          const ssize_t n = ::pread(file->fd, buffer, chunk, static_cast<off_t>(offset));
          if (n <= 0) return false;  // the file shrank or failed: abort the response
          return sink.write(buffer, static_cast<size_t>(n));
        });
  }

  InferenceBackend& backend_;
  MetricsRegistry& metrics_;
  const HttpServerOptions options_;
  // An httplib::SSLServer when TLS is configured, a plain httplib::Server otherwise; created by
  // Start().
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

HttpServer::HttpServer(InferenceBackend& backend, MetricsRegistry& metrics,
                       HttpServerOptions options)
    : impl_(std::make_unique<Impl>(backend, metrics, std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  if (port_ != 0) return FailedPreconditionError("HTTP server: already started");
  HML_ASSIGN_OR_RETURN(port_, impl_->Start());
  return Status::Ok();
}

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace hml::server
