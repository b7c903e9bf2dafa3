// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/crypto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hml::ota {
namespace {

using ::testing::HasSubstr;

TEST(CryptoTest, Sha256KnownAnswers) {
  // FIPS 180-2, appendix B.1 ("abc") and the empty message.
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256("abc").size(), 32u);
}

TEST(CryptoTest, HexRoundTripAndErrors) {
  const std::string bytes("\x00\x01\xab\xff", 4);
  EXPECT_EQ(ToHex(bytes), "0001abff");
  EXPECT_EQ(*FromHex("0001ABff", "x"), bytes);
  EXPECT_EQ(FromHex("abc", "key").status().code(), StatusCode::kInvalidArgument);
  auto bad = FromHex("zz", "key");
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("key: not hex"));
}

TEST(CryptoTest, Ed25519Rfc8032TestVector1) {
  // RFC 8032, section 7.1, TEST 1: the empty message.
  auto pair = KeyPair::FromSeed(
      *FromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "seed"));
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(ToHex(pair->public_key.raw),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const std::string sig = pair->Sign("");
  EXPECT_EQ(ToHex(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(VerifySignature(pair->public_key, "", sig));
  EXPECT_FALSE(VerifySignature(pair->public_key, "x", sig));
  std::string flipped = sig;
  flipped[10] ^= 1;
  EXPECT_FALSE(VerifySignature(pair->public_key, "", flipped));
  EXPECT_FALSE(VerifySignature(pair->public_key, "", sig.substr(1)));
}

TEST(CryptoTest, KeyIdsAndKeyJson) {
  auto a = KeyPair::FromSeed(std::string(32, 'a'));
  auto b = KeyPair::FromSeed(std::string(32, 'b'));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->Id(), b->Id());
  EXPECT_EQ(a->Id(), Sha256Hex(CanonicalJson(a->public_key.ToJson())));
  auto back = PublicKey::FromJson(a->public_key.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->raw, a->public_key.raw);
  Json rsa = a->public_key.ToJson();
  rsa["keytype"] = "rsa";
  EXPECT_EQ(PublicKey::FromJson(rsa).status().code(), StatusCode::kInvalidArgument);
  Json shorter = a->public_key.ToJson();
  shorter["keyval"]["public"] = "abcd";
  EXPECT_THAT(std::string(PublicKey::FromJson(shorter).status().message()), HasSubstr("32"));
  EXPECT_EQ(KeyPair::FromSeed("short").status().code(), StatusCode::kInvalidArgument);
  auto fresh = KeyPair::Generate();
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(VerifySignature(fresh->public_key, "m", fresh->Sign("m")));
}

}  // namespace
}  // namespace hml::ota
