// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace hml {
namespace {

TEST(StatusTest, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(sizeof(Status), sizeof(void*));
}

TEST(StatusTest, CodesMatchGrpcNumbering) {
  EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), 3);
  EXPECT_EQ(static_cast<int>(StatusCode::kResourceExhausted), 8);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnauthenticated), 16);
  EXPECT_EQ(StatusCodeName(StatusCode::kDataLoss), "DATA_LOSS");
  EXPECT_EQ(StatusCodeName(static_cast<StatusCode>(99)), "UNKNOWN_CODE");
}

TEST(StatusTest, ErrorCarriesCodeMessageAndContext) {
  Status s = InvalidArgumentError("tensor 'x': rank 9");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: tensor 'x': rank 9");
  Status c = s.WithContext("model.onnx");
  EXPECT_EQ(c.message(), "model.onnx: tensor 'x': rank 9");
  EXPECT_EQ(c.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Status().WithContext("ignored").ok());
}

TEST(StatusTest, CopyIsDeep) {
  Status a = NotFoundError("a");
  Status b = a;
  EXPECT_EQ(a, b);
  a = Status();
  EXPECT_EQ(b.message(), "a");
}

TEST(StatusTest, OkCodeWithMessageBecomesUnknown) {
  Status s(StatusCode::kOk, "odd");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnknown);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  HML_ASSIGN_OR_RETURN(int h, Half(x));
  HML_ASSIGN_OR_RETURN(h, Half(h));
  return h;
}

Status CheckEven(int x) {
  HML_RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(ResultTest, PropagatesValuesAndErrors) {
  Result<int> q = Quarter(12);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 3);
  Result<int> bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "3 is odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), StatusCode::kInvalidArgument);
}

TEST(ResultTest, HoldsMoveOnlyTypes) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultTest, OkStatusWithoutValueIsInternal) {
  Result<int> r = Status::Ok();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(ResultTest, CopyAndAssign) {
  Result<std::string> a = std::string("hello");
  Result<std::string> b = a;
  EXPECT_EQ(*b, "hello");
  b = Result<std::string>(NotFoundError("gone"));
  EXPECT_FALSE(b.ok());
  b = a;
  EXPECT_EQ(*b, "hello");
}

}  // namespace
}  // namespace hml
