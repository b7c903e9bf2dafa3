// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/transport.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace hml::sdk {
namespace {

NamedTensor Input(std::string name) {
  return {std::move(name), std::move(*Tensor::Allocate(DType::kFloat32, {1, 4}))};
}

InferCall GoodCall() {
  InferCall call;
  call.model = "cnn";
  call.inputs.push_back(Input("a"));
  call.inputs.push_back(Input("b"));
  return call;
}

TEST(ValidateInferCallTest, AcceptsAWellFormedCall) {
  EXPECT_TRUE(ValidateInferCall(GoodCall()).ok());
  // INT8 cut tensors carry their parameters; the SDK does not judge them (the server does).
  InferCall split = GoodCall();
  split.inputs[0].parameters[kScaleParameter] = 0.5;
  split.inputs[0].parameters[kZeroPointParameter] = int64_t{0};
  EXPECT_TRUE(ValidateInferCall(split).ok());
}

TEST(ValidateInferCallTest, RefusesMalformedCallsNamingTheProblem) {
  auto message_of = [](const InferCall& call) {
    Status s = ValidateInferCall(call);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  InferCall no_model = GoodCall();
  no_model.model.clear();
  EXPECT_NE(message_of(no_model).find("model name is empty"), std::string::npos);

  InferCall duplicate = GoodCall();
  duplicate.inputs[1].name = "a";
  EXPECT_NE(message_of(duplicate).find("input 'a' is given twice"), std::string::npos);

  InferCall unnamed = GoodCall();
  unnamed.inputs[1].name.clear();
  EXPECT_NE(message_of(unnamed).find("input #1 has no name"), std::string::npos);

  InferCall empty_tensor = GoodCall();
  empty_tensor.inputs[0].tensor = Tensor();
  EXPECT_NE(message_of(empty_tensor).find("input 'a' is an empty tensor"), std::string::npos);

  InferCall no_inputs = GoodCall();
  no_inputs.inputs.clear();
  EXPECT_NE(message_of(no_inputs).find("model 'cnn': no inputs"), std::string::npos);

  InferCall negative = GoodCall();
  negative.version = -1;
  EXPECT_NE(message_of(negative).find("version -1"), std::string::npos);
  negative.version = 0;
  negative.deadline_nanos = -3;
  EXPECT_NE(message_of(negative).find("deadline -3"), std::string::npos);
}

TEST(ValidateJoinRoundCallTest, NeedsATaskAndADeadlineOfZeroOrMore) {
  JoinRoundCall call;
  call.task = "fmnist";
  EXPECT_TRUE(ValidateJoinRoundCall(call).ok());
  call.deadline_nanos = 5;
  EXPECT_TRUE(ValidateJoinRoundCall(call).ok());

  call.deadline_nanos = -1;
  Status negative = ValidateJoinRoundCall(call);
  EXPECT_EQ(negative.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("task 'fmnist': deadline -1 is negative"), std::string::npos)
      << negative.message();

  JoinRoundCall no_task;
  Status empty = ValidateJoinRoundCall(no_task);
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.message().find("task name is empty"), std::string::npos) << empty.message();
}

SubmitUpdateCall GoodUpdate() {
  SubmitUpdateCall call;
  call.task = "fmnist";
  call.round_id = "3";
  call.sealed_update = "HMLU...";
  call.example_count = 12;
  return call;
}

TEST(ValidateSubmitUpdateCallTest, AcceptsAWellFormedCall) {
  EXPECT_TRUE(ValidateSubmitUpdateCall(GoodUpdate()).ok());
  SubmitUpdateCall with_deadline = GoodUpdate();
  with_deadline.deadline_nanos = 1;
  EXPECT_TRUE(ValidateSubmitUpdateCall(with_deadline).ok());
}

TEST(ValidateSubmitUpdateCallTest, RefusesMalformedCallsNamingTheProblem) {
  auto message_of = [](const SubmitUpdateCall& call) {
    Status s = ValidateSubmitUpdateCall(call);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  SubmitUpdateCall no_task = GoodUpdate();
  no_task.task.clear();
  EXPECT_NE(message_of(no_task).find("task name is empty"), std::string::npos);

  SubmitUpdateCall no_round = GoodUpdate();
  no_round.round_id.clear();
  EXPECT_NE(message_of(no_round).find("task 'fmnist': the round id is empty"), std::string::npos);

  SubmitUpdateCall no_update = GoodUpdate();
  no_update.sealed_update.clear();
  EXPECT_NE(message_of(no_update).find("task 'fmnist' round 3: the update is empty"),
            std::string::npos);

  SubmitUpdateCall no_examples = GoodUpdate();
  no_examples.example_count = 0;
  EXPECT_NE(message_of(no_examples).find("example_count is 0"), std::string::npos);

  SubmitUpdateCall negative = GoodUpdate();
  negative.deadline_nanos = -7;
  EXPECT_NE(message_of(negative).find("deadline -7 is negative"), std::string::npos);
}

}  // namespace
}  // namespace hml::sdk
