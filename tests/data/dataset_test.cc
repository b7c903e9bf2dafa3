// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/data/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace hml::data {
namespace {

using ::testing::HasSubstr;

std::string BigEndian32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

std::string Gzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// An idx3 image file of `count` images `rows`x`cols`; pixel value = (i + p) % 256.
std::string IdxImages(uint32_t count, uint32_t rows, uint32_t cols, uint32_t magic = 0x803) {
  std::string s = BigEndian32(magic) + BigEndian32(count) + BigEndian32(rows) + BigEndian32(cols);
  for (uint32_t i = 0; i < count * rows * cols; ++i) s.push_back(static_cast<char>(i % 256));
  return s;
}

std::string IdxLabels(uint32_t count, uint32_t magic = 0x801) {
  std::string s = BigEndian32(magic) + BigEndian32(count);
  for (uint32_t i = 0; i < count; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

// An in-memory Env.
class FakeEnv : public Env {
 public:
  std::map<std::string, std::string> files;
  Result<std::string> ReadFile(const std::string& path, int64_t max_bytes) override {
    auto it = files.find(path);
    if (it == files.end()) return NotFoundError("'" + path + "' not found");
    return it->second;
  }
  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    files[path] = std::string(data);
    return Status::Ok();
  }
  bool FileExists(const std::string& path) override { return files.count(path) > 0; }
};

void PutFashionMnist(FakeEnv& env, const std::string& images, const std::string& labels) {
  env.files["/d/t10k-images-idx3-ubyte.gz"] = Gzip(images);
  env.files["/d/t10k-labels-idx1-ubyte.gz"] = Gzip(labels);
}

TEST(GunzipTest, RoundTripsAndReportsTruncation) {
  const std::string data = IdxImages(3, 28, 28);
  auto out = GunzipBytes(Gzip(data), "x.gz");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, data);
  const std::string gz = Gzip(data);
  auto cut = GunzipBytes(std::string_view(gz).substr(0, gz.size() / 2), "x.gz");
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr("x.gz"));
  auto junk = GunzipBytes("definitely not gzip", "y.gz");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(junk.status().message()), HasSubstr("y.gz"));
  auto big = GunzipBytes(gz, "z.gz", 100);
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
}

TEST(FashionMnistTest, SyntheticIdxGzParses) {
  FakeEnv env;
  PutFashionMnist(env, IdxImages(5, 28, 28), IdxLabels(5));
  auto ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ((*ds)->size(), 5);
  EXPECT_EQ((*ds)->num_classes(), 10);
  EXPECT_EQ((*ds)->feature_shape(), (Shape{1, 28, 28}));
  std::vector<float> x(784);
  auto label = (*ds)->Get(3, x);
  ASSERT_TRUE(label.ok());
  EXPECT_EQ(*label, 3);
  // Sample 3 starts at pixel index 3*784 = 2352, value 2352 % 256 = 48.
  EXPECT_FLOAT_EQ(x[0], 48.0f / 255.0f);
  EXPECT_FLOAT_EQ(x[1], 49.0f / 255.0f);
  EXPECT_EQ((*ds)->Get(5, x).status().code(), StatusCode::kOutOfRange);
}

TEST(FashionMnistTest, CorruptMagicNamesTheFile) {
  FakeEnv env;
  PutFashionMnist(env, IdxImages(2, 28, 28, 0x802), IdxLabels(2));
  auto ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("t10k-images-idx3-ubyte.gz"));
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("magic 0x00000802"));

  PutFashionMnist(env, IdxImages(2, 28, 28), IdxLabels(2, 0x803));
  ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("t10k-labels-idx1-ubyte.gz"));
}

