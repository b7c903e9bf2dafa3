// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/secure_round.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "src/fl/byte_io.h"

namespace hml::fl {
namespace {

constexpr char kClientMagic[4] = {'H', 'M', 'S', 'C'};
constexpr char kReplyMagic[4] = {'H', 'M', 'S', 'R'};
constexpr uint8_t kVersion = 1;
constexpr uint32_t kMaxCiphertext = 4096;
constexpr uint32_t kMaxShareValues = 64;
constexpr uint32_t kMaxReason = 4096;
constexpr const char* kFormat = "secure aggregation wire";

Status Malformed(const std::string& what) {
  return InvalidArgumentError(std::string(kFormat) + ": " + what);
}

// --- Writing ---

void WriteKey(ByteWriter& w, const SecAggKey& key) {
  w.Bytes(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

void WriteShareMessages(ByteWriter& w, const std::vector<SecAggShareMessage>& messages) {
  w.Int(static_cast<uint32_t>(messages.size()));
  for (const SecAggShareMessage& m : messages) {
    w.Int(static_cast<int32_t>(m.from));
    w.Int(static_cast<int32_t>(m.to));
    w.Int(static_cast<uint32_t>(m.ciphertext.size()));
    w.Bytes(
        std::string_view(reinterpret_cast<const char*>(m.ciphertext.data()), m.ciphertext.size()));
  }
}

void WriteShareMap(ByteWriter& w, const std::map<int, ShamirShare>& shares) {
  w.Int(static_cast<uint32_t>(shares.size()));
  for (const auto& [owner, share] : shares) {
    w.Int(static_cast<int32_t>(owner));
    w.Int(share.x);
    w.Int(static_cast<uint32_t>(share.y.size()));
    for (uint64_t y : share.y) w.Int(y);
  }
}

void WriteIds(ByteWriter& w, const std::vector<int>& ids) {
  w.Int(static_cast<uint32_t>(ids.size()));
  for (int id : ids) w.Int(static_cast<int32_t>(id));
}

void WriteHeader(ByteWriter& w, const char (&magic)[4], SecureStage stage) {
  w.Bytes(std::string_view(magic, 4));
  w.Int(kVersion);
  w.Int(static_cast<uint8_t>(stage));
  w.Int(uint16_t{0});
}

// --- Reading ---

Result<SecAggKey> ReadKey(ByteReader& r, const char* field) {
  HML_ASSIGN_OR_RETURN(std::string_view bytes, r.Bytes(32, field));
  SecAggKey key;
  std::memcpy(key.data(), bytes.data(), key.size());
  return key;
}

// A count that must not exceed `limit` nor promise more than the bytes left at `min_each` bytes
// per element (so a forged count cannot make the reader allocate).
Result<uint64_t> ReadCount(ByteReader& r, const char* field, uint64_t limit, size_t min_each,
                           bool wide = false) {
  uint64_t count = 0;
  if (wide) {
    HML_ASSIGN_OR_RETURN(count, r.Int<uint64_t>(field));
  } else {
    HML_ASSIGN_OR_RETURN(uint32_t narrow, r.Int<uint32_t>(field));
    count = narrow;
  }
  if (count > limit) {
    return Malformed(std::string(field) + " " + std::to_string(count) + " is over the limit " +
                     std::to_string(limit));
  }
  if (count * min_each > r.left()) {
    return Malformed(std::string(field) + " " + std::to_string(count) +
                     " is more than the message holds");
  }
  return count;
}

Result<int> ReadId(ByteReader& r, const char* field, int64_t max_clients) {
  HML_ASSIGN_OR_RETURN(int32_t id, r.Int<int32_t>(field));
  if (id < 1 || id > max_clients) {
    return Malformed(std::string(field) + " " + std::to_string(id) + " is not a client id");
  }
  return id;
}

Result<std::vector<SecAggShareMessage>> ReadShareMessages(ByteReader& r,
                                                          const SecureWireLimits& limits) {
  HML_ASSIGN_OR_RETURN(uint64_t count, ReadCount(r, "share message count",
                                                 static_cast<uint64_t>(limits.max_clients), 12));
  std::vector<SecAggShareMessage> out(count);
  for (SecAggShareMessage& m : out) {
    HML_ASSIGN_OR_RETURN(m.from, ReadId(r, "share sender", limits.max_clients));
    HML_ASSIGN_OR_RETURN(m.to, ReadId(r, "share recipient", limits.max_clients));
    HML_ASSIGN_OR_RETURN(uint64_t size, ReadCount(r, "share ciphertext size", kMaxCiphertext, 1));
    HML_ASSIGN_OR_RETURN(std::string_view bytes, r.Bytes(size, "share ciphertext"));
    m.ciphertext.assign(bytes.begin(), bytes.end());
  }
  return out;
}

Result<std::map<int, ShamirShare>> ReadShareMap(ByteReader& r, const SecureWireLimits& limits) {
  HML_ASSIGN_OR_RETURN(uint64_t count, ReadCount(r, "unmask share count",
                                                 static_cast<uint64_t>(limits.max_clients), 12));
  std::map<int, ShamirShare> out;
  for (uint64_t i = 0; i < count; ++i) {
    HML_ASSIGN_OR_RETURN(int owner, ReadId(r, "unmask share owner", limits.max_clients));
    ShamirShare share;
    HML_ASSIGN_OR_RETURN(share.x, r.Int<uint32_t>("unmask share x"));
    HML_ASSIGN_OR_RETURN(uint64_t values,
                         ReadCount(r, "unmask share value count", kMaxShareValues, 8));
    share.y.resize(values);
    for (uint64_t& y : share.y) {
      HML_ASSIGN_OR_RETURN(y, r.Int<uint64_t>("unmask share value"));
    }
    if (!out.emplace(owner, std::move(share)).second) {
      return Malformed("unmask response names client " + std::to_string(owner) + " twice");
    }
  }
  return out;
}

Result<std::vector<int>> ReadIds(ByteReader& r, const char* field, const SecureWireLimits& limits) {
  HML_ASSIGN_OR_RETURN(uint64_t count,
                       ReadCount(r, field, static_cast<uint64_t>(limits.max_clients), 4));
  std::vector<int> out(count);
  for (int& id : out) {
    HML_ASSIGN_OR_RETURN(id, ReadId(r, field, limits.max_clients));
  }
  return out;
}

Result<SecureStage> ReadHeader(ByteReader& r, const char (&magic)[4], const char* what) {
  HML_ASSIGN_OR_RETURN(std::string_view m, r.Bytes(4, "magic"));
  if (m != std::string_view(magic, 4)) return Malformed(std::string("not a ") + what);
  HML_ASSIGN_OR_RETURN(uint8_t version, r.Int<uint8_t>("version"));
  if (version != kVersion) {
    return Malformed(std::string(what) + " version " + std::to_string(version) +
                     " is not supported (this build reads " + std::to_string(kVersion) + ")");
  }
  HML_ASSIGN_OR_RETURN(uint8_t stage, r.Int<uint8_t>("stage"));
  if (stage < static_cast<uint8_t>(SecureStage::kKeys) ||
      stage > static_cast<uint8_t>(SecureStage::kOut)) {
    return Malformed(std::string(what) + " stage " + std::to_string(stage) + " is unknown");
  }
  HML_ASSIGN_OR_RETURN(uint16_t reserved, r.Int<uint16_t>("reserved"));
  if (reserved != 0) return Malformed("reserved bits are set");
  return static_cast<SecureStage>(stage);
}

Status CheckEnd(const ByteReader& r) {
  if (r.left() != 0) return Malformed(std::to_string(r.left()) + " trailing bytes");
  return Status::Ok();
}

// Stage deadlines as fractions of the round's window (the file comment of secure_round.h).
double StageEndFraction(SecureStage stage) {
  switch (stage) {
    case SecureStage::kKeys:
      return 0.10;
    case SecureStage::kShares:
      return 0.25;
    case SecureStage::kMaskedInput:
      return 0.85;
    case SecureStage::kUnmask:
      return 0.95;
    default:  // done or aborted: nothing closes before the round does
      return 1.0;
  }
}

}  // namespace

Result<FixedPointOptions> SecureFixedPoint(int num_clients) {
  if (num_clients < 1) {
    return InvalidArgumentError("secure round: a cohort needs at least one client, got " +
                                std::to_string(num_clients));
  }
  FixedPointOptions fixed;
  fixed.max_abs = kSecureMaxAbs;
  fixed.scale = std::floor((2147483647.0 / num_clients - 0.5) / kSecureMaxAbs) / 2;
  HML_RETURN_IF_ERROR(fixed.Validate(num_clients));
  return fixed;
}

int SecureThreshold(int num_clients, double threshold_fraction) {
  const int t = std::max(num_clients / 2 + 1,
                         static_cast<int>(std::ceil(threshold_fraction * num_clients - 1e-9)));
  return std::min(std::max(t, 2), num_clients);
}

Result<std::vector<uint32_t>> EncodeSecureInput(std::span<const float> delta, int64_t num_examples,
                                                int num_clients) {
  HML_ASSIGN_OR_RETURN(FixedPointOptions fixed, SecureFixedPoint(num_clients));
  if (num_examples < 1) {
    return InvalidArgumentError("secure round: the example count must be >= 1, got " +
                                std::to_string(num_examples));
  }
  const double weight = static_cast<double>(num_examples) / kSecureWeightScale;
  std::vector<float> values(delta.size() + 1);
  for (size_t j = 0; j < delta.size(); ++j) {
    if (!std::isfinite(delta[j])) {
      return InvalidArgumentError("secure round: delta element " + std::to_string(j) +
                                  " is not finite");
    }
    values[j] = static_cast<float>(std::clamp(weight * delta[j], -kSecureMaxAbs, kSecureMaxAbs));
  }
  values.back() = static_cast<float>(std::min(weight, kSecureMaxAbs));
  return EncodeFixedPoint(values, fixed);
}

SecureAggregate DecodeSecureSum(std::span<const uint32_t> sum, const FixedPointOptions& fixed,
                                std::vector<std::string> participants) {
  const std::vector<float> decoded = DecodeFixedPoint(sum, fixed);
  SecureAggregate aggregate;
  aggregate.participants = std::move(participants);
  if (decoded.empty()) return aggregate;
  aggregate.weighted_delta_sum.resize(decoded.size() - 1);
  for (size_t j = 0; j + 1 < decoded.size(); ++j) {
    aggregate.weighted_delta_sum[j] = static_cast<float>(decoded[j] * kSecureWeightScale);
  }
  aggregate.total_examples = decoded.back() * kSecureWeightScale;
  return aggregate;
}

std::string_view SecureStageName(SecureStage stage) {
  switch (stage) {
    case SecureStage::kKeys:
      return "keys";
    case SecureStage::kShares:
      return "shares";
    case SecureStage::kMaskedInput:
      return "masked input";
    case SecureStage::kUnmask:
      return "unmasking";
    case SecureStage::kWait:
      return "wait";
    case SecureStage::kDone:
      return "done";
    case SecureStage::kOut:
      return "out";
  }
  return "unknown";
}

// --- Byte form ---

std::string EncodeSecureClientMessage(const SecureClientMessage& message) {
  ByteWriter w;
  WriteHeader(w, kClientMagic, message.stage);
  switch (message.stage) {
    case SecureStage::kKeys:
      WriteKey(w, message.keys.encryption);
      WriteKey(w, message.keys.masking);
      break;
    case SecureStage::kShares:
      WriteShareMessages(w, message.shares);
      break;
    case SecureStage::kMaskedInput:
      w.Int(static_cast<uint64_t>(message.masked_input.size()));
      for (uint32_t v : message.masked_input) w.Int(v);
      break;
    case SecureStage::kUnmask:
      w.Int(static_cast<int32_t>(message.unmask.from));
      WriteShareMap(w, message.unmask.self_seed_shares);
      WriteShareMap(w, message.unmask.secret_key_shares);
      break;
    default:
      break;
  }
  return std::move(w.out());
}

Result<SecureClientMessage> DecodeSecureClientMessage(std::string_view bytes,
                                                      const SecureWireLimits& limits) {
  ByteReader r(bytes, kFormat);
  SecureClientMessage m;
  HML_ASSIGN_OR_RETURN(m.stage, ReadHeader(r, kClientMagic, "secure aggregation message"));
  switch (m.stage) {
    case SecureStage::kKeys: {
      HML_ASSIGN_OR_RETURN(m.keys.encryption, ReadKey(r, "encryption key"));
      HML_ASSIGN_OR_RETURN(m.keys.masking, ReadKey(r, "masking key"));
      break;
    }
    case SecureStage::kShares: {
      HML_ASSIGN_OR_RETURN(m.shares, ReadShareMessages(r, limits));
      break;
    }
    case SecureStage::kMaskedInput: {
      HML_ASSIGN_OR_RETURN(
          uint64_t count,
          ReadCount(r, "masked input length", static_cast<uint64_t>(limits.max_elements) + 1, 4,
                    /*wide=*/true));
      m.masked_input.resize(count);
      for (uint32_t& v : m.masked_input) {
        HML_ASSIGN_OR_RETURN(v, r.Int<uint32_t>("masked input"));
      }
      break;
    }
    case SecureStage::kUnmask: {
      HML_ASSIGN_OR_RETURN(m.unmask.from, ReadId(r, "unmask sender", limits.max_clients));
      HML_ASSIGN_OR_RETURN(m.unmask.self_seed_shares, ReadShareMap(r, limits));
      HML_ASSIGN_OR_RETURN(m.unmask.secret_key_shares, ReadShareMap(r, limits));
      break;
    }
    case SecureStage::kWait:
      break;
    default:
      return Malformed("a device cannot send stage '" + std::string(SecureStageName(m.stage)) +
                       "'");
  }
  HML_RETURN_IF_ERROR(CheckEnd(r));
  return m;
}

std::string EncodeSecureReply(const SecureReply& reply) {
  ByteWriter w;
  WriteHeader(w, kReplyMagic, reply.stage);
  w.Int(static_cast<int32_t>(reply.index));
  w.Int(static_cast<int32_t>(reply.clients));
  w.Int(static_cast<int32_t>(reply.threshold));
  w.Int(reply.elements);
  w.Int(reply.stage_deadline_ms);
  w.Int(reply.retry_after_ms);
  switch (reply.stage) {
    case SecureStage::kShares:
      w.Int(static_cast<uint32_t>(reply.public_keys.size()));
      for (const auto& [id, keys] : reply.public_keys) {
        w.Int(static_cast<int32_t>(id));
        WriteKey(w, keys.encryption);
        WriteKey(w, keys.masking);
      }
      break;
    case SecureStage::kMaskedInput:
      WriteShareMessages(w, reply.shares);
      break;
    case SecureStage::kUnmask:
      WriteIds(w, reply.unmask.survivors);
      WriteIds(w, reply.unmask.dropped);
      break;
    case SecureStage::kOut:
      w.Int(static_cast<uint32_t>(reply.reason.size()));
      w.Bytes(reply.reason);
      break;
    default:
      break;
  }
  return std::move(w.out());
}

Result<SecureReply> DecodeSecureReply(std::string_view bytes, const SecureWireLimits& limits) {
  ByteReader r(bytes, kFormat);
  SecureReply reply;
  HML_ASSIGN_OR_RETURN(reply.stage, ReadHeader(r, kReplyMagic, "secure aggregation reply"));
  HML_ASSIGN_OR_RETURN(reply.index, r.Int<int32_t>("index"));
  HML_ASSIGN_OR_RETURN(reply.clients, r.Int<int32_t>("clients"));
  HML_ASSIGN_OR_RETURN(reply.threshold, r.Int<int32_t>("threshold"));
  HML_ASSIGN_OR_RETURN(reply.elements, r.Int<int64_t>("elements"));
  HML_ASSIGN_OR_RETURN(reply.stage_deadline_ms, r.Int<int64_t>("stage deadline"));
  HML_ASSIGN_OR_RETURN(reply.retry_after_ms, r.Int<int64_t>("retry after"));
  if (reply.clients < 2 || reply.clients > limits.max_clients) {
    return Malformed("cohort size " + std::to_string(reply.clients) + " is out of range");
  }
  if (reply.index < 1 || reply.index > reply.clients) {
    return Malformed("index " + std::to_string(reply.index) + " is not in 1.." +
                     std::to_string(reply.clients));
  }
  if (reply.threshold < 2 || reply.threshold > reply.clients) {
    return Malformed("threshold " + std::to_string(reply.threshold) + " is out of range");
  }
  if (reply.elements < 1 || reply.elements > limits.max_elements) {
    return Malformed("element count " + std::to_string(reply.elements) + " is out of range");
  }
  if (reply.retry_after_ms < 0) return Malformed("retry after is negative");
  switch (reply.stage) {
    case SecureStage::kShares: {
      HML_ASSIGN_OR_RETURN(uint64_t count, ReadCount(r, "public key count",
                                                     static_cast<uint64_t>(reply.clients), 68));
      for (uint64_t i = 0; i < count; ++i) {
        HML_ASSIGN_OR_RETURN(int id, ReadId(r, "public key owner", reply.clients));
        SecAggPublicKeys keys;
        HML_ASSIGN_OR_RETURN(keys.encryption, ReadKey(r, "encryption key"));
        HML_ASSIGN_OR_RETURN(keys.masking, ReadKey(r, "masking key"));
        if (!reply.public_keys.emplace(id, keys).second) {
          return Malformed("public keys of client " + std::to_string(id) + " appear twice");
        }
      }
      break;
    }
    case SecureStage::kMaskedInput: {
      HML_ASSIGN_OR_RETURN(reply.shares, ReadShareMessages(r, limits));
      break;
    }
    case SecureStage::kUnmask: {
      HML_ASSIGN_OR_RETURN(reply.unmask.survivors, ReadIds(r, "survivors", limits));
      HML_ASSIGN_OR_RETURN(reply.unmask.dropped, ReadIds(r, "dropped", limits));
      break;
    }
    case SecureStage::kOut: {
      HML_ASSIGN_OR_RETURN(uint64_t size, ReadCount(r, "reason size", kMaxReason, 1));
      HML_ASSIGN_OR_RETURN(std::string_view reason, r.Bytes(size, "reason"));
      reply.reason = std::string(reason);
      break;
    }
    default:
      break;
  }
  HML_RETURN_IF_ERROR(CheckEnd(r));
  return reply;
}

// --- Server ---

Status SecureRoundOptions::Validate() const {
  if (cohort.size() < 2) {
    return InvalidArgumentError("secure round: the cohort needs at least 2 devices, got " +
                                std::to_string(cohort.size()));
  }
  std::set<std::string> seen;
  for (const std::string& id : cohort) {
    if (!seen.insert(id).second) {
      return InvalidArgumentError("secure round: device '" + id + "' is in the cohort twice");
    }
  }
  if (elements < 1) {
    return InvalidArgumentError("secure round: elements must be >= 1, got " +
                                std::to_string(elements));
  }
  if (!(threshold_fraction > 0.5 && threshold_fraction <= 1.0)) {
    return InvalidArgumentError("secure round: threshold_fraction must be in (0.5, 1], got " +
                                std::to_string(threshold_fraction));
  }
  if (deadline_ms <= start_ms) {
    return InvalidArgumentError("secure round: the deadline must be after the start");
  }
  if (poll_ms < 1) {
    return InvalidArgumentError("secure round: poll_ms must be >= 1, got " +
                                std::to_string(poll_ms));
  }
  return Status::Ok();
}

Result<std::unique_ptr<SecureRoundServer>> SecureRoundServer::Create(SecureRoundOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  const int n = static_cast<int>(options.cohort.size());
  SecAggConfig config;
  config.num_clients = n;
  config.threshold = SecureThreshold(n, options.threshold_fraction);
  config.vector_length = static_cast<size_t>(options.elements) + 1;
  HML_ASSIGN_OR_RETURN(FixedPointOptions fixed, SecureFixedPoint(n));
  HML_ASSIGN_OR_RETURN(SecAggServer server, SecAggServer::Create(config));
  return std::unique_ptr<SecureRoundServer>(
      new SecureRoundServer(std::move(options), config, fixed, std::move(server)));
}

SecureRoundServer::SecureRoundServer(SecureRoundOptions options, SecAggConfig config,
                                     FixedPointOptions fixed, SecAggServer server)
    : options_(std::move(options)), config_(config), fixed_(fixed), server_(std::move(server)) {
  for (size_t i = 0; i < options_.cohort.size(); ++i) {
    index_of_[options_.cohort[i]] = static_cast<int>(i) + 1;
    all_.insert(static_cast<int>(i) + 1);
  }
}

int64_t SecureRoundServer::StageDeadline(SecureStage stage) const {
  const double window = static_cast<double>(options_.deadline_ms - options_.start_ms);
  return options_.start_ms + static_cast<int64_t>(std::floor(window * StageEndFraction(stage)));
}

const std::set<int>& SecureRoundServer::Expected() const {
  switch (stage_) {
    case SecureStage::kKeys:
      return all_;
    case SecureStage::kShares:
      return keyed_;
    case SecureStage::kMaskedInput:
      return shared_;
    default:
      return masked_;
  }
}

void SecureRoundServer::Abort(const Status& why) {
  abort_reason_ = why.message();
  stage_ = SecureStage::kOut;
}

void SecureRoundServer::Advance(int64_t now_ms) {
  while (stage_ >= SecureStage::kKeys && stage_ <= SecureStage::kUnmask) {
    const std::set<int>* answered = nullptr;
    switch (stage_) {
      case SecureStage::kKeys:
        answered = &keyed_;
        break;
      case SecureStage::kShares:
        answered = &shared_;
        break;
      case SecureStage::kMaskedInput:
        answered = &masked_;
        break;
      default:
        answered = &unmasked_;
        break;
    }
    const bool everyone = answered->size() == Expected().size();
    if (!everyone && now_ms < StageDeadline(stage_)) return;
    switch (stage_) {
      case SecureStage::kKeys: {
        Result<std::map<int, SecAggPublicKeys>> keys = server_.PublicKeys();
        if (!keys.ok()) return Abort(keys.status());
        public_keys_ = std::move(*keys);
        stage_ = SecureStage::kShares;
        break;
      }
      case SecureStage::kShares: {
        // Closing the share stage: SharesFor fails below the threshold.
        Result<std::vector<SecAggShareMessage>> closed =
            server_.SharesFor(shared_.empty() ? 1 : *shared_.begin());
        if (!closed.ok()) return Abort(closed.status());
        stage_ = SecureStage::kMaskedInput;
        break;
      }
      case SecureStage::kMaskedInput: {
        Result<SecAggUnmaskRequest> request = server_.UnmaskRequest();
        if (!request.ok()) return Abort(request.status());
        unmask_request_ = std::move(*request);
        stage_ = SecureStage::kUnmask;
        break;
      }
      default: {
        Result<std::vector<uint32_t>> sum = server_.Finish();
        if (!sum.ok()) return Abort(sum.status());
        std::vector<std::string> participants;
        for (int id : masked_) participants.push_back(options_.cohort[static_cast<size_t>(id - 1)]);
        SecureAggregate aggregate = DecodeSecureSum(*sum, fixed_, std::move(participants));
        aggregate.wire_bytes = wire_bytes_;
        aggregate_ = std::move(aggregate);
        stage_ = SecureStage::kDone;
        break;
      }
    }
  }
}

Status SecureRoundServer::Receive(int index, const SecureClientMessage& message) {
  if (message.stage == SecureStage::kWait) return Status::Ok();
  if (stage_ == SecureStage::kDone || stage_ == SecureStage::kOut) return Status::Ok();
  if (message.stage > stage_) {
    return InvalidArgumentError("secure round: a '" + std::string(SecureStageName(message.stage)) +
                                "' message while the stage '" +
                                std::string(SecureStageName(stage_)) + "' is open");
  }
  // A late message for a closed stage, or a repeat: answered like a poll.
  if (message.stage < stage_) return Status::Ok();
  switch (stage_) {
    case SecureStage::kKeys: {
      if (keyed_.contains(index)) return Status::Ok();
      // A key another device sent is a copy (a replay, or a device cloning another's identity):
      // the pairwise masks of two clients with one key would cancel in the open.
      for (const SecAggKey* key : {&message.keys.encryption, &message.keys.masking}) {
        if (keys_seen_.contains(*key)) {
          return InvalidArgumentError("secure round: client " + std::to_string(index) +
                                      " sent a public key another client sent");
        }
      }
      HML_RETURN_IF_ERROR(server_.ReceivePublicKey(index, message.keys));
      keys_seen_.insert(message.keys.encryption);
      keys_seen_.insert(message.keys.masking);
      keyed_.insert(index);
      return Status::Ok();
    }
    case SecureStage::kShares: {
      if (shared_.contains(index) || !keyed_.contains(index)) return Status::Ok();
      HML_RETURN_IF_ERROR(server_.ReceiveShares(index, message.shares));
      shared_.insert(index);
      return Status::Ok();
    }
    case SecureStage::kMaskedInput: {
      if (masked_.contains(index) || !shared_.contains(index)) return Status::Ok();
      HML_RETURN_IF_ERROR(server_.ReceiveMaskedInput(index, message.masked_input));
      masked_.insert(index);
      return Status::Ok();
    }
    default: {
      if (unmasked_.contains(index) || !masked_.contains(index)) return Status::Ok();
      if (message.unmask.from != index) {
        return InvalidArgumentError("secure round: an unmask response from client " +
                                    std::to_string(index) + " names client " +
                                    std::to_string(message.unmask.from) + " as its sender");
      }
      HML_RETURN_IF_ERROR(server_.ReceiveUnmaskResponse(message.unmask));
      unmasked_.insert(index);
      return Status::Ok();
    }
  }
}

SecureReply SecureRoundServer::ReplyTo(int index, int64_t now_ms) {
  SecureReply reply;
  reply.index = index;
  reply.clients = config_.num_clients;
  reply.threshold = config_.threshold;
  reply.elements = options_.elements;
  const auto out = [&](std::string reason) {
    reply.stage = SecureStage::kOut;
    reply.reason = std::move(reason);
    return reply;
  };
  if (stage_ == SecureStage::kOut)
    return out("the round's secure aggregation aborted: " + abort_reason_);
  if (stage_ == SecureStage::kDone) {
    if (masked_.contains(index)) {
      reply.stage = SecureStage::kDone;
      return reply;
    }
    return out("this device's masked input did not arrive in time");
  }
  reply.stage_deadline_ms = StageDeadline(stage_);
  // The sets a device must be in to take part in each stage, with what it missed otherwise.
  if (stage_ >= SecureStage::kShares && !keyed_.contains(index)) {
    return out("this device's public keys did not arrive in time");
  }
  if (stage_ >= SecureStage::kMaskedInput && !shared_.contains(index)) {
    return out("this device's shares did not arrive in time");
  }
  if (stage_ >= SecureStage::kUnmask && !masked_.contains(index)) {
    return out("this device's masked input did not arrive in time");
  }
  bool answered = false;
  switch (stage_) {
    case SecureStage::kKeys:
      answered = keyed_.contains(index);
      break;
    case SecureStage::kShares:
      answered = shared_.contains(index);
      if (!answered) reply.public_keys = public_keys_;
      break;
    case SecureStage::kMaskedInput:
      answered = masked_.contains(index);
      if (!answered) {
        Result<std::vector<SecAggShareMessage>> shares = server_.SharesFor(index);
        if (shares.ok()) reply.shares = std::move(*shares);
      }
      break;
    default:
      answered = unmasked_.contains(index);
      if (!answered) reply.unmask = unmask_request_;
      break;
  }
  if (answered) {
    reply.stage = SecureStage::kWait;
    reply.retry_after_ms =
        std::clamp<int64_t>(reply.stage_deadline_ms - now_ms, 1, options_.poll_ms);
    return reply;
  }
  reply.stage = stage_;
  return reply;
}

Result<SecureReply> SecureRoundServer::Exchange(const std::string& device,
                                                const SecureClientMessage& message,
                                                int64_t wire_bytes, int64_t now_ms) {
  const auto it = index_of_.find(device);
  if (it == index_of_.end()) {
    return PermissionDeniedError("secure round: device '" + device +
                                 "' is not in the round's cohort");
  }
  Advance(now_ms);
  wire_bytes_ += std::max<int64_t>(wire_bytes, 0);
  HML_RETURN_IF_ERROR(Receive(it->second, message));
  Advance(now_ms);
  return ReplyTo(it->second, now_ms);
}

void SecureRoundServer::Abandon(const std::string& reason) {
  if (stage_ != SecureStage::kDone && stage_ != SecureStage::kOut) {
    Abort(AbortedError(reason));
  }
}

std::optional<SecureAggregate> SecureRoundServer::TakeAggregate() {
  std::optional<SecureAggregate> out = std::move(aggregate_);
  aggregate_.reset();
  return out;
}

// --- Client ---

Result<SecureClientMessage> SecureRoundClient::Respond(
    const SecureReply& reply, std::optional<std::span<const uint32_t>> input) {
  SecureClientMessage message;  // a poll unless a stage asks for more
  if (reply.stage == SecureStage::kWait || reply.stage == SecureStage::kDone ||
      reply.stage == SecureStage::kOut) {
    return message;
  }
  if (client_.has_value() && (reply.index != index_ || reply.clients != clients_)) {
    return InvalidArgumentError("secure round: the server changed this device's index from " +
                                std::to_string(index_) + " of " + std::to_string(clients_) +
                                " to " + std::to_string(reply.index) + " of " +
                                std::to_string(reply.clients));
  }
  // Asked again for a stage already answered (the message or its reply was lost): the same
  // message again; the protocol client answers each stage once.
  if (const auto it = sent_.find(reply.stage); it != sent_.end()) return it->second;
  message.stage = reply.stage;
  HML_ASSIGN_OR_RETURN(message, Answer(reply, input, std::move(message)));
  sent_[reply.stage] = message;
  return message;
}

Result<SecureClientMessage> SecureRoundClient::Answer(
    const SecureReply& reply, std::optional<std::span<const uint32_t>> input,
    SecureClientMessage message) {
  switch (reply.stage) {
    case SecureStage::kKeys: {
      if (!client_.has_value()) {
        SecAggConfig config;
        config.num_clients = reply.clients;
        config.threshold = reply.threshold;
        config.vector_length = static_cast<size_t>(reply.elements) + 1;
        HML_ASSIGN_OR_RETURN(SecAggClient client, SecAggClient::Create(config, reply.index));
        client_.emplace(std::move(client));
        index_ = reply.index;
        clients_ = reply.clients;
      }
      message.keys = client_->public_keys();
      return message;
    }
    case SecureStage::kShares: {
      if (!client_.has_value()) {
        return FailedPreconditionError("secure round: asked for shares before keys");
      }
      HML_ASSIGN_OR_RETURN(message.shares, client_->ShareKeys(reply.public_keys));
      return message;
    }
    case SecureStage::kMaskedInput: {
      if (!client_.has_value()) {
        return FailedPreconditionError("secure round: asked for a masked input before keys");
      }
      if (!input.has_value()) {
        return FailedPreconditionError("secure round: a masked input needs the trained input");
      }
      HML_ASSIGN_OR_RETURN(message.masked_input, client_->MaskInput(*input, reply.shares));
      return message;
    }
    default: {
      if (!client_.has_value()) {
        return FailedPreconditionError("secure round: asked to unmask before keys");
      }
      HML_ASSIGN_OR_RETURN(message.unmask, client_->Unmask(reply.unmask));
      return message;
    }
  }
}

}  // namespace hml::fl
