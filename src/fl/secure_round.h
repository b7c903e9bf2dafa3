// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Secure aggregation of one federated round between the server and the round's cohort of
// devices, message by message (FederatedLearning.SecureAggregation carries the bytes). secagg.h
// is the protocol (Bonawitz et al. 2017); this file is the round around it: which device is which
// protocol client, the stages' deadlines, the fixed-point input, and the messages' byte form.
//
// Input. Device k's input is (n_k / S) x delta_k followed by n_k / S, where n_k is its example
// count and S = kSecureWeightScale (public); every element is clipped to +-kSecureMaxAbs and
// encoded in fixed point (secagg.h) with the largest scale whose sum over the cohort cannot
// overflow (SecureFixedPoint). The server decodes the sum into sum_k n_k delta_k and sum_k n_k:
// exactly what the example-weighted mean of FedAvg-style strategies needs (SecureAggregate), and
// nothing about a single device.
//
// Stages. Device i of the cohort (in selection order) is protocol client i + 1. The server moves
// through the stages below; each closes when every device still in the protocol has answered it,
// or at its deadline, a fixed fraction of the round's window [start, deadline]:
//   keys          10 %  each device sends its two public keys
//   shares        25 %  each device that sent keys sends its shares, sealed for their recipients
//   masked input  85 %  each device that shared trains and sends its masked input
//   unmasking     95 %  each device whose input arrived sends the shares that remove the masks
// and the sum is then taken (the remaining 5 % of the window is for the coordinator to receive
// it before the round's deadline). A device that misses a stage is out of the rest of the round
// (a dropout of secagg.h). Fewer than the threshold at any stage aborts the round's secure
// aggregation: nothing is reconstructed, and the coordinator abandons the round at its deadline.
//
// Messages. A device polls: each call carries its message for the stage it is asked for, or just
// a poll, and the server's reply says what it expects from that device now (SecureReply::stage)
// with what the device needs for it (the public keys, the shares addressed to it, the unmask
// request). A message repeated (a retry after a lost reply) is answered like a poll. The reply to
// the message that completes a stage already carries the next stage.
//
// Byte form (all integers little-endian; decoding checks every length against the bytes left
// and the limits below, refuses trailing bytes, and names the field, kInvalidArgument):
//   client message: "HMSC", u8 version = 1, u8 stage, u16 reserved = 0, then by stage:
//     poll (kWait)     nothing
//     kKeys            32-byte encryption key, 32-byte masking key
//     kShares          u32 count, per message: i32 from, i32 to, u32 size, ciphertext
//     kMaskedInput     u64 count, count x u32
//     kUnmask          i32 from, two share maps (seed shares of survivors, key shares of dropped
//                      clients): u32 count, per entry: i32 owner, u32 x, u32 count, count x u64
//   reply: "HMSR", u8 version = 1, u8 stage, u16 reserved = 0, i32 index, i32 clients,
//     i32 threshold, i64 elements, i64 stage_deadline_ms, i64 retry_after_ms, then by stage:
//     kShares          u32 count, per client: i32 id, 32-byte encryption key, 32-byte masking key
//     kMaskedInput     the shares addressed to the device, as in the client's kShares
//     kUnmask          u32 count + i32 survivors, u32 count + i32 dropped
//     kOut             u32 size + reason
//
// Pure logic: time is passed in (now_ms, wall milliseconds like the coordinator's), no I/O. Not
// thread-safe: the server serialises calls under its task's mutex.
#ifndef HML_SRC_FL_SECURE_ROUND_H_
#define HML_SRC_FL_SECURE_ROUND_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/fl/coordinator.h"
#include "src/fl/secagg.h"

