// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The cryptography of signed update metadata, on libsodium: SHA-256, Ed25519 signatures, hex,
// and TUF-style key ids. The one translation of libsodium's results into Status is in
// crypto.cc.
#ifndef HML_SRC_OTA_CRYPTO_H_
#define HML_SRC_OTA_CRYPTO_H_

#include <string>
#include <string_view>

#include "hml/status.h"
#include "src/ota/json.h"

namespace hml::ota {

// Lowercase hex of `bytes`, and back. FromHex: kInvalidArgument for odd length or a non-hex
// character (naming `what`).
std::string ToHex(std::string_view bytes);
Result<std::string> FromHex(std::string_view hex, std::string_view what);

// SHA-256 of `bytes`: 32 raw bytes, or 64 lowercase hex characters.
std::string Sha256(std::string_view bytes);
std::string Sha256Hex(std::string_view bytes);

// An Ed25519 public key as it appears in root metadata:
// {"keytype":"ed25519","keyval":{"public":"<64 hex>"},"scheme":"ed25519"}.
struct PublicKey {
  std::string raw;  // 32 bytes

  Json ToJson() const;
  // kInvalidArgument for another key type or scheme, or a public key that is not 32 bytes of hex.
  static Result<PublicKey> FromJson(const Json& json);
  // The key id: hex SHA-256 of the canonical JSON of ToJson().
  std::string Id() const;
};

// An Ed25519 key pair. The secret key never leaves this struct except through ToSecretHex (for
// `hybridml keys` to store it with file permissions 0600).
struct KeyPair {
  PublicKey public_key;
  std::string secret;  // 64 bytes (libsodium's seed || public key form)

  // A fresh key from the operating system's random source.
  static Result<KeyPair> Generate();
  // The key pair of a 32-byte seed (deterministic: for tests and key files).
  static Result<KeyPair> FromSeed(std::string_view seed);
  std::string Id() const { return public_key.Id(); }

  // The 64-byte detached signature of `message`.
  std::string Sign(std::string_view message) const;
};

// True when `signature` (64 raw bytes) is `key`'s valid Ed25519 signature of `message`.
bool VerifySignature(const PublicKey& key, std::string_view message, std::string_view signature);

// Initializes libsodium once per process (thread-safe); every function above calls it.
// kInternal if libsodium cannot initialize.
Status InitCrypto();

}  // namespace hml::ota

#endif  // HML_SRC_OTA_CRYPTO_H_
