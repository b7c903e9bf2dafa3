// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The default Store: one SQLite database file.
//
// The database runs in WAL mode (readers are not blocked by a writer) with foreign keys on;
// the connection, transactions and error translation come from src/storage/sqlite_db.h.
// Every mutation is one BEGIN IMMEDIATE ... COMMIT transaction, rolled back on any error, so a
// failed call or a crash leaves no half-written state. The file carries a schema version; a
// file written by a newer build is refused rather than misread.
//
// Thread safety: the returned Store is thread-safe. It owns one connection, guarded by a mutex,
// so calls from several threads are serialized. Several processes may open the same file: a
// writer waits up to kSqliteBusyTimeoutMs for another process's write transaction, then fails
// with kUnavailable (retryable).
#ifndef HML_SRC_SERVER_REGISTRY_SQLITE_STORE_H_
#define HML_SRC_SERVER_REGISTRY_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "hml/status.h"
#include "src/server/registry/store.h"

namespace hml::server {

// The schema version this build writes and reads. Bumped with every schema change.
inline constexpr int64_t kSqliteStoreSchemaVersion = 1;

// How long a call waits for another connection's lock before failing with kUnavailable.
inline constexpr int kSqliteBusyTimeoutMs = 5000;

// Opens (creating if absent) the store in the SQLite file `path`.
// Errors: kDataLoss when the file is not a SQLite database or is corrupt (the message names the
// file); kFailedPrecondition when the file has a schema version this build does not know (the
// message names both versions) or WAL mode cannot be enabled; kNotFound when the file cannot be
// opened or created (e.g. a missing directory); kUnavailable when another process holds a lock
// beyond the busy timeout.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_REGISTRY_SQLITE_STORE_H_
