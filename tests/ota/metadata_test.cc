// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/ota/repository.h"

namespace hml::ota {
namespace {

using ::testing::HasSubstr;

KeyPair Key(char seed) { return *KeyPair::FromSeed(std::string(32, seed)); }

TEST(MetadataTest, UtcTimes) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtc(951782400), "2000-02-29T00:00:00Z");
  EXPECT_EQ(*ParseUtc("2000-02-29T00:00:00Z"), 951782400);
  EXPECT_EQ(*ParseUtc("2038-01-19T03:14:08Z"), int64_t{1} << 31);
  for (const char* bad : {"2001-02-29T00:00:00Z", "2000-13-01T00:00:00Z", "2000-01-01 00:00:00Z",
                          "2000-01-01T00:00:00+01:00", "2000-01-01T24:00:00Z", ""}) {
    EXPECT_EQ(ParseUtc(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(MetadataTest, TargetNames) {
  for (const char* ok : {"model.onnx", "student/v2/model-int8.onnx", "a_b.c"}) {
    EXPECT_TRUE(ValidateTargetName(ok).ok()) << ok;
  }
  for (const char* bad : {"", "../x", "a/../b", "/etc", "a/", "a//b", ".", "a b", "a\\b",
                          "caf\xc3\xa9"}) {
    EXPECT_EQ(ValidateTargetName(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateTargetName(std::string(256, 'a')).ok());
}

TEST(MetadataTest, RolesRoundTripThroughJson) {
  auto repo = Repository::Create({{Key('r'), Key('q')}, 2}, {{Key('t')}, 1}, {{Key('s')}, 1},
                                 {{Key('x')}, 1}, 1'800'000'000);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  Json custom = Json::Object{};
  custom["version"] = 3;
  ASSERT_TRUE(repo->AddTarget("m.onnx", "bytes", custom, 1'800'000'000).ok());
  auto root = RootMeta::FromJson(repo->root().ToJson());
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(root->ToJson(), repo->root().ToJson());
  EXPECT_EQ(root->role(Role::kRoot).threshold, 2);
  auto targets = TargetsMeta::FromJson(repo->targets().ToJson());
  ASSERT_TRUE(targets.ok()) << targets.status().ToString();
  EXPECT_EQ(targets->targets.at("m.onnx").sha256, Sha256Hex("bytes"));
  EXPECT_EQ(targets->targets.at("m.onnx").custom, custom);
  auto snapshot = SnapshotMeta::FromJson(repo->snapshot().ToJson());
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot->meta.at("targets.json").version, repo->targets().version);
  auto ts = TimestampMeta::FromJson(repo->timestamp().ToJson());
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(ts->snapshot.version, repo->snapshot().version);
  // Files parse back and carry the threshold of signatures.
  auto e = Envelope::Parse(repo->files().at("root.json"), 1 << 20);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->signatures.size(), 2u);
  EXPECT_TRUE(VerifyThreshold(*e, *root, root->role(Role::kRoot), "root").ok());
  EXPECT_EQ(e->Serialize(), repo->files().at("root.json"));
}

TEST(MetadataTest, MalformedRolesAreNamed) {
  auto repo = Repository::Create({{Key('r')}, 1}, {{Key('t')}, 1}, {{Key('s')}, 1},
                                 {{Key('x')}, 1}, 1'800'000'000);
  ASSERT_TRUE(repo.ok());
  Json root = repo->root().ToJson();
  Json wrong_type = root;
  wrong_type["_type"] = "targets";
  EXPECT_THAT(std::string(RootMeta::FromJson(wrong_type).status().message()),
              HasSubstr("_type 'targets', expected 'root'"));
  Json zero_threshold = root;
  zero_threshold["roles"]["snapshot"]["threshold"] = 0;
  EXPECT_THAT(std::string(RootMeta::FromJson(zero_threshold).status().message()),
              HasSubstr("threshold 0"));
  Json unknown_key = root;
  unknown_key["roles"]["targets"]["keyids"].as_array().push_back(std::string(64, 'f'));
  EXPECT_THAT(std::string(RootMeta::FromJson(unknown_key).status().message()),
              HasSubstr("unknown key"));
  Json wrong_id = root;
  Json::Object& keys = wrong_id["keys"].as_object();
  keys[std::string(64, 'e')] = keys.begin()->second;
  EXPECT_THAT(std::string(RootMeta::FromJson(wrong_id).status().message()),
              HasSubstr("is not the hash of its key"));
  Json no_timestamp = root;
  no_timestamp["roles"].as_object().erase("timestamp");
  EXPECT_THAT(std::string(RootMeta::FromJson(no_timestamp).status().message()),
              HasSubstr("no 'timestamp' role"));
  EXPECT_EQ(Envelope::Parse(std::string(2000, ' '), 1000).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(Envelope::Parse("{\"signed\":1,\"signatures\":[]}", 1000).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Repository::Create({{}, 1}, {{Key('t')}, 1}, {{Key('s')}, 1}, {{Key('x')}, 1}, 0)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::ota