namespace hml::fl {

// Inputs carry n_k / kSecureWeightScale; public, the same for every device.
inline constexpr double kSecureWeightScale = 1024.0;
// Largest |element| of an input ((n_k / S) x delta and n_k / S); larger ones are clipped.
inline constexpr double kSecureMaxAbs = 64.0;

// The fixed-point encoding a cohort of `num_clients` uses: max_abs kSecureMaxAbs and the largest
// scale whose sum over num_clients inputs cannot overflow. kInvalidArgument for num_clients < 1.
Result<FixedPointOptions> SecureFixedPoint(int num_clients);

// The Shamir threshold of a cohort of n: max(floor(n / 2) + 1, ceil(fraction x n)), at least 2
// and at most n. REQUIRES: fraction in (0.5, 1], n >= 2.
int SecureThreshold(int num_clients, double threshold_fraction);

// Device k's input (see the file comment) in a cohort of `num_clients`: `delta` (finite floats)
// weighted by num_examples, then the weight, in SecureFixedPoint(num_clients). kInvalidArgument
// for a non-finite value, num_examples < 1 or num_clients < 1.
Result<std::vector<uint32_t>> EncodeSecureInput(std::span<const float> delta, int64_t num_examples,
                                                int num_clients);

// The aggregate a decoded sum stands for (wire_bytes left 0 for the caller).
SecureAggregate DecodeSecureSum(std::span<const uint32_t> sum, const FixedPointOptions& fixed,
                                std::vector<std::string> participants);

enum class SecureStage : uint8_t {
  kKeys = 1,         // send your public keys
  kShares = 2,       // send your shares (the reply carries everyone's public keys)
  kMaskedInput = 3,  // send your masked input (the reply carries the shares addressed to you)
  kUnmask = 4,       // send your unmask response (the reply carries the request)
  kWait = 5,         // nothing to send now: poll again after retry_after_ms (as a message: a poll)
  kDone = 6,         // the sum is taken and your input is in it
  kOut = 7,          // you are not in this round's secure aggregation (any more): see reason
};
std::string_view SecureStageName(SecureStage stage);

// What a device sends. Only the field of `stage` is encoded.
struct SecureClientMessage {
  // kKeys, kShares, kMaskedInput or kUnmask: the stage this message answers; kWait: a poll.
  SecureStage stage = SecureStage::kWait;
  SecAggPublicKeys keys;
  std::vector<SecAggShareMessage> shares;
  std::vector<uint32_t> masked_input;
  SecAggUnmaskResponse unmask;
};

// What the server answers. Only the fields of `stage` are encoded.
struct SecureReply {
  SecureStage stage = SecureStage::kWait;
  int index = 0;                                // the device's protocol id, 1..clients
  int clients = 0;                              // the cohort size n
  int threshold = 0;                            // t
  int64_t elements = 0;                         // delta length; inputs have elements + 1 values
  int64_t stage_deadline_ms = 0;                // when the server's current stage closes
  int64_t retry_after_ms = 0;                   // with kWait: when to poll again, from now
  std::map<int, SecAggPublicKeys> public_keys;  // kShares
  std::vector<SecAggShareMessage> shares;       // kMaskedInput
  SecAggUnmaskRequest unmask;                   // kUnmask
  std::string reason;                           // kOut
};

struct SecureWireLimits {
  // Largest cohort and element count a message may describe. Defaults: 65536 and 1 << 28.
  int64_t max_clients = 65536;
  int64_t max_elements = int64_t{1} << 28;
};

std::string EncodeSecureClientMessage(const SecureClientMessage& message);
Result<SecureClientMessage> DecodeSecureClientMessage(std::string_view bytes,
                                                      const SecureWireLimits& limits = {});
std::string EncodeSecureReply(const SecureReply& reply);
Result<SecureReply> DecodeSecureReply(std::string_view bytes, const SecureWireLimits& limits = {});

struct SecureRoundOptions {
  // The cohort: the selected device ids in selection order (device i is protocol client i + 1).
  // Required, at least 2, no duplicates.
  std::vector<std::string> cohort;
  // Length of the delta (the update layout's element count). Required, >= 1.
  int64_t elements = 0;
  // Shamir threshold as a fraction of the cohort (SecureThreshold). Default: 2 / 3; in (0.5, 1].
  double threshold_fraction = 2.0 / 3.0;
  // The round's window: stage deadlines are fractions of it (file comment). Required,
  // deadline_ms > start_ms.
  int64_t start_ms = 0;
  int64_t deadline_ms = 0;
  // Longest retry_after_ms a waiting device is told. Default: 1000; >= 1.
  int64_t poll_ms = 1000;

  Status Validate() const;
};

// The server side of one round's secure aggregation.
class SecureRoundServer {
 public:
  static Result<std::unique_ptr<SecureRoundServer>> Create(SecureRoundOptions options);

