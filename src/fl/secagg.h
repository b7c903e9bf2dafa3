// Secure aggregation after Bonawitz et al. 2017, "Practical Secure Aggregation for
// Privacy-Preserving Machine Learning" (CCS '17), the version secure against a semi-honest
// (honest-but-curious) server. Pure logic: messages are plain structs, and moving them between
// devices and the cloud (e.g. over the SDK's Transport, relayed by our server) is the caller's
// job (the transport still authenticates and encrypts against third parties, e.g. TLS). No
// message needs to be hidden from the server that relays it: the only secrets that travel
// between clients (round 1's Shamir shares) are end-to-end encrypted by the protocol itself. The
// server learns the sum of the surviving clients' vectors in Z_{2^32} and nothing about any
// single vector.
//
// Rounds (client ids are 1..n and are also the Shamir x coordinates):
//  0. AdvertiseKeys: each client makes two X25519 key pairs and sends both public keys
//     (SecAggPublicKeys): the encryption pair (c_sk_i, c_pk_i), used only to seal the shares
//     addressed to it, and the masking pair (s_sk_i, s_pk_i) of the pairwise masks. Every client
//     checks that all 2n advertised keys are distinct.
//  1. ShareKeys: given everyone's public keys, client i draws a fresh 32-byte self-mask seed b_i
//     and splits b_i and s_sk_i t-of-n with Shamir (shamir.h); share j of each is addressed to
//     client j and sealed for it: k_ij = crypto_box_beforenm(c_pk_j, c_sk_i) (computed once per
//     peer; k_ij = k_ji), and the message carries nonce || crypto_box_easy_afternm(plaintext)
//     with a fresh random 24-byte nonce (XSalsa20-Poly1305). The plaintext binds the sender and
//     recipient ids (see SealSecAggShares for the layout), so the server, which relays only
//     ciphertexts, can neither read a share nor re-address one (a message re-addressed to
//     another client fails to authenticate; one reflected back to its sender, which shares the
//     key k_ij, names the wrong ids inside). U1 = clients that sent shares.
//  2. MaskedInput: client i opens the shares addressed to it (refusing any that fail to
//     authenticate or are malformed), agrees s_ij = H(X25519(s_sk_i, s_pk_j) || s_pk_min ||
//     s_pk_max) with every j in U1 and sends y_i = x_i + PRG(b_i) + sum_{j in U1, j>i} PRG(s_ij)
//     - sum_{j in U1, j<i} PRG(s_ij) (mod 2^32), PRG = ChaCha20 keystream keyed by the seed
//     (libsodium crypto_stream_chacha20, zero nonce: every seed is fresh per round and used for
//     one stream). U2 = clients whose masked input arrived.
//  3. Unmasking: the server names U2 and the dropped set U1 \ U2; each client in U2 returns the
//     b-shares it holds for U2 and the sk-shares it holds for the dropped clients, never both for
//     one client (a client that answers for both would let the server unmask that client).
//     With t responses the server reconstructs every b_i (i in U2) and every s_sk_d (d dropped),
//     recomputes the pairwise masks between the dropped and the survivors, and removes all masks:
//     sum_{i in U2} y_i - PRG(b_i) +/- PRG(s_id) = sum_{i in U2} x_i.
// The server aborts with kAborted whenever fewer than t clients remain (after any round) and
// then reconstructs nothing, so no single input is revealed. Security requires t > n / 2
// (otherwise two disjoint sets could each reconstruct something); Validate() enforces it.
//
// Fixed-point encoding (EncodeFixedPoint/DecodeFixedPoint) maps float updates into Z_{2^32} so
// federated averaging can sum float deltas under secure aggregation.
//
// The robust aggregators (median, trimmed mean, Krum) need individual updates and therefore
// cannot be used in a secure-aggregation round; only sums (FedAvg-style weighted means, with the
// weights folded into the inputs) can.
//
// Thread-safety: none of the classes is thread-safe; use one object per thread.
#ifndef HML_FL_SECAGG_H_
#define HML_FL_SECAGG_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "hml/status.h"
#include "src/fl/shamir.h"

namespace hml::fl {

using SecAggKey = std::array<uint8_t, 32>;

struct SecAggConfig {
  // Number of clients n selected for the round; ids are 1..n. Default: 0 (must be set).
  int num_clients = 0;
  // Shamir threshold t: the sum is recovered when at least t clients survive to the end; below t
  // the round aborts. REQUIRES: n / 2 < t <= n and t >= 2. Default: 0 (must be set).
  int threshold = 0;
  // Length of every input vector (elements of Z_{2^32}). Default: 0 (must be set, >= 1).
  size_t vector_length = 0;