TEST(FashionMnistTest, TruncatedPayloadIsDataLoss) {
  FakeEnv env;
  std::string images = IdxImages(4, 28, 28);
  images.resize(images.size() - 10);
  PutFashionMnist(env, images, IdxLabels(4));
  auto ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("t10k-images-idx3-ubyte.gz"));
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("truncated"));

  std::string labels = IdxLabels(4);
  labels.resize(10);
  PutFashionMnist(env, IdxImages(4, 28, 28), labels);
  ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("labels"));

  PutFashionMnist(env, IdxImages(4, 28, 28).substr(0, 9), IdxLabels(4));
  ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  EXPECT_EQ(ds.status().code(), StatusCode::kDataLoss);
}

TEST(FashionMnistTest, WrongDimsAndCountMismatch) {
  FakeEnv env;
  PutFashionMnist(env, IdxImages(2, 32, 32), IdxLabels(2));
  auto ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("32x32, expected 28x28"));

  PutFashionMnist(env, IdxImages(3, 28, 28), IdxLabels(2));
  ds = LoadFashionMnist(env, "/d", FashionMnistPart::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("3 images"));
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("2 labels"));
}

TEST(FashionMnistTest, MissingFileIsNotFound) {
  FakeEnv env;
  auto ds = LoadFashionMnist(env, "/nowhere", FashionMnistPart::kTrain);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("/nowhere/train-images"));
}

TEST(FashionMnistTest, RealTestSetLoadsWhenInstalled) {
  const std::string dir(kFashionMnistDir);
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  const auto start = std::chrono::steady_clock::now();
  auto ds = LoadFashionMnist(*DefaultEnv(), dir, FashionMnistPart::kTest);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ((*ds)->size(), 10000);
  std::vector<int64_t> per_class(10, 0);
  for (int64_t l : (*ds)->labels()) per_class[static_cast<size_t>(l)]++;
  for (int64_t c : per_class) EXPECT_EQ(c, 1000);  // the test set is balanced
  RecordProperty("load_seconds", std::to_string(seconds));
}

TEST(DataSpecTest, OpensEachKindAndNamesABadSpec) {
  FakeEnv env;
  PutFashionMnist(env, IdxImages(5, 28, 28), IdxLabels(5));
  env.files["/d/train-images-idx3-ubyte.gz"] = Gzip(IdxImages(7, 28, 28));
  env.files["/d/train-labels-idx1-ubyte.gz"] = Gzip(IdxLabels(7));
  auto fm = OpenDataSpec(env, "fashion-mnist:/d");
  ASSERT_TRUE(fm.ok()) << fm.status().ToString();
  EXPECT_EQ(fm->all->size(), 7);
  ASSERT_NE(fm->test, nullptr);
  EXPECT_EQ(fm->test->size(), 5);

  env.files["/t.csv"] = "x,label\n1,0\n2,1\n";
  auto csv = OpenDataSpec(env, "csv:/t.csv");
  ASSERT_TRUE(csv.ok()) << csv.status().ToString();
  EXPECT_EQ(csv->all->size(), 2);
  EXPECT_EQ(csv->test, nullptr);

  for (const char* bad : {"csv", "csv:", "mnist", "dir:"}) {
    auto r = OpenDataSpec(env, bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(std::string("'") + bad + "'"));
  }
  EXPECT_EQ(OpenDataSpec(env, "csv:/missing.csv").status().code(), StatusCode::kNotFound);
}

TEST(CsvTest, ParsesFeaturesAndLabel) {
  auto ds = ParseCsvDataset("a,b,label\n1.5,2,0\n-3,4e1,2\n\n5, 6 ,1\n", "t.csv");
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ((*ds)->size(), 3);
  EXPECT_EQ((*ds)->feature_shape(), (Shape{2}));
  EXPECT_EQ((*ds)->num_classes(), 3);
  std::vector<float> x(2);
  EXPECT_EQ(*(*ds)->Get(1, x), 2);
  EXPECT_FLOAT_EQ(x[0], -3.0f);
  EXPECT_FLOAT_EQ(x[1], 40.0f);

  CsvOptions first;
  first.label_column = 0;
  first.has_header = false;
  auto ds2 = ParseCsvDataset("1,0.5,0.25\r\n0,1,2\r\n", "u.csv", first);
  ASSERT_TRUE(ds2.ok()) << ds2.status().ToString();
  EXPECT_EQ(*(*ds2)->Get(0, x), 1);
  EXPECT_FLOAT_EQ(x[1], 0.25f);
}