  // A message from `device` (authenticated by the caller) that took `wire_bytes`, at now_ms.
  // Closes the stages that are due before and after handling it, and returns what the device
  // should do next. kPermissionDenied for a device outside the cohort; kInvalidArgument for a
  // message the protocol refuses (a stage that is not open yet, keys equal to another device's,
  // shares to the wrong clients, an input of the wrong length, an unmask response naming another
  // sender: the message is not used, and the device may send a correct one while the stage is
  // open).
  Result<SecureReply> Exchange(const std::string& device, const SecureClientMessage& message,
                               int64_t wire_bytes, int64_t now_ms);

  // Closes the stages that are due at now_ms (every expected device answered, or the deadline
  // passed); after unmasking, takes the sum.
  void Advance(int64_t now_ms);

  // Ends the exchange when its round closes first (deadline passed): unless the sum was taken,
  // the exchange counts as aborted with `reason`, and later messages are answered kOut.
  void Abandon(const std::string& reason);

  // The round's aggregate once the sum is taken, exactly once (later calls: nullopt).
  std::optional<SecureAggregate> TakeAggregate();

  bool done() const { return stage_ == SecureStage::kDone; }
  bool aborted() const { return !abort_reason_.empty(); }
  // Why the secure aggregation aborted ("" when it did not).
  const std::string& abort_reason() const { return abort_reason_; }
  // The stage the server is in (kKeys .. kUnmask, then kDone or kOut when aborted).
  SecureStage stage() const { return stage_; }
  // When the current stage closes at the latest.
  int64_t stage_deadline_ms() const { return StageDeadline(stage_); }
  int threshold() const { return config_.threshold; }
  // Masked inputs received so far.
  int64_t inputs_received() const { return static_cast<int64_t>(masked_.size()); }

 private:
  SecureRoundServer(SecureRoundOptions options, SecAggConfig config, FixedPointOptions fixed,
                    SecAggServer server);
  int64_t StageDeadline(SecureStage stage) const;
  // The devices that must answer the current stage, and those that did.
  const std::set<int>& Expected() const;
  Status Receive(int index, const SecureClientMessage& message);
  SecureReply ReplyTo(int index, int64_t now_ms);
  void Abort(const Status& why);

  SecureRoundOptions options_;
  SecAggConfig config_;
  FixedPointOptions fixed_;
  SecAggServer server_;
  std::map<std::string, int> index_of_;
  SecureStage stage_ = SecureStage::kKeys;
  std::set<int> all_;       // 1..n
  std::set<int> keyed_;     // U0: sent keys
  std::set<int> shared_;    // U1: sent shares
  std::set<int> masked_;    // U2: sent masked inputs
  std::set<int> unmasked_;  // sent unmask responses
  std::map<int, SecAggPublicKeys> public_keys_;
  std::set<SecAggKey> keys_seen_;  // every key received, to refuse copies
  SecAggUnmaskRequest unmask_request_;
  std::optional<SecureAggregate> aggregate_;
  int64_t wire_bytes_ = 0;
  std::string abort_reason_;
};

// A device's side: turns each reply into the next message. The caller trains before answering
// kMaskedInput and passes its input then.
class SecureRoundClient {
 public:
  // The message answering `reply`: for kKeys (creates the protocol client), kShares and kUnmask
  // from the protocol state; for kMaskedInput from `input` (EncodeSecureInput's result, which
  // must be given then); otherwise a poll. kInvalidArgument for a reply that contradicts an
  // earlier one (another index or cohort) or that the protocol refuses; kFailedPrecondition for
  // kMaskedInput without an input.
  Result<SecureClientMessage> Respond(const SecureReply& reply,
                                      std::optional<std::span<const uint32_t>> input);

 private:
  Result<SecureClientMessage> Answer(const SecureReply& reply,
                                     std::optional<std::span<const uint32_t>> input,
                                     SecureClientMessage message);

  std::optional<SecAggClient> client_;
  std::map<SecureStage, SecureClientMessage> sent_;  // each stage's message, for resending
  int index_ = 0;
  int clients_ = 0;
};

}  // namespace hml::fl

#endif  // HML_SRC_FL_SECURE_ROUND_H_