  Status Validate() const;
};

// Round 0 message of one client: its two public keys.
struct SecAggPublicKeys {
  // c_pk: shares addressed to this client are sealed for it under this key.
  SecAggKey encryption{};
  // s_pk: the pairwise-mask key agreement.
  SecAggKey masking{};
};

// Round 1 message from client `from` to client `to`, relayed by the server, which cannot read it.
struct SecAggShareMessage {
  int from = 0;
  int to = 0;
  // nonce (24 bytes) || XSalsa20-Poly1305 box of the two Shamir shares, sealed for `to`.
  std::vector<uint8_t> ciphertext;
};

// The plaintext of a SecAggShareMessage: sender, recipient and the recipient's shares (x = to)
// of the sender's self-mask seed and masking secret key.
struct SecAggShares {
  int from = 0;
  int to = 0;
  ShamirShare self_seed_share;
  ShamirShare secret_key_share;
};

// Round 3 request from the server to each survivor.
struct SecAggUnmaskRequest {
  std::vector<int> survivors;  // U2, ascending
  std::vector<int> dropped;    // U1 \ U2, ascending
};

// Round 3 answer from client `from`: shares it holds, keyed by the id of the client they belong
// to.
struct SecAggUnmaskResponse {
  int from = 0;
  std::map<int, ShamirShare> self_seed_shares;   // for survivors
  std::map<int, ShamirShare> secret_key_shares;  // for dropped clients
};

// One client's side of a round. Its secrets are wiped when it is destroyed.
class SecAggClient {
 public:
  // Generates the two X25519 key pairs. Returns kInvalidArgument for a bad config or an id outside
  // 1..n, kInternal if libsodium cannot initialise.
  static Result<SecAggClient> Create(const SecAggConfig& config, int id);
  SecAggClient(SecAggClient&& other) noexcept;
  SecAggClient& operator=(SecAggClient&&) = delete;
  SecAggClient(const SecAggClient&) = delete;
  ~SecAggClient();

  int id() const { return id_; }
  // Round 0 output.
  const SecAggPublicKeys& public_keys() const { return public_keys_; }

  // Round 1: takes the public keys of all clients that advertised (must include this client's
  // own, unchanged) and returns one sealed share message per such client (including itself).
  // Returns kAborted when fewer than t clients are given, kInvalidArgument for unknown ids, a
  // wrong own key, a key (encryption or masking) that repeats any other advertised key, or an
  // encryption key that is a low-order point; kFailedPrecondition when called twice. A refused
  // call changes nothing.
  Result<std::vector<SecAggShareMessage>> ShareKeys(
      const std::map<int, SecAggPublicKeys>& public_keys);

  // Round 2: opens the shares addressed to this client and keeps them (their senders form U1),
  // then returns the masked input. Returns kInvalidArgument (naming the sender) when a message
  // is not addressed to this client, comes from a client without a public key or twice, fails
  // to authenticate, names other ids inside than outside, or carries shares of the wrong size
  // or x coordinate; kInvalidArgument too when x has the wrong length; kAborted when fewer than
  // t clients sent shares, kFailedPrecondition out of order. A refused call changes nothing
  // (it can be retried with the right messages).
  Result<std::vector<uint32_t>> MaskInput(std::span<const uint32_t> x,
                                          std::span<const SecAggShareMessage> received);

  // Round 3. Returns kInvalidArgument when a client is in both sets, a listed client is not in
  // U1 or this client is not a survivor; kAborted when fewer than t survivors;
  // kFailedPrecondition out of order.
  Result<SecAggUnmaskResponse> Unmask(const SecAggUnmaskRequest& request);

 private:
  SecAggClient(const SecAggConfig& config, int id) : config_(config), id_(id) {}

  // Zeroes every secret the client holds (own keys, seed, box keys, shares received).
  void Wipe();

  enum class Stage { kKeys, kShared, kMasked, kDone };
  SecAggConfig config_;
  int id_;
  Stage stage_ = Stage::kKeys;
  SecAggPublicKeys public_keys_{};
  SecAggKey encryption_secret_{};  // c_sk
  SecAggKey masking_secret_{};     // s_sk
  SecAggKey self_seed_{};
  std::map<int, SecAggPublicKeys> peer_keys_;
  std::map<int, SecAggKey> box_keys_;  // k_ij by peer j, from ShareKeys
  std::map<int, SecAggShares> held_;   // opened shares received, by sender
};

// The server's side of a round. It only ever holds public keys, sealed shares it cannot open,
// masked inputs and (round 3) the shares the survivors reveal.
class SecAggServer {
 public:
  static Result<SecAggServer> Create(const SecAggConfig& config);

  // Round 0 input. kInvalidArgument for an unknown id, kAlreadyExists for a second pair of keys.
  Status ReceivePublicKey(int id, const SecAggPublicKeys& keys);
  // End of round 0: the keys to broadcast. kAborted when fewer than t clients advertised.
  Result<std::map<int, SecAggPublicKeys>> PublicKeys();

  // Round 1 input: a client's sealed share messages, routed by recipient (never opened here).
  // The sender joins U1.
  Status ReceiveShares(int id, std::span<const SecAggShareMessage> messages);
  // End of round 1: the messages addressed to `id`. kAborted when fewer than t clients shared.
  Result<std::vector<SecAggShareMessage>> SharesFor(int id);

  // Round 2 input. The sender joins U2. kInvalidArgument when not in U1 or the length is wrong.
  Status ReceiveMaskedInput(int id, std::span<const uint32_t> masked);
  // End of round 2. kAborted when fewer than t masked inputs arrived.
  Result<SecAggUnmaskRequest> UnmaskRequest();

