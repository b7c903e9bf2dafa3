// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Fills an ingest database the way devices would, for ingest_cli_test.sh:
//   ingest_fixture PUBLIC_KEY_FILE DB BATCHES SAMPLES_PER_BATCH
// stores BATCHES batches from device "dev-1" sealed to the public key, each of
// SAMPLES_PER_BATCH labelled [1, 4, 4] samples (label = sample number % 4, features a
// label-dependent pattern), plus one batch from device "dev-stray" sealed to another key.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "src/server/ingest/ingest_keys.h"
#include "src/server/ingest/ingest_store.h"
#include "src/sync/batch.h"

namespace {

int Fail(const hml::Status& s) {
  std::fprintf(stderr, "ingest_fixture: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hml;
  if (argc != 5) {
    std::fprintf(stderr, "usage: ingest_fixture PUBLIC_KEY_FILE DB BATCHES SAMPLES_PER_BATCH\n");
    return 2;
  }
  auto pub = server::ReadIngestPublicKeyFile(argv[1]);
  if (!pub.ok()) return Fail(pub.status());
  auto store = server::IngestStore::Open(argv[2]);
  if (!store.ok()) return Fail(store.status());
  const int batches = std::atoi(argv[3]), per_batch = std::atoi(argv[4]);
  auto stranger = sync::GenerateIngestKeyPair();
  int sample = 0;
  for (int b = 0; b <= batches; ++b) {
    std::vector<sync::Record> records;
    for (int i = 0; i < per_batch; ++i, ++sample) {
      sync::Record r;
      r.kind = sync::RecordKind::kLabel;
      r.model = "student";
      r.shape = {1, 4, 4};
      r.label = sample % 4;
      for (int k = 0; k < 16; ++k) {
        r.features.push_back(k % 4 == r.label ? 1.f : 0.01f * static_cast<float>(sample % 7));
      }
      records.push_back(std::move(r));
    }
    auto batch = sync::EncodeBatch(records);
    if (!batch.ok()) return Fail(batch.status());
    const bool stray = b == batches;
    auto sealed = sync::SealBatch(*batch, stray ? stranger->public_key : *pub);
    if (!sealed.ok()) return Fail(sealed.status());
    auto put = (*store)->Put(stray ? "dev-stray" : "dev-1", "key-" + std::to_string(b), per_batch,
                             sealed->sealed, 1764000000);
    if (!put.ok()) return Fail(put.status());
  }
  return 0;
}
