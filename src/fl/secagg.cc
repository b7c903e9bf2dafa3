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

void WipeShare(ShamirShare& share) {
  if (!share.y.empty()) sodium_memzero(share.y.data(), share.y.size() * sizeof(uint64_t));
}

// Fixed-size little-endian fields of the round-1 plaintext, written into a fixed buffer that is
// wiped after sealing (not byte_io.h's ByteWriter: a growing string would leave copies of the
// secret shares in freed memory).
void PutU32(uint32_t v, uint8_t*& out) {
  for (int b = 0; b < 4; ++b) *out++ = static_cast<uint8_t>(v >> (8 * b));
}
void PutU64(uint64_t v, uint8_t*& out) {
  for (int b = 0; b < 8; ++b) *out++ = static_cast<uint8_t>(v >> (8 * b));
}
uint32_t GetU32(const uint8_t*& in) {
  uint32_t v = 0;
  for (int b = 0; b < 4; ++b) v |= static_cast<uint32_t>(*in++) << (8 * b);
  return v;
}
uint64_t GetU64(const uint8_t*& in) {
  uint64_t v = 0;
  for (int b = 0; b < 8; ++b) v |= static_cast<uint64_t>(*in++) << (8 * b);
  return v;
}

constexpr size_t kNonceBytes = crypto_box_NONCEBYTES;
constexpr size_t kSealedBytes = kNonceBytes + crypto_box_MACBYTES + kSecAggSharesPlaintextBytes;
static_assert(crypto_box_NONCEBYTES == 24);
static_assert(crypto_box_BEFORENMBYTES == sizeof(SecAggKey));
static_assert(crypto_box_PUBLICKEYBYTES == sizeof(SecAggKey));
static_assert(crypto_box_SECRETKEYBYTES == sizeof(SecAggKey));

}  // namespace

Result<SecAggKey> SecAggBoxKey(const SecAggKey& own_encryption_secret,
                               const SecAggKey& peer_encryption_public) {
  HML_RETURN_IF_ERROR(SodiumReady());
  SecAggKey key;
  if (crypto_box_beforenm(key.data(), peer_encryption_public.data(),
                          own_encryption_secret.data()) != 0) {
    return InvalidArgumentError(
        "secure aggregation: an encryption public key is a low-order point");
  }
  return key;
}

Result<std::vector<uint8_t>> SealSecAggShares(const SecAggKey& box_key,
                                              const SecAggShares& shares) {
  HML_RETURN_IF_ERROR(SodiumReady());
  if (shares.from < 1 || shares.from > kShamirMaxShares || shares.to < 1 ||
      shares.to > kShamirMaxShares) {
    return InvalidArgumentError("SealSecAggShares: ids " + std::to_string(shares.from) + " -> " +
                                std::to_string(shares.to) + " outside 1.." +
                                std::to_string(kShamirMaxShares));
  }
  if (shares.self_seed_share.y.size() != kSecAggShareChunks ||
      shares.secret_key_share.y.size() != kSecAggShareChunks) {
    return InvalidArgumentError("SealSecAggShares: shares from " + Id(shares.from) + " to " +
                                Id(shares.to) + " do not have " +
                                std::to_string(kSecAggShareChunks) + " elements");
  }
  std::array<uint8_t, kSecAggSharesPlaintextBytes> plain;
  uint8_t* cursor = plain.data();
  PutU32(static_cast<uint32_t>(shares.from), cursor);
  PutU32(static_cast<uint32_t>(shares.to), cursor);
  for (const ShamirShare* share : {&shares.self_seed_share, &shares.secret_key_share}) {
    PutU32(share->x, cursor);
    for (uint64_t y : share->y) PutU64(y, cursor);
  }
  std::vector<uint8_t> sealed(kSealedBytes);
  randombytes_buf(sealed.data(), kNonceBytes);
  const int rc = crypto_box_easy_afternm(sealed.data() + kNonceBytes, plain.data(), plain.size(),
                                         sealed.data(), box_key.data());
  sodium_memzero(plain.data(), plain.size());
  if (rc != 0) return InternalError("SealSecAggShares: crypto_box_easy_afternm failed");
  return sealed;
}

