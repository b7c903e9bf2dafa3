// Secure aggregation (Bonawitz et al. 2017, semi-honest server); the protocol is described in
// secagg.h.
#include "src/fl/secagg.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <utility>

namespace hml::fl {
namespace {

std::string Id(int id) { return "client " + std::to_string(id); }

Status SodiumReady() {
  if (sodium_init() < 0) return InternalError("secure aggregation: libsodium failed to initialise");
  return Status::Ok();
}

// The pairwise seed both ends derive: H(X25519(sk_own, pk_peer) || lower pk || higher pk).
Result<SecAggKey> PairSeed(const SecAggKey& own_secret, const SecAggKey& own_public,
                           const SecAggKey& peer_public) {
  SecAggKey shared;
  if (crypto_scalarmult(shared.data(), own_secret.data(), peer_public.data()) != 0) {
    return InvalidArgumentError("secure aggregation: a peer public key is a low-order point");
  }
  const bool own_first = own_public < peer_public;
  const SecAggKey& lo = own_first ? own_public : peer_public;
  const SecAggKey& hi = own_first ? peer_public : own_public;
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 32);
  crypto_generichash_update(&state, shared.data(), shared.size());
  crypto_generichash_update(&state, lo.data(), lo.size());
  crypto_generichash_update(&state, hi.data(), hi.size());
  SecAggKey seed;
  crypto_generichash_final(&state, seed.data(), seed.size());
  sodium_memzero(shared.data(), shared.size());
  return seed;
}

// out += sign * PRG(seed), sign = +1 or -1, in Z_{2^32}.
void AddPrg(const SecAggKey& seed, bool subtract, std::span<uint32_t> out,
            std::vector<uint32_t>& scratch) {
  scratch.resize(out.size());
  SecAggPrg(seed, scratch);
  if (subtract) {
    for (size_t k = 0; k < out.size(); ++k) out[k] -= scratch[k];
  } else {
    for (size_t k = 0; k < out.size(); ++k) out[k] += scratch[k];
  }
}

Result<SecAggKey> ToKey(Result<std::vector<uint8_t>> bytes) {
  if (!bytes.ok()) return bytes.status();
  SecAggKey key;
  std::copy(bytes->begin(), bytes->end(), key.begin());
  sodium_memzero(bytes->data(), bytes->size());
  return key;
}

bool Contains(const std::vector<int>& sorted, int id) {
  return std::binary_search(sorted.begin(), sorted.end(), id);
}

}  // namespace

void SecAggPrg(const SecAggKey& seed, std::span<uint32_t> out) {
  static_assert(crypto_stream_chacha20_NONCEBYTES == 8);
  const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {};
  // The keystream is read as little-endian words by reinterpreting the bytes; the protocol only
  // needs both ends (client and server) to agree, and they run the same code.
  crypto_stream_chacha20(reinterpret_cast<unsigned char*>(out.data()), out.size_bytes(), nonce,
                         seed.data());
}