TEST(CsvTest, ErrorsNameLineAndColumn) {
  auto bad = ParseCsvDataset("a,b,label\n1,2,0\n1,abc,1\n", "t.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("t.csv:3 column 2"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'abc'"));

  auto ragged = ParseCsvDataset("a,b,label\n1,2,0\n1,1\n", "t.csv");
  ASSERT_FALSE(ragged.ok());
  EXPECT_THAT(std::string(ragged.status().message()), HasSubstr("t.csv:3: 2 columns, expected 3"));

  auto label = ParseCsvDataset("a,label\n1,0.5\n", "t.csv");
  ASSERT_FALSE(label.ok());
  EXPECT_THAT(std::string(label.status().message()), HasSubstr("t.csv:2 column 2"));

  auto negative = ParseCsvDataset("a,label\n1,-1\n", "t.csv");
  EXPECT_EQ(negative.status().code(), StatusCode::kInvalidArgument);
  auto empty = ParseCsvDataset("a,label\n", "t.csv");
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("no data rows"));
  auto nan = ParseCsvDataset("a,label\nnan,1\n", "t.csv");
  EXPECT_EQ(nan.status().code(), StatusCode::kInvalidArgument);
}

std::shared_ptr<InMemoryDataset> Counting(int64_t n) {
  std::vector<float> f;
  std::vector<int64_t> l;
  for (int64_t i = 0; i < n; ++i) {
    f.push_back(static_cast<float>(i));
    l.push_back(i % 2);
  }
  return *InMemoryDataset::Create({1}, 2, std::move(f), std::move(l));
}

std::vector<float> AllFeatures(const Dataset& d) {
  std::vector<float> out;
  std::vector<float> x(static_cast<size_t>(d.feature_size()));
  for (int64_t i = 0; i < d.size(); ++i) {
    EXPECT_TRUE(d.Get(i, x).ok());
    out.insert(out.end(), x.begin(), x.end());
  }
  return out;
}