  // Round 3 input.
  Status ReceiveUnmaskResponse(const SecAggUnmaskResponse& response);
  // Reconstructs the seeds and keys and returns sum_{i in U2} x_i (mod 2^32). kAborted when fewer
  // than t responses arrived (nothing is reconstructed), kDataLoss when shares are inconsistent.
  Result<std::vector<uint32_t>> Finish();

  const std::vector<int>& survivors() const { return survivors_; }

 private:
  explicit SecAggServer(const SecAggConfig& config) : config_(config) {}

  enum class Stage { kKeys, kShares, kMasked, kUnmask, kDone };
  Status CheckStage(Stage expected, const char* what) const;
  Status AbortIfBelowThreshold(size_t count, const char* what) const;

  SecAggConfig config_;
  Stage stage_ = Stage::kKeys;
  std::map<int, SecAggPublicKeys> public_keys_;
  std::map<int, std::vector<SecAggShareMessage>> inbox_;  // by recipient
  std::vector<int> shared_;                               // U1
  std::map<int, std::vector<uint32_t>> masked_;           // U2 inputs
  std::vector<int> survivors_;
  std::vector<int> dropped_;
  std::vector<SecAggUnmaskResponse> responses_;
};

// The round-1 envelope, used by SecAggClient and exposed for tests. The box key of two clients
// is crypto_box_beforenm(peer's c_pk, own c_sk), the same from both ends; kInvalidArgument when
// the peer's key is a low-order point, kInternal if libsodium cannot initialise.
Result<SecAggKey> SecAggBoxKey(const SecAggKey& own_encryption_secret,
                               const SecAggKey& peer_encryption_public);
// Size of the plaintext: from and to (uint32 each), then each share as x (uint32) and
// kSecAggShareChunks y elements (uint64), all little-endian.
inline constexpr size_t kSecAggShareChunks = (32 + kShamirChunkBytes - 1) / kShamirChunkBytes;
inline constexpr size_t kSecAggSharesPlaintextBytes = 4 + 4 + 2 * (4 + 8 * kSecAggShareChunks);
// Seals `shares` under `box_key` with a fresh random nonce: returns nonce || box (24 + 16 +
// kSecAggSharesPlaintextBytes bytes). kInvalidArgument when an id is outside 1..kShamirMaxShares
// or a share does not have kSecAggShareChunks elements.
Result<std::vector<uint8_t>> SealSecAggShares(const SecAggKey& box_key, const SecAggShares& shares);
// Opens `message` under `box_key` and checks it against its outer ids: kInvalidArgument
// (naming the sender) for a wrong ciphertext size, a failed authentication, inner ids that
// differ from message.from / message.to, or shares whose x is not message.to or whose elements
// are not field elements.
Result<SecAggShares> OpenSecAggShares(const SecAggKey& box_key, const SecAggShareMessage& message);

// Expands a 32-byte seed into `length` elements of Z_{2^32} (ChaCha20 keystream, zero nonce).
void SecAggPrg(const SecAggKey& seed, std::span<uint32_t> out);

// The in-process driver for tests and benchmarks: runs all rounds for `inputs` (one vector per
// client, client id = index + 1). Clients listed in `drop_before_sharing` vanish after round 0,
// those in `drop_after_sharing` after round 1 (they sent shares but no masked input). Returns the
// server's sum, or the server's or a client's error (kAborted below the threshold).
struct SecAggTimings {
  double client_seconds = 0;  // all clients' work, summed
  double server_seconds = 0;
};
Result<std::vector<uint32_t>> RunSecAggRound(const SecAggConfig& config,
                                             std::span<const std::vector<uint32_t>> inputs,
                                             std::span<const int> drop_before_sharing,
                                             std::span<const int> drop_after_sharing,
                                             SecAggTimings* timings = nullptr);

// Fixed-point encoding of floats into Z_{2^32}: v -> round(v * scale) as a two's-complement
// int32. The sum of n encoded values decodes exactly (up to rounding, at most n / (2 * scale) in
// total) as long as it does not overflow: n * (max_abs * scale + 0.5) < 2^31. Validate() checks
// that bound for a given n.
struct FixedPointOptions {
  // Multiplier before rounding; resolution is 1 / scale. Default: 65536 (2^16).
  double scale = 65536.0;
  // Inputs must satisfy |v| <= max_abs (clip updates first, e.g. with the DP clipping).
  // Default: 1.0.
  double max_abs = 1.0;

  // kInvalidArgument when scale or max_abs is not positive and finite or n clients could overflow.
  Status Validate(int num_clients) const;
};
// kInvalidArgument for a NaN/Inf value or |v| > max_abs (the message names the index).
Result<std::vector<uint32_t>> EncodeFixedPoint(std::span<const float> values,
                                               const FixedPointOptions& options);
std::vector<float> DecodeFixedPoint(std::span<const uint32_t> sum,
                                    const FixedPointOptions& options);

}  // namespace hml::fl

#endif  // HML_FL_SECAGG_H_