Status SecAggConfig::Validate() const {
  if (num_clients < 2) return InvalidArgumentError("SecAggConfig: num_clients must be >= 2");
  if (num_clients > kShamirMaxShares) {
    return InvalidArgumentError("SecAggConfig: num_clients exceeds " +
                                std::to_string(kShamirMaxShares));
  }
  if (threshold < 2 || threshold > num_clients || 2 * threshold <= num_clients) {
    return InvalidArgumentError(
        "SecAggConfig: threshold " + std::to_string(threshold) +
        " must satisfy n / 2 < t <= n and t >= 2 for n = " + std::to_string(num_clients));
  }
  if (vector_length == 0) return InvalidArgumentError("SecAggConfig: vector_length must be >= 1");
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Client.

Result<SecAggClient> SecAggClient::Create(const SecAggConfig& config, int id) {
  HML_RETURN_IF_ERROR(config.Validate());
  if (id < 1 || id > config.num_clients) {
    return InvalidArgumentError("SecAggClient: id " + std::to_string(id) + " is outside 1.." +
                                std::to_string(config.num_clients));
  }
  HML_RETURN_IF_ERROR(SodiumReady());
  SecAggClient client(config, id);
  randombytes_buf(client.secret_key_.data(), client.secret_key_.size());
  crypto_scalarmult_base(client.public_key_.data(), client.secret_key_.data());
  return client;
}

SecAggClient::SecAggClient(SecAggClient&& other) noexcept
    : config_(other.config_),
      id_(other.id_),
      stage_(other.stage_),
      secret_key_(other.secret_key_),
      public_key_(other.public_key_),
      self_seed_(other.self_seed_),
      peer_keys_(std::move(other.peer_keys_)),
      held_(std::move(other.held_)) {
  sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
  sodium_memzero(other.self_seed_.data(), other.self_seed_.size());
}

SecAggClient::~SecAggClient() {
  sodium_memzero(secret_key_.data(), secret_key_.size());
  sodium_memzero(self_seed_.data(), self_seed_.size());
}

Result<std::vector<SecAggShareMessage>> SecAggClient::ShareKeys(
    const std::map<int, SecAggKey>& public_keys) {
  if (stage_ != Stage::kKeys) {
    return FailedPreconditionError(Id(id_) + ": ShareKeys called twice");
  }
  if (public_keys.size() < static_cast<size_t>(config_.threshold)) {
    return AbortedError(Id(id_) + ": only " + std::to_string(public_keys.size()) +
                        " clients advertised keys, fewer than the threshold " +
                        std::to_string(config_.threshold));
  }
  auto own = public_keys.find(id_);
  if (own == public_keys.end() || own->second != public_key_) {
    return InvalidArgumentError(Id(id_) + ": its own public key is missing or altered");
  }
  std::set<SecAggKey> distinct;
  for (const auto& [peer, key] : public_keys) {
    if (peer < 1 || peer > config_.num_clients) {
      return InvalidArgumentError(Id(id_) + ": public key for unknown " + Id(peer));
    }
    if (!distinct.insert(key).second) {
      return InvalidArgumentError(Id(id_) + ": " + Id(peer) + " repeats another's public key");
    }
  }
  peer_keys_ = public_keys;
  randombytes_buf(self_seed_.data(), self_seed_.size());
  HML_ASSIGN_OR_RETURN(std::vector<ShamirShare> seed_shares,
                       ShamirSplit(self_seed_, config_.threshold, config_.num_clients));
  HML_ASSIGN_OR_RETURN(std::vector<ShamirShare> key_shares,
                       ShamirSplit(secret_key_, config_.threshold, config_.num_clients));
  std::vector<SecAggShareMessage> out;
  out.reserve(public_keys.size());
  for (const auto& [peer, key] : public_keys) {
    SecAggShareMessage m;
    m.from = id_;
    m.to = peer;
    m.self_seed_share = std::move(seed_shares[peer - 1]);
    m.secret_key_share = std::move(key_shares[peer - 1]);
    out.push_back(std::move(m));
  }
  stage_ = Stage::kShared;
  return out;
}

Result<std::vector<uint32_t>> SecAggClient::MaskInput(
    std::span<const uint32_t> x, std::span<const SecAggShareMessage> received) {
  if (stage_ != Stage::kShared) {
    return FailedPreconditionError(Id(id_) + ": MaskInput called out of order");
  }
  if (x.size() != config_.vector_length) {
    return InvalidArgumentError(Id(id_) + ": input has " + std::to_string(x.size()) +
                                " elements, the round expects " +
                                std::to_string(config_.vector_length));
  }
  std::map<int, SecAggShareMessage> held;
  for (const SecAggShareMessage& m : received) {
    if (m.to != id_) {
      return InvalidArgumentError(Id(id_) + ": received a share addressed to " + Id(m.to));
    }
    if (!peer_keys_.contains(m.from)) {
      return InvalidArgumentError(Id(id_) + ": received a share from " + Id(m.from) +
                                  ", which advertised no key");
    }
    if (!held.emplace(m.from, m).second) {
      return InvalidArgumentError(Id(id_) + ": two shares from " + Id(m.from));
    }
  }
  if (!held.contains(id_)) {
    return InvalidArgumentError(Id(id_) + ": its own share is missing from the relayed set");
  }
  if (held.size() < static_cast<size_t>(config_.threshold)) {
    return AbortedError(Id(id_) + ": only " + std::to_string(held.size()) +
                        " clients shared keys, fewer than the threshold " +
                        std::to_string(config_.threshold));
  }
  held_ = std::move(held);
  std::vector<uint32_t> y(x.begin(), x.end());
  std::vector<uint32_t> scratch;
  AddPrg(self_seed_, /*subtract=*/false, y, scratch);
  for (const auto& [peer, message] : held_) {
    if (peer == id_) continue;
    HML_ASSIGN_OR_RETURN(SecAggKey seed, PairSeed(secret_key_, public_key_, peer_keys_[peer]));
    AddPrg(seed, /*subtract=*/peer < id_, y, scratch);
    sodium_memzero(seed.data(), seed.size());
  }
  stage_ = Stage::kMasked;
  return y;
}

Result<SecAggUnmaskResponse> SecAggClient::Unmask(const SecAggUnmaskRequest& request) {
  if (stage_ != Stage::kMasked) {
    return FailedPreconditionError(Id(id_) + ": Unmask called out of order");
  }
  if (request.survivors.size() < static_cast<size_t>(config_.threshold)) {
    return AbortedError(Id(id_) + ": only " + std::to_string(request.survivors.size()) +
                        " survivors, fewer than the threshold " +
                        std::to_string(config_.threshold) + "; no shares revealed");
  }
  std::set<int> survivors(request.survivors.begin(), request.survivors.end());
  if (!survivors.contains(id_)) {
    return InvalidArgumentError(Id(id_) + ": asked to unmask but not listed as a survivor");
  }
  SecAggUnmaskResponse response;
  response.from = id_;
  for (int d : request.dropped) {
    if (survivors.contains(d)) {
      // Revealing both shares of one client would let the server remove all of its masks.
      return InvalidArgumentError(Id(id_) + ": " + Id(d) +
                                  " is listed both as survivor and as dropped");
    }
    auto it = held_.find(d);
    if (it == held_.end()) {
      return InvalidArgumentError(Id(id_) + ": dropped " + Id(d) + " never shared keys");
    }
    response.secret_key_shares.emplace(d, it->second.secret_key_share);
  }
  for (int s : survivors) {
    auto it = held_.find(s);
    if (it == held_.end()) {
      return InvalidArgumentError(Id(id_) + ": survivor " + Id(s) + " never shared keys");
    }
    response.self_seed_shares.emplace(s, it->second.self_seed_share);
  }
  stage_ = Stage::kDone;
  return response;
}

// ---------------------------------------------------------------------------------------------
// Server.

Result<SecAggServer> SecAggServer::Create(const SecAggConfig& config) {
  HML_RETURN_IF_ERROR(config.Validate());
  HML_RETURN_IF_ERROR(SodiumReady());
  return SecAggServer(config);
}

Status SecAggServer::CheckStage(Stage expected, const char* what) const {
  if (stage_ != expected) {
    return FailedPreconditionError(std::string("secure aggregation server: ") + what +
                                   " called out of order");
  }
  return Status::Ok();
}

Status SecAggServer::AbortIfBelowThreshold(size_t count, const char* what) const {
  if (count < static_cast<size_t>(config_.threshold)) {
    return AbortedError("secure aggregation aborted: " + std::to_string(count) + " " + what +
                        ", fewer than the threshold " + std::to_string(config_.threshold) +
                        "; nothing is reconstructed");
  }
  return Status::Ok();
}

Status SecAggServer::ReceivePublicKey(int id, const SecAggKey& public_key) {
  HML_RETURN_IF_ERROR(CheckStage(Stage::kKeys, "ReceivePublicKey"));
  if (id < 1 || id > config_.num_clients) {
    return InvalidArgumentError("secure aggregation server: unknown " + Id(id));
  }
  if (!public_keys_.emplace(id, public_key).second) {
    return AlreadyExistsError("secure aggregation server: second public key from " + Id(id));
  }
  return Status::Ok();
}

Result<std::map<int, SecAggKey>> SecAggServer::PublicKeys() {
  if (stage_ != Stage::kKeys && stage_ != Stage::kShares) {
    return FailedPreconditionError("secure aggregation server: PublicKeys called out of order");
  }
  HML_RETURN_IF_ERROR(AbortIfBelowThreshold(public_keys_.size(), "clients advertised keys"));
  stage_ = Stage::kShares;
  return public_keys_;
}

Status SecAggServer::ReceiveShares(int id, std::span<const SecAggShareMessage> messages) {
  HML_RETURN_IF_ERROR(CheckStage(Stage::kShares, "ReceiveShares"));
  if (!public_keys_.contains(id)) {
    return InvalidArgumentError("secure aggregation server: shares from " + Id(id) +
                                ", which advertised no key");
  }
  if (Contains(shared_, id)) {
    return AlreadyExistsError("secure aggregation server: second set of shares from " + Id(id));
  }
  std::set<int> recipients;
  for (const SecAggShareMessage& m : messages) {
    if (m.from != id || !public_keys_.contains(m.to) || !recipients.insert(m.to).second) {
      return InvalidArgumentError("secure aggregation server: " + Id(id) +
                                  " sent a share with a wrong sender or recipient");
    }
  }
  if (recipients.size() != public_keys_.size()) {
    return InvalidArgumentError("secure aggregation server: " + Id(id) + " shared with " +
                                std::to_string(recipients.size()) + " of " +
                                std::to_string(public_keys_.size()) + " clients");
  }
  for (const SecAggShareMessage& m : messages) inbox_[m.to].push_back(m);
  shared_.insert(std::upper_bound(shared_.begin(), shared_.end(), id), id);
  return Status::Ok();
}

Result<std::vector<SecAggShareMessage>> SecAggServer::SharesFor(int id) {
  if (stage_ != Stage::kShares && stage_ != Stage::kMasked) {
    return FailedPreconditionError("secure aggregation server: SharesFor called out of order");
  }
  HML_RETURN_IF_ERROR(AbortIfBelowThreshold(shared_.size(), "clients shared keys"));
  stage_ = Stage::kMasked;
  std::vector<SecAggShareMessage> out;
  for (const SecAggShareMessage& m : inbox_[id]) {
    if (Contains(shared_, m.from)) out.push_back(m);
  }
  return out;
}

Status SecAggServer::ReceiveMaskedInput(int id, std::span<const uint32_t> masked) {
  HML_RETURN_IF_ERROR(CheckStage(Stage::kMasked, "ReceiveMaskedInput"));
  if (!Contains(shared_, id)) {
    return InvalidArgumentError("secure aggregation server: masked input from " + Id(id) +
                                ", which did not share keys");
  }
  if (masked.size() != config_.vector_length) {
    return InvalidArgumentError("secure aggregation server: masked input from " + Id(id) + " has " +
                                std::to_string(masked.size()) + " elements, expected " +
                                std::to_string(config_.vector_length));
  }
  if (!masked_.emplace(id, std::vector<uint32_t>(masked.begin(), masked.end())).second) {
    return AlreadyExistsError("secure aggregation server: second masked input from " + Id(id));
  }
  return Status::Ok();
}

Result<SecAggUnmaskRequest> SecAggServer::UnmaskRequest() {
  HML_RETURN_IF_ERROR(CheckStage(Stage::kMasked, "UnmaskRequest"));
  HML_RETURN_IF_ERROR(AbortIfBelowThreshold(masked_.size(), "masked inputs arrived"));
  survivors_.clear();
  dropped_.clear();
  for (int id : shared_) (masked_.contains(id) ? survivors_ : dropped_).push_back(id);
  stage_ = Stage::kUnmask;
  return SecAggUnmaskRequest{survivors_, dropped_};
}

Status SecAggServer::ReceiveUnmaskResponse(const SecAggUnmaskResponse& response) {
  HML_RETURN_IF_ERROR(CheckStage(Stage::kUnmask, "ReceiveUnmaskResponse"));
  if (!Contains(survivors_, response.from)) {
    return InvalidArgumentError("secure aggregation server: unmask response from " +
                                Id(response.from) + ", which is not a survivor");
  }
  for (const SecAggUnmaskResponse& r : responses_) {
    if (r.from == response.from) {
      return AlreadyExistsError("secure aggregation server: second unmask response from " +
                                Id(response.from));
    }
  }
  if (response.self_seed_shares.size() != survivors_.size() ||
      response.secret_key_shares.size() != dropped_.size()) {
    return InvalidArgumentError("secure aggregation server: unmask response from " +
                                Id(response.from) + " does not cover the requested clients");
  }
  responses_.push_back(response);
  return Status::Ok();
}

Result<std::vector<uint32_t>> SecAggServer::Finish() {
  HML_RETURN_IF_ERROR(CheckStage(Stage::kUnmask, "Finish"));
  HML_RETURN_IF_ERROR(AbortIfBelowThreshold(responses_.size(), "unmask responses arrived"));
  const size_t t = static_cast<size_t>(config_.threshold);
  // Gathers the first t shares of one client's secret from the responses.
  auto gather = [&](int owner, bool seed) -> Result<SecAggKey> {
    std::vector<ShamirShare> shares;
    shares.reserve(t);
    for (const SecAggUnmaskResponse& r : responses_) {
      const auto& from = seed ? r.self_seed_shares : r.secret_key_shares;
      auto it = from.find(owner);
      if (it == from.end()) continue;
      shares.push_back(it->second);
      if (shares.size() == t) break;
    }
    Result<SecAggKey> key = ToKey(ShamirReconstruct(shares, config_.threshold, 32));
    if (!key.ok()) return key.status().WithContext("reconstructing " + Id(owner));
    return key;
  };

  std::vector<uint32_t> sum(config_.vector_length, 0);
  for (const auto& [id, y] : masked_) {
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += y[k];
  }
  std::vector<uint32_t> scratch;
  for (int id : survivors_) {
    HML_ASSIGN_OR_RETURN(SecAggKey seed, gather(id, /*seed=*/true));
    AddPrg(seed, /*subtract=*/true, sum, scratch);
  }
  for (int d : dropped_) {
    HML_ASSIGN_OR_RETURN(SecAggKey secret, gather(d, /*seed=*/false));
    SecAggKey derived_public;
    crypto_scalarmult_base(derived_public.data(), secret.data());
    if (derived_public != public_keys_[d]) {
      return DataLossError("secure aggregation server: the reconstructed key of " + Id(d) +
                           " does not match its public key");
    }
    for (int i : survivors_) {
      HML_ASSIGN_OR_RETURN(SecAggKey seed, PairSeed(secret, derived_public, public_keys_[i]));
      // Survivor i added +PRG for a higher peer and -PRG for a lower one: undo it.
      AddPrg(seed, /*subtract=*/d > i, sum, scratch);
    }
    sodium_memzero(secret.data(), secret.size());
  }
  stage_ = Stage::kDone;
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Driver.

Result<std::vector<uint32_t>> RunSecAggRound(const SecAggConfig& config,
                                             std::span<const std::vector<uint32_t>> inputs,
                                             std::span<const int> drop_before_sharing,
                                             std::span<const int> drop_after_sharing,
                                             SecAggTimings* timings) {
  using Clock = std::chrono::steady_clock;
  double client_s = 0, server_s = 0;
  auto timed = [](double& acc, auto&& fn) {
    const auto start = Clock::now();
    auto result = fn();
    acc += std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  };
  HML_RETURN_IF_ERROR(config.Validate());
  if (inputs.size() != static_cast<size_t>(config.num_clients)) {
    return InvalidArgumentError("RunSecAggRound: " + std::to_string(inputs.size()) +
                                " inputs for " + std::to_string(config.num_clients) + " clients");
  }
  const std::set<int> gone_early(drop_before_sharing.begin(), drop_before_sharing.end());
  const std::set<int> gone_late(drop_after_sharing.begin(), drop_after_sharing.end());

  HML_ASSIGN_OR_RETURN(SecAggServer server, SecAggServer::Create(config));
  std::vector<SecAggClient> clients;
  clients.reserve(config.num_clients);
  for (int id = 1; id <= config.num_clients; ++id) {
    HML_ASSIGN_OR_RETURN(SecAggClient c,
                         timed(client_s, [&] { return SecAggClient::Create(config, id); }));
    clients.push_back(std::move(c));
  }
  // Round 0.
  for (SecAggClient& c : clients) {
    HML_RETURN_IF_ERROR(server.ReceivePublicKey(c.id(), c.public_key()));
  }
  HML_ASSIGN_OR_RETURN(auto keys, timed(server_s, [&] { return server.PublicKeys(); }));
  // Round 1.
  for (SecAggClient& c : clients) {
    if (gone_early.contains(c.id())) continue;
    HML_ASSIGN_OR_RETURN(auto messages, timed(client_s, [&] { return c.ShareKeys(keys); }));
    HML_RETURN_IF_ERROR(timed(server_s, [&] { return server.ReceiveShares(c.id(), messages); }));
  }
  // Round 2.
  for (SecAggClient& c : clients) {
    const int id = c.id();
    if (gone_early.contains(id) || gone_late.contains(id)) continue;
    HML_ASSIGN_OR_RETURN(auto received, timed(server_s, [&] { return server.SharesFor(id); }));
    HML_ASSIGN_OR_RETURN(auto masked,
                         timed(client_s, [&] { return c.MaskInput(inputs[id - 1], received); }));
    HML_RETURN_IF_ERROR(timed(server_s, [&] { return server.ReceiveMaskedInput(id, masked); }));
  }
  // Round 3.
  HML_ASSIGN_OR_RETURN(auto request, timed(server_s, [&] { return server.UnmaskRequest(); }));
  for (int id : request.survivors) {
    HML_ASSIGN_OR_RETURN(auto response,
                         timed(client_s, [&] { return clients[id - 1].Unmask(request); }));
    HML_RETURN_IF_ERROR(timed(server_s, [&] { return server.ReceiveUnmaskResponse(response); }));
  }
  HML_ASSIGN_OR_RETURN(auto sum, timed(server_s, [&] { return server.Finish(); }));
  if (timings != nullptr) *timings = SecAggTimings{client_s, server_s};
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Fixed point.

Status FixedPointOptions::Validate(int num_clients) const {
  if (!(std::isfinite(scale) && scale > 0) || !(std::isfinite(max_abs) && max_abs > 0)) {
    return InvalidArgumentError("FixedPointOptions: scale and max_abs must be positive and finite");
  }
  if (num_clients < 1) return InvalidArgumentError("FixedPointOptions: num_clients must be >= 1");
  const double bound = static_cast<double>(num_clients) * (max_abs * scale + 0.5);
  if (bound >= 2147483648.0) {
    return InvalidArgumentError("FixedPointOptions: " + std::to_string(num_clients) +
                                " clients * (max_abs * scale + 0.5) = " + std::to_string(bound) +
                                " could overflow the signed 32-bit sum");
  }
  return Status::Ok();
}

Result<std::vector<uint32_t>> EncodeFixedPoint(std::span<const float> values,
                                               const FixedPointOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate(1));
  std::vector<uint32_t> out(values.size());
  for (size_t k = 0; k < values.size(); ++k) {
    const double v = values[k];
    if (!std::isfinite(v) || std::fabs(v) > options.max_abs) {
      return InvalidArgumentError("EncodeFixedPoint: value " + std::to_string(v) + " at index " +
                                  std::to_string(k) + " is not finite or exceeds max_abs " +
                                  std::to_string(options.max_abs));
    }
    const int64_t q = std::llround(v * options.scale);
    out[k] = static_cast<uint32_t>(static_cast<int32_t>(q));
  }
  return out;
}

std::vector<float> DecodeFixedPoint(std::span<const uint32_t> sum,
                                    const FixedPointOptions& options) {
  std::vector<float> out(sum.size());
  for (size_t k = 0; k < sum.size(); ++k) {
    out[k] = static_cast<float>(static_cast<double>(static_cast<int32_t>(sum[k])) / options.scale);
  }
  return out;
}

}  // namespace hml::fl
