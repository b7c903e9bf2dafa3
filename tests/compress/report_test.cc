// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/compress/report.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/compress/prune.h"
#include "src/compress/quantize.h"
#include "tests/testing/models.h"

namespace hml::compress {
namespace {

TEST(ReportTest, ComparesFp32PrunedAndInt8Variants) {
  const runtime::Graph fp32 = testing::Cnn28Graph();
  CalibrationSet data;
  for (int i = 0; i < 4; ++i) {
    std::vector<Tensor> sample;
    sample.push_back(testing::RandomTensor({1, 1, 28, 28}, 60 + static_cast<uint64_t>(i), 1.0f));
    data.samples.push_back(std::move(sample));
  }
  Result<runtime::Graph> int8 = QuantizeStatic(fp32, data, QuantizeOptions());
  ASSERT_TRUE(int8.ok()) << int8.status().ToString();
  Result<runtime::Graph> pruned = PruneChannels(fp32, ChannelPruneOptions());
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();

  ReportOptions options;
  options.warmup = 1;
  options.iterations = 3;
  int evaluations = 0;
  EvaluateFn evaluate = [&](const Model& m) -> Result<Score> {
    ++evaluations;
    EXPECT_EQ(m.outputs().at(0).name, "probs");
    return Score{0.5, 0.25};
  };
  std::vector<VariantReport> rows;
  for (const auto& [name, g] : std::vector<std::pair<std::string, const runtime::Graph*>>{
           {"fp32", &fp32}, {"pruned-50%", &*pruned}, {"int8", &*int8}}) {
    Result<VariantReport> r = ReportVariant(name, *g, options, evaluate);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->name, name);
    EXPECT_GT(r->flops, 0);
    EXPECT_GT(r->params, 0);
    EXPECT_GT(r->zstd_bytes, 0);
    EXPECT_LT(r->zstd_bytes, r->onnx_bytes);
    EXPECT_GT(r->latency_p50_us, 0.0);
    ASSERT_TRUE(r->accuracy.has_value());
    EXPECT_EQ(*r->accuracy, 0.5);
    ASSERT_TRUE(r->agreement.has_value());
    EXPECT_EQ(*r->agreement, 0.25);
    rows.push_back(*r);
  }
  EXPECT_EQ(evaluations, 3);
  // Channel pruning halves parameters and FLOPs; int8 shrinks the file by more than 3x (weights 4x;
  // scales, int32 biases and names stay).
  EXPECT_LT(rows[1].params, rows[0].params * 6 / 10);
  EXPECT_LT(rows[1].flops, rows[0].flops * 6 / 10);
  EXPECT_LT(rows[2].onnx_bytes * 3, rows[0].onnx_bytes);
  // Unstructured sparsity keeps the raw size but shows in the zstd-compressed one.
  MagnitudePruneOptions sparse_options;
  sparse_options.sparsity = 0.7;
  Result<runtime::Graph> sparse = PruneMagnitude(fp32, sparse_options);
  ASSERT_TRUE(sparse.ok());
  Result<VariantReport> sparse_row = ReportVariant("sparse-70%", *sparse, options);
  ASSERT_TRUE(sparse_row.ok()) << sparse_row.status().ToString();
  EXPECT_EQ(sparse_row->onnx_bytes, rows[0].onnx_bytes);
  EXPECT_LT(sparse_row->zstd_bytes, rows[0].zstd_bytes / 2);
  EXPECT_FALSE(sparse_row->accuracy.has_value());
  const std::string table = FormatReportTable(rows);
  EXPECT_NE(table.find("pruned-50%"), std::string::npos);
  EXPECT_NE(table.find("50.00%"), std::string::npos);
  EXPECT_NE(table.find("25.00%"), std::string::npos);
}

TEST(ReportTest, ErrorsNameTheVariant) {
  ReportOptions options;
  options.iterations = 0;
  EvaluateFn failing = [](const Model&) -> Result<Score> {
    return NotFoundError("test set missing");
  };
  Result<VariantReport> r = ReportVariant("student", testing::Cnn28Graph(), options, failing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("student"), std::string::npos);

  ReportOptions bad;
  bad.zstd_level = 0;
  EXPECT_EQ(bad.Validate().code(), StatusCode::kInvalidArgument);
  bad = ReportOptions();
  bad.num_threads = 0;
  EXPECT_EQ(ReportVariant("x", testing::Cnn28Graph(), bad).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ReportTest, ZstdRoundTripShrinksRepetitiveBytes) {
  const std::string input(100000, 'a');
  Result<std::string> packed = ZstdCompress(input, 3);
  ASSERT_TRUE(packed.ok());
  EXPECT_LT(packed->size(), 1000u);
}

}  // namespace
}  // namespace hml::compress
