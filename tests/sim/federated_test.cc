// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// RunFederatedSimulation on 4-feature blobs: rounds run by the coordinator, clients trained by the
// device code, updates through the wire codecs.
#include "src/sim/federated.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "src/data/partition.h"
#include "tests/testing/datasets.h"
#include "tests/testing/models.h"

namespace hml::sim {
namespace {

// Four clients: clients 0-2 each hold half of the samples of one class only, client 3 the other
// halves of all three (a label skew as strong as Dirichlet with a small alpha).
std::vector<FederatedClient> SkewedClients(const std::shared_ptr<data::InMemoryDataset>& all) {
  std::vector<std::vector<int64_t>> parts(4);
  for (int64_t i = 0; i < all->size(); ++i) {
    const int64_t label = all->labels()[static_cast<size_t>(i)];
    parts[(i / 3) % 2 == 0 ? static_cast<size_t>(label) : 3].push_back(i);
  }
  std::vector<FederatedClient> clients;
  for (size_t c = 0; c < parts.size(); ++c) {
    clients.push_back({"c" + std::to_string(c), *data::SubsetDataset::Create(all, parts[c])});
  }
  return clients;
}

FederatedSimOptions Options() {
  FederatedSimOptions options;
  options.round.clients_per_round = 4;
  options.round.over_selection = 1.0;
  options.round.min_report_fraction = 1.0;
  options.round.local_epochs = 0;
  options.round.local_steps = 10;
  options.round.batch_size = 16;
  options.round.learning_rate = 0.05;
  options.rounds = 8;
  options.threads = 2;
  return options;
}

TEST(FederatedSimulationTest, FedAvgLearnsFromLabelSkewedClients) {
  const auto train = testing::Blobs(600, 1);
  const auto test = testing::Blobs(300, 2);
  const std::vector<FederatedClient> clients = SkewedClients(train);
  int progress_calls = 0;
  FederatedSimOptions options = Options();
  options.progress = [&](const FederatedRoundRecord&) { ++progress_calls; };
  auto r = RunFederatedSimulation(testing::LinearClassifierGraph(), clients, *test, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(r->initial_accuracy, 0.6);
  ASSERT_EQ(r->rounds.size(), 8u);
  EXPECT_EQ(progress_calls, 8);
  for (const FederatedRoundRecord& rec : r->rounds) {
    EXPECT_EQ(rec.result.status, fl::RoundStatus::kApplied);
    EXPECT_EQ(rec.result.participants, 4);
    EXPECT_GT(rec.result.bytes_accepted, 0);
    EXPECT_GE(rec.accuracy, 0.0);
  }
  EXPECT_GT(r->rounds.back().accuracy, 0.95);
  // The final weights score what the last round reported.
  auto again = EvaluateWeights(testing::LinearClassifierGraph(), r->final_weights, *test);
  ASSERT_TRUE(again.ok());
  EXPECT_DOUBLE_EQ(*again, r->rounds.back().accuracy);
}

TEST(FederatedSimulationTest, Int8UpdatesSendFewerBytesAndStillLearn) {
  const auto train = testing::Blobs(600, 1);
  const auto test = testing::Blobs(300, 2);
  const std::vector<FederatedClient> clients = SkewedClients(train);
  FederatedSimOptions dense = Options();
  FederatedSimOptions int8 = Options();
  int8.round.codec = "int8";
  auto d = RunFederatedSimulation(testing::LinearClassifierGraph(), clients, *test, dense);
  auto q = RunFederatedSimulation(testing::LinearClassifierGraph(), clients, *test, int8);
  ASSERT_TRUE(d.ok() && q.ok());
  // 15 parameters: the header dominates, but int8's payload is a quarter of dense's.
  EXPECT_LT(q->rounds[0].result.bytes_accepted, d->rounds[0].result.bytes_accepted);
  EXPECT_EQ(q->rounds[0].result.dense_bytes_accepted, d->rounds[0].result.dense_bytes_accepted);
  EXPECT_GT(q->rounds.back().accuracy, 0.95);
}

TEST(FederatedSimulationTest, DropoutsBelowTheMinimumAbandonRoundsWithoutChangingTheModel) {
  const auto train = testing::Blobs(600, 1);
  const auto test = testing::Blobs(300, 2);
  const std::vector<FederatedClient> clients = SkewedClients(train);
  FederatedSimOptions options = Options();
  options.dropout_rate = 0.5;  // with min_report_fraction 1, most rounds cannot be applied
  options.rounds = 6;
  auto r = RunFederatedSimulation(testing::LinearClassifierGraph(), clients, *test, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int abandoned = 0;
  double last = r->initial_accuracy;
  for (const FederatedRoundRecord& rec : r->rounds) {
    if (rec.result.status == fl::RoundStatus::kAbandoned) {
      ++abandoned;
      EXPECT_DOUBLE_EQ(rec.accuracy, last) << "round " << rec.result.round_id;
      EXPECT_EQ(rec.result.global_delta_norm, 0.0);
    }
    last = rec.accuracy;
  }
  EXPECT_GT(abandoned, 0);
}

TEST(FederatedSimulationTest, SecureAggregationMatchesThePlainRoundAndAbortsBelowTheThreshold) {
  const auto train = testing::Blobs(600, 1);
  const auto test = testing::Blobs(300, 2);
  const std::vector<FederatedClient> clients = SkewedClients(train);
  FederatedSimOptions plain = Options();
  plain.rounds = 3;
  FederatedSimOptions secure = plain;
  secure.round.secure_aggregation = true;
  auto p = RunFederatedSimulation(testing::LinearClassifierGraph(), clients, *test, plain);
  auto s = RunFederatedSimulation(testing::LinearClassifierGraph(), clients, *test, secure);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (size_t r = 0; r < s->rounds.size(); ++r) {
    EXPECT_EQ(s->rounds[r].result.status, fl::RoundStatus::kApplied);
    EXPECT_EQ(s->rounds[r].result.participants, 4);
    EXPECT_GT(s->rounds[r].secagg_server_seconds, 0.0);
  }
  // The same weighted mean up to the fixed-point encoding.
  ASSERT_EQ(s->final_weights.size(), p->final_weights.size());
  for (size_t i = 0; i < p->final_weights.size(); ++i) {
    EXPECT_NEAR(s->final_weights[i], p->final_weights[i], 1e-4) << i;
  }
  // Half of the 4 clients drop: 2 survivors are below the threshold of 3, every round aborts.
  FederatedSimOptions dropping = secure;
  dropping.round.min_report_fraction = 0.5;
  dropping.dropout_rate = 0.5;
  dropping.rounds = 4;
  auto d = RunFederatedSimulation(testing::LinearClassifierGraph(), clients, *test, dropping);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  for (const FederatedRoundRecord& rec : d->rounds) {
    if (rec.result.status == fl::RoundStatus::kAbandoned) {
      EXPECT_EQ(rec.result.participants, 0);  // no sum: the server learned nothing
    } else {
      EXPECT_GE(rec.result.participants, 3);
    }
  }
}

TEST(FederatedSimulationTest, RejectsBadInput) {
  const auto test = testing::Blobs(30, 2);
  EXPECT_EQ(RunFederatedSimulation(testing::LinearClassifierGraph(), {}, *test, Options())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  const auto train = testing::Blobs(60, 1);
  auto empty = *data::InMemoryDataset::Create({4}, 3, {}, {});
  auto no_data = RunFederatedSimulation(testing::LinearClassifierGraph(),
                                        {{"a", train}, {"b", empty}}, *test, Options());
  EXPECT_EQ(no_data.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_data.status().message().find("'b' has no data"), std::string::npos);
  std::vector<FederatedClient> twice = {{"a", train}, {"a", train}};
  auto r = RunFederatedSimulation(testing::LinearClassifierGraph(), twice, *test, Options());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'a' appears twice"), std::string::npos);
  FederatedSimOptions bad = Options();
  bad.threads = 0;
  EXPECT_FALSE(
      RunFederatedSimulation(testing::LinearClassifierGraph(), {{"a", train}}, *test, bad).ok());
}

}  // namespace
}  // namespace hml::sim