TEST(SplitTest, SameSeedSameSplitDifferentSeedDifferent) {
  auto base = Counting(100);
  auto a = SplitDataset(base, 0.2, 7);
  auto b = SplitDataset(base, 0.2, 7);
  auto c = SplitDataset(base, 0.2, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->validation->size(), 20);
  EXPECT_EQ(a->train->size(), 80);
  EXPECT_EQ(AllFeatures(*a->train), AllFeatures(*b->train));
  EXPECT_EQ(AllFeatures(*a->validation), AllFeatures(*b->validation));
  EXPECT_NE(AllFeatures(*a->validation), AllFeatures(*c->validation));
  // Train and validation partition the dataset.
  std::vector<float> all = AllFeatures(*a->train);
  std::vector<float> val = AllFeatures(*a->validation);
  all.insert(all.end(), val.begin(), val.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, AllFeatures(*base));
  EXPECT_EQ(SplitDataset(base, 1.0, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(SplitTest, ShuffleIsAPermutationAndSeeded) {
  std::mt19937_64 r1(3), r2(3);
  auto p = ShuffledIndices(50, r1);
  EXPECT_EQ(p, ShuffledIndices(50, r2));
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  EXPECT_NE(p, sorted);
}

TEST(NormalizationTest, ComputesPerChannelStatsAndApplies) {
  // Two channels of 2 pixels: channel 0 values {0,2,4,6}, channel 1 values {10,10,10,10}.
  auto ds = *InMemoryDataset::Create({2, 1, 2}, 2, {0, 2, 10, 10, 4, 6, 10, 10}, {0, 1});
  auto n = ComputeNormalization(*ds);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n->mean.size(), 2u);
  EXPECT_FLOAT_EQ(n->mean[0], 3.0f);
  EXPECT_FLOAT_EQ(n->stddev[0], std::sqrt(5.0f));
  EXPECT_FLOAT_EQ(n->mean[1], 10.0f);
  EXPECT_FLOAT_EQ(n->stddev[1], 1.0f);  // zero variance
  auto norm = NormalizedDataset::Create(ds, *n);
  ASSERT_TRUE(norm.ok());
  std::vector<float> x(4);
  ASSERT_TRUE((*norm)->Get(1, x).ok());
  EXPECT_FLOAT_EQ(x[0], 1.0f / std::sqrt(5.0f));
  EXPECT_FLOAT_EQ(x[2], 0.0f);
  Normalization bad{{0.0f}, {0.0f}};
  EXPECT_EQ(NormalizedDataset::Create(ds, bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(AugmentTest, FlipAndCropKeepPixelsAndAreSeeded) {
  const Shape chw{1, 2, 3};
  std::vector<float> img{1, 2, 3, 4, 5, 6};
  AugmentOptions flip;
  flip.horizontal_flip = true;
  ASSERT_TRUE(flip.Validate(chw).ok());
  std::mt19937_64 rng(1);
  int flipped = 0;
  for (int i = 0; i < 40; ++i) {
    std::vector<float> x = img;
    AugmentImage(x, chw, flip, rng);
    if (x == std::vector<float>{3, 2, 1, 6, 5, 4}) {
      ++flipped;
    } else {
      EXPECT_EQ(x, img);
    }
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 35);

  AugmentOptions crop;
  crop.crop_padding = 1;
  std::mt19937_64 a(9), b(9);
  bool moved = false;
  for (int i = 0; i < 20; ++i) {
    std::vector<float> x = img, y = img;
    AugmentImage(x, chw, crop, a);
    AugmentImage(y, chw, crop, b);
    EXPECT_EQ(x, y);
    for (float v : x) EXPECT_TRUE(v == 0.0f || (v >= 1.0f && v <= 6.0f));
    moved = moved || x != img;
  }
  EXPECT_TRUE(moved);
  EXPECT_EQ(crop.Validate(Shape{6}).code(), StatusCode::kInvalidArgument);
}

TEST(SampleDirectoryTest, RoundTripsAndRejectsBadFiles) {
  const std::string dir = ::testing::TempDir() + "/hmls_samples";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
  };
  const std::vector<float> a{1, 2, 3, 4}, b{5, 6, 7, 8};
  write("0001.hmls", EncodeSampleFile(a, {1, 2, 2}, 0));
  write("0002.hmls", EncodeSampleFile(b, {1, 2, 2}, 2));
  write("README", "ignored");
  auto ds = LoadSampleDirectory(*DefaultEnv(), dir);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ((*ds)->size(), 2);
  EXPECT_EQ((*ds)->num_classes(), 3);
  EXPECT_EQ((*ds)->feature_shape(), (Shape{1, 2, 2}));
  std::vector<float> x(4);
  EXPECT_EQ(*(*ds)->Get(1, x), 2);
  EXPECT_EQ(x, b);

  std::string truncated = EncodeSampleFile(b, {1, 2, 2}, 1);
  truncated.resize(truncated.size() - 3);
  write("0003.hmls", truncated);
  auto bad = LoadSampleDirectory(*DefaultEnv(), dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("0003.hmls"));

  write("0003.hmls", EncodeSampleFile(a, {4}, 1));
  bad = LoadSampleDirectory(*DefaultEnv(), dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("differs"));

  write("0003.hmls", "XXXX" + EncodeSampleFile(a, {4}, 1).substr(4));
  bad = LoadSampleDirectory(*DefaultEnv(), dir);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("bad magic"));

  EXPECT_EQ(LoadSampleDirectory(*DefaultEnv(), dir + "/missing").status().code(),
            StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hml::data