Result<SecAggShares> OpenSecAggShares(const SecAggKey& box_key, const SecAggShareMessage& message) {
  HML_RETURN_IF_ERROR(SodiumReady());
  const std::string what = "the share message from " + Id(message.from) + " to " + Id(message.to);
  if (message.ciphertext.size() != kSealedBytes) {
    return InvalidArgumentError(what + " has " + std::to_string(message.ciphertext.size()) +
                                " bytes, expected " + std::to_string(kSealedBytes));
  }
  std::array<uint8_t, kSecAggSharesPlaintextBytes> plain;
  if (crypto_box_open_easy_afternm(plain.data(), message.ciphertext.data() + kNonceBytes,
                                   message.ciphertext.size() - kNonceBytes,
                                   message.ciphertext.data(), box_key.data()) != 0) {
    return InvalidArgumentError(what + " fails to authenticate (tampered, or not sealed by " +
                                Id(message.from) + " for " + Id(message.to) + ")");
  }
  SecAggShares out;
  const uint8_t* cursor = plain.data();
  const uint32_t inner_from = GetU32(cursor);
  const uint32_t inner_to = GetU32(cursor);
  bool well_formed = true;
  for (ShamirShare* share : {&out.self_seed_share, &out.secret_key_share}) {
    share->x = GetU32(cursor);
    share->y.resize(kSecAggShareChunks);
    for (uint64_t& y : share->y) {
      y = GetU64(cursor);
      well_formed = well_formed && y < kShamirPrime;
    }
    well_formed = well_formed && share->x == static_cast<uint32_t>(message.to);
  }
  sodium_memzero(plain.data(), plain.size());
  if (inner_from != static_cast<uint32_t>(message.from) ||
      inner_to != static_cast<uint32_t>(message.to)) {
    WipeShare(out.self_seed_share);
    WipeShare(out.secret_key_share);
    return InvalidArgumentError(what + " was sealed as a message from " +
                                std::to_string(inner_from) + " to " + std::to_string(inner_to) +
                                " (re-addressed in transit)");
  }
  if (!well_formed) {
    WipeShare(out.self_seed_share);
    WipeShare(out.secret_key_share);
    return InvalidArgumentError(what + " carries shares with a wrong x coordinate or element");
  }
  out.from = message.from;
  out.to = message.to;
  return out;
}

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
  if (crypto_box_keypair(client.public_keys_.encryption.data(), client.encryption_secret_.data()) !=
      0) {
    return InternalError("SecAggClient: crypto_box_keypair failed");
  }
  randombytes_buf(client.masking_secret_.data(), client.masking_secret_.size());
  crypto_scalarmult_base(client.public_keys_.masking.data(), client.masking_secret_.data());
  return client;
}

SecAggClient::SecAggClient(SecAggClient&& other) noexcept
    : config_(other.config_),
      id_(other.id_),
      stage_(other.stage_),
      public_keys_(other.public_keys_),
      encryption_secret_(other.encryption_secret_),
      masking_secret_(other.masking_secret_),
      self_seed_(other.self_seed_),
      peer_keys_(std::move(other.peer_keys_)),
      box_keys_(std::move(other.box_keys_)),
      held_(std::move(other.held_)) {
  other.Wipe();
}

SecAggClient::~SecAggClient() { Wipe(); }

void SecAggClient::Wipe() {
  sodium_memzero(encryption_secret_.data(), encryption_secret_.size());
  sodium_memzero(masking_secret_.data(), masking_secret_.size());
  sodium_memzero(self_seed_.data(), self_seed_.size());
  for (auto& [peer, key] : box_keys_) sodium_memzero(key.data(), key.size());
  for (auto& [peer, shares] : held_) {
    WipeShare(shares.self_seed_share);
    WipeShare(shares.secret_key_share);
  }
}

