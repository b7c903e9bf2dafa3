// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/ingest/ingest_keys.h"

#include <cstdio>
#include <string>
#include <string_view>

#include "hml/env.h"
#include "src/base/file_util.h"

namespace hml::server {
namespace {

// A key file is one 64-digit line; anything much larger is not a key file.
constexpr int64_t kMaxKeyFileBytes = 4096;

Result<std::string> ReadKeyText(const std::string& path) {
  if (!DefaultEnv()->FileExists(path)) {
    return NotFoundError("ingest key file '" + path + "' does not exist (create one with " +
                         "`hybridml ingest keygen --out DIR`)");
  }
  return DefaultEnv()->ReadFile(path, kMaxKeyFileBytes);
}

}  // namespace

Result<sync::IngestKeyPair> CreateIngestKeyFiles(const std::string& dir) {
  const std::string pub = dir + "/" + kIngestPublicKeyFile;
  const std::string key = dir + "/" + kIngestSecretKeyFile;
  for (const std::string& path : {pub, key}) {
    if (DefaultEnv()->FileExists(path)) {
      return AlreadyExistsError("'" + path + "' exists; an ingest key is never replaced " +
                                "(batches sealed to it could no longer be opened)");
    }
  }
  HML_RETURN_IF_ERROR(MakeDirs(dir));
  HML_ASSIGN_OR_RETURN(sync::IngestKeyPair keys, sync::GenerateIngestKeyPair());
  AtomicWriteOptions secret;
  secret.mode = 0600;
  HML_RETURN_IF_ERROR(WriteFileAtomic(key, sync::KeyToHex(keys.secret_key) + "\n", secret));
  AtomicWriteOptions shared;
  shared.mode = 0644;
  const Status s = WriteFileAtomic(pub, sync::KeyToHex(keys.public_key) + "\n", shared);
  if (!s.ok()) {
    (void)RemoveFile(key);  // no half-written pair
    return s;
  }
  return keys;
}

Result<sync::IngestKeyPair> ReadIngestSecretKeyFile(const std::string& path) {
  HML_ASSIGN_OR_RETURN(const std::string text, ReadKeyText(path));
  HML_ASSIGN_OR_RETURN(const int mode, FileMode(path));
  if ((mode & 077) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", mode);
    return PermissionDeniedError("ingest key file '" + path + "' has mode " + octal +
                                 ": others can read it; it must be 0600");
  }
  HML_ASSIGN_OR_RETURN(const auto secret,
                       sync::KeyFromHex(text, "ingest secret key '" + path + "'"));
  return sync::IngestKeyPairFromSecret(
      std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));
}

Result<std::array<unsigned char, sync::kIngestKeyBytes>> ReadIngestPublicKeyFile(
    const std::string& path) {
  HML_ASSIGN_OR_RETURN(const std::string text, ReadKeyText(path));
  return sync::KeyFromHex(text, "ingest public key '" + path + "'");
}

}  // namespace hml::server
