// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/crypto.h"

#include <sodium.h>

namespace hml::ota {

Status InitCrypto() {
  // sodium_init() is thread-safe and idempotent; its result is remembered here.
  static const int result = sodium_init();
  if (result < 0) return InternalError("libsodium: sodium_init failed");
  return Status::Ok();
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 15];
  }
  return out;
}

Result<std::string> FromHex(std::string_view hex, std::string_view what) {
  if (hex.size() % 2 != 0) {
    return InvalidArgumentError(std::string(what) + ": hex string of odd length " +
                                std::to_string(hex.size()));
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError(std::string(what) + ": not hex at character " +
                                  std::to_string(2 * i + (hi < 0 ? 0 : 1)));
    }
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string Sha256(std::string_view bytes) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return out;
}

std::string Sha256Hex(std::string_view bytes) { return ToHex(Sha256(bytes)); }

Json PublicKey::ToJson() const {
  Json key = Json::Object{};
  key["keytype"] = "ed25519";
  key["scheme"] = "ed25519";
  key["keyval"]["public"] = ToHex(raw);
  return key;
}

Result<PublicKey> PublicKey::FromJson(const Json& json) {
  HML_ASSIGN_OR_RETURN(std::string type, json.GetString("keytype"));
  HML_ASSIGN_OR_RETURN(std::string scheme, json.GetString("scheme"));
  if (type != "ed25519" || scheme != "ed25519") {
    return InvalidArgumentError("key type '" + type + "' with scheme '" + scheme +
                                "' is not supported (ed25519 only)");
  }
  HML_ASSIGN_OR_RETURN(const Json* keyval, json.Get("keyval"));
  HML_ASSIGN_OR_RETURN(std::string hex, keyval->GetString("public"));
  HML_ASSIGN_OR_RETURN(std::string raw, FromHex(hex, "ed25519 public key"));
  if (raw.size() != crypto_sign_PUBLICKEYBYTES) {
    return InvalidArgumentError("ed25519 public key has " + std::to_string(raw.size()) +
                                " bytes, expected 32");
  }
  return PublicKey{std::move(raw)};
}

std::string PublicKey::Id() const { return Sha256Hex(CanonicalJson(ToJson())); }

Result<KeyPair> KeyPair::Generate() {
  HML_RETURN_IF_ERROR(InitCrypto());
  std::string seed(crypto_sign_SEEDBYTES, '\0');
  randombytes_buf(seed.data(), seed.size());
  Result<KeyPair> pair = FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  return pair;
}

Result<KeyPair> KeyPair::FromSeed(std::string_view seed) {
  HML_RETURN_IF_ERROR(InitCrypto());
  if (seed.size() != crypto_sign_SEEDBYTES) {
    return InvalidArgumentError("ed25519 seed has " + std::to_string(seed.size()) +
                                " bytes, expected 32");
  }
  KeyPair pair;
  pair.public_key.raw.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  pair.secret.assign(crypto_sign_SECRETKEYBYTES, '\0');
  if (crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(pair.public_key.raw.data()),
                               reinterpret_cast<unsigned char*>(pair.secret.data()),
                               reinterpret_cast<const unsigned char*>(seed.data())) != 0) {
    return InternalError("libsodium: crypto_sign_seed_keypair failed");
  }
  return pair;
}

std::string KeyPair::Sign(std::string_view message) const {
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       reinterpret_cast<const unsigned char*>(secret.data()));
  return sig;
}

bool VerifySignature(const PublicKey& key, std::string_view message, std::string_view signature) {
  if (!InitCrypto().ok() || key.raw.size() != crypto_sign_PUBLICKEYBYTES ||
      signature.size() != crypto_sign_BYTES) {
    return false;
  }
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(),
                                     reinterpret_cast<const unsigned char*>(key.raw.data())) == 0;
}

}  // namespace hml::ota