Result<std::vector<SecAggShareMessage>> SecAggClient::ShareKeys(
    const std::map<int, SecAggPublicKeys>& public_keys) {
  if (stage_ != Stage::kKeys) {
    return FailedPreconditionError(Id(id_) + ": ShareKeys called twice");
  }
  if (public_keys.size() < static_cast<size_t>(config_.threshold)) {
    return AbortedError(Id(id_) + ": only " + std::to_string(public_keys.size()) +
                        " clients advertised keys, fewer than the threshold " +
                        std::to_string(config_.threshold));
  }
  auto own = public_keys.find(id_);
  if (own == public_keys.end() || own->second.encryption != public_keys_.encryption ||
      own->second.masking != public_keys_.masking) {
    return InvalidArgumentError(Id(id_) + ": its own public keys are missing or altered");
  }
  // All 2n keys must be distinct: a repeated encryption key would let one client open shares
  // meant for another, a repeated masking key would cancel pairwise masks.
  std::set<SecAggKey> distinct;
  for (const auto& [peer, keys] : public_keys) {
    if (peer < 1 || peer > config_.num_clients) {
      return InvalidArgumentError(Id(id_) + ": public keys for unknown " + Id(peer));
    }
    if (!distinct.insert(keys.encryption).second) {
      return InvalidArgumentError(Id(id_) + ": the encryption key of " + Id(peer) +
                                  " repeats another advertised key");
    }
    if (!distinct.insert(keys.masking).second) {
      return InvalidArgumentError(Id(id_) + ": the masking key of " + Id(peer) +
                                  " repeats another advertised key");
    }
  }
  std::map<int, SecAggKey> box_keys;
  auto wipe_box_keys = [&box_keys] {
    for (auto& [peer, key] : box_keys) sodium_memzero(key.data(), key.size());
  };
  for (const auto& [peer, keys] : public_keys) {
    Result<SecAggKey> key = SecAggBoxKey(encryption_secret_, keys.encryption);
    if (!key.ok()) {
      wipe_box_keys();
      return key.status().WithContext(Id(id_) + ": encryption key of " + Id(peer));
    }
    box_keys.emplace(peer, *key);
    sodium_memzero(key->data(), key->size());
  }
  SecAggKey seed;
  randombytes_buf(seed.data(), seed.size());
  Result<std::vector<ShamirShare>> seed_shares =
      ShamirSplit(seed, config_.threshold, config_.num_clients);
  Result<std::vector<ShamirShare>> key_shares =
      ShamirSplit(masking_secret_, config_.threshold, config_.num_clients);
  auto wipe_shares = [&] {
    for (auto* shares : {&seed_shares, &key_shares}) {
      if (shares->ok()) {
        for (ShamirShare& share : **shares) WipeShare(share);
      }
    }
  };
  auto wipe_all = [&] {
    wipe_box_keys();
    wipe_shares();
    sodium_memzero(seed.data(), seed.size());
  };
  if (!seed_shares.ok() || !key_shares.ok()) {
    wipe_all();
    return (seed_shares.ok() ? key_shares.status() : seed_shares.status())
        .WithContext(Id(id_) + ": splitting its secrets");
  }
  std::vector<SecAggShareMessage> out;
  out.reserve(public_keys.size());
  for (const auto& [peer, keys] : public_keys) {
    SecAggShares shares;
    shares.from = id_;
    shares.to = peer;
    shares.self_seed_share = std::move((*seed_shares)[peer - 1]);
    shares.secret_key_share = std::move((*key_shares)[peer - 1]);
    Result<std::vector<uint8_t>> sealed = SealSecAggShares(box_keys.at(peer), shares);
    WipeShare(shares.self_seed_share);
    WipeShare(shares.secret_key_share);
    if (!sealed.ok()) {
      wipe_all();
      return sealed.status().WithContext(Id(id_) + ": sealing shares for " + Id(peer));
    }
    out.push_back(SecAggShareMessage{id_, peer, std::move(*sealed)});
  }
  wipe_shares();  // those of clients that did not advertise
  // Commit only now: a refused call leaves the client as it was.
  self_seed_ = seed;
  sodium_memzero(seed.data(), seed.size());
  box_keys_ = std::move(box_keys);
  peer_keys_ = public_keys;
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
  std::map<int, SecAggShares> held;
  auto refuse = [&held](Status status) {
    for (auto& [peer, shares] : held) {
      WipeShare(shares.self_seed_share);
      WipeShare(shares.secret_key_share);
    }
    return status;
  };
  for (const SecAggShareMessage& m : received) {
    if (m.to != id_) {
      return refuse(InvalidArgumentError(Id(id_) + ": received a share from " + Id(m.from) +
                                         " addressed to " + Id(m.to)));
    }
    auto box_key = box_keys_.find(m.from);
    if (box_key == box_keys_.end()) {
      return refuse(InvalidArgumentError(Id(id_) + ": received a share from " + Id(m.from) +
                                         ", which advertised no key"));
    }
    if (held.contains(m.from)) {
      return refuse(InvalidArgumentError(Id(id_) + ": two shares from " + Id(m.from)));
    }
    Result<SecAggShares> opened = OpenSecAggShares(box_key->second, m);
    if (!opened.ok()) return refuse(opened.status().WithContext(Id(id_) + " refuses a share"));
    held.emplace(m.from, std::move(*opened));
  }
  if (!held.contains(id_)) {
    return refuse(
        InvalidArgumentError(Id(id_) + ": its own share is missing from the relayed set"));
  }
  if (held.size() < static_cast<size_t>(config_.threshold)) {
    return refuse(AbortedError(Id(id_) + ": only " + std::to_string(held.size()) +
                               " clients shared keys, fewer than the threshold " +
                               std::to_string(config_.threshold)));
  }
  std::vector<uint32_t> y(x.begin(), x.end());
  std::vector<uint32_t> scratch;
  AddPrg(self_seed_, /*subtract=*/false, y, scratch);
  for (const auto& [peer, shares] : held) {
    if (peer == id_) continue;
    Result<SecAggKey> seed =
        PairSeed(masking_secret_, public_keys_.masking, peer_keys_.at(peer).masking);
    if (!seed.ok()) {
      return refuse(seed.status().WithContext(Id(id_) + ": masking key of " + Id(peer)));
    }
    AddPrg(*seed, /*subtract=*/peer < id_, y, scratch);
    sodium_memzero(seed->data(), seed->size());
  }
  held_ = std::move(held);
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

Status SecAggServer::ReceivePublicKey(int id, const SecAggPublicKeys& keys) {
  HML_RETURN_IF_ERROR(CheckStage(Stage::kKeys, "ReceivePublicKey"));
  if (id < 1 || id > config_.num_clients) {
    return InvalidArgumentError("secure aggregation server: unknown " + Id(id));
  }
  if (!public_keys_.emplace(id, keys).second) {
    return AlreadyExistsError("secure aggregation server: second pair of public keys from " +
                              Id(id));
  }
  return Status::Ok();
}

Result<std::map<int, SecAggPublicKeys>> SecAggServer::PublicKeys() {
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
    if (derived_public != public_keys_[d].masking) {
      return DataLossError("secure aggregation server: the reconstructed key of " + Id(d) +
                           " does not match its public key");
    }
    for (int i : survivors_) {
      HML_ASSIGN_OR_RETURN(SecAggKey seed,
                           PairSeed(secret, derived_public, public_keys_[i].masking));
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
    HML_RETURN_IF_ERROR(server.ReceivePublicKey(c.id(), c.public_keys()));
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
