// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The ingest key pair on disk. Devices seal their data batches to the public key
// (src/sync/batch.h); the ingest service stores the sealed bytes without ever holding the secret
// key; the dataset export (dataset_export.h), run where training runs, opens them with it.
//
// Files, each one line of 64 lowercase hex digits:
//   <dir>/ingest.pub  the X25519 public key, mode 0644: shipped to devices (app config)
//   <dir>/ingest.key  the secret key, mode 0600 from the moment it exists
// Writing never replaces an existing key: losing the secret key makes every stored batch
// unreadable, so a second keygen into the same folder is refused.
#ifndef HML_SRC_SERVER_INGEST_INGEST_KEYS_H_
#define HML_SRC_SERVER_INGEST_INGEST_KEYS_H_

#include <array>
#include <string>

#include "hml/status.h"
#include "src/sync/batch.h"

namespace hml::server {

inline constexpr char kIngestPublicKeyFile[] = "ingest.pub";
inline constexpr char kIngestSecretKeyFile[] = "ingest.key";

// Generates a key pair and writes both files into `dir` (created if missing). Returns the pair.
// kAlreadyExists when either file exists; the filesystem's errors with the path.
Result<sync::IngestKeyPair> CreateIngestKeyFiles(const std::string& dir);

// Reads a secret key file and derives the pair. kPermissionDenied when the file's mode lets
// group or others read it (it must be 0600, as ssh insists for its keys); kNotFound when it is
// missing; kInvalidArgument naming the path when it is not one hex key.
Result<sync::IngestKeyPair> ReadIngestSecretKeyFile(const std::string& path);

// Reads a public key file. Errors as ReadIngestSecretKeyFile, without the mode check.
Result<std::array<unsigned char, sync::kIngestKeyBytes>> ReadIngestPublicKeyFile(
    const std::string& path);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_INGEST_INGEST_KEYS_H_
