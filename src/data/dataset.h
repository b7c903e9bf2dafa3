// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Datasets for training: one interface (Dataset) over labelled samples of float features, and
// the readers that make one from Fashion-MNIST (idx .gz files, as Debian's dataset-fashion-mnist
// ships them), CSV (numeric features + an integer label column) and a directory of sample files
// (the format the ingest service will write). Plus the plumbing every training run needs:
// a seeded train/validation split, seeded shuffling, per-channel normalisation and image
// augmentation (random crop with padding, horizontal flip).
//
// No LibTorch here: datasets are plain C++ so tools and tests can use them without torch.
// All randomness comes from std::mt19937_64 with explicit seeds and our own index arithmetic (no
// std::uniform_int_distribution, whose output differs between standard libraries), so a seed
// gives the same split and order everywhere.
#ifndef HML_SRC_DATA_DATASET_H_
#define HML_SRC_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/env.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::data {

// Labelled samples with a fixed feature shape: [C,H,W] for images, [D] for tabular data.
// Labels are class indices in [0, num_classes()).
// Implementations are immutable after creation, so Get() may be called from any thread.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual const Shape& feature_shape() const = 0;
  virtual int64_t num_classes() const = 0;
  // Copies sample `index`'s features into `features_out` and returns its label.
  // kOutOfRange for a bad index; kInvalidArgument when features_out.size() != feature_size().
  virtual Result<int64_t> Get(int64_t index, std::span<float> features_out) const = 0;

  // Number of floats per sample (product of feature_shape()).
  int64_t feature_size() const;
};

// A dataset held in memory: features of all samples back to back, one label each.
class InMemoryDataset : public Dataset {
 public:
  // kInvalidArgument when features.size() != labels.size() * product(feature_shape), when a
  // label is outside [0, num_classes) or num_classes < 1.
  static Result<std::shared_ptr<InMemoryDataset>> Create(Shape feature_shape,
                                                         int64_t num_classes,
                                                         std::vector<float> features,
                                                         std::vector<int64_t> labels);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  const Shape& feature_shape() const override { return feature_shape_; }
  int64_t num_classes() const override { return num_classes_; }
  Result<int64_t> Get(int64_t index, std::span<float> features_out) const override;

  std::span<const float> features() const { return features_; }
  std::span<const int64_t> labels() const { return labels_; }

 private:
  InMemoryDataset() = default;
  Shape feature_shape_;
  int64_t num_classes_ = 0;
  std::vector<float> features_;
  std::vector<int64_t> labels_;
};

// The samples of `base` at `indices` (in that order). Shares `base`.
class SubsetDataset : public Dataset {
 public:
  // kOutOfRange when an index is outside `base`.
  static Result<std::shared_ptr<SubsetDataset>> Create(std::shared_ptr<const Dataset> base,
                                                       std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  const Shape& feature_shape() const override { return base_->feature_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  Result<int64_t> Get(int64_t index, std::span<float> features_out) const override;

 private:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
      : base_(std::move(base)), indices_(std::move(indices)) {}
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

// Per-channel mean and standard deviation. For [C,H,W] features there are C entries (or one,
// applied to all channels); for [D] features one entry applies to all features, or D entries
// apply one per feature.
struct Normalization {
  std::vector<float> mean;
  std::vector<float> stddev;

  // kInvalidArgument when sizes differ, are not 1 or the channel count, or a stddev is <= 0.
  Status Validate(const Shape& feature_shape) const;
};

// Computes the per-channel (images: dim 0 of [C,H,W]; tabular: per feature) mean and standard
// deviation over all of `dataset`. A channel with zero variance gets stddev 1.
// kInvalidArgument for an empty dataset.
Result<Normalization> ComputeNormalization(const Dataset& dataset);

// `base` with (x - mean) / stddev applied to every sample on Get().
class NormalizedDataset : public Dataset {
 public:
  static Result<std::shared_ptr<NormalizedDataset>> Create(std::shared_ptr<const Dataset> base,
                                                           Normalization normalization);
  int64_t size() const override { return base_->size(); }
  const Shape& feature_shape() const override { return base_->feature_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  Result<int64_t> Get(int64_t index, std::span<float> features_out) const override;

 private:
  NormalizedDataset(std::shared_ptr<const Dataset> base, Normalization n)
      : base_(std::move(base)), normalization_(std::move(n)) {}
  std::shared_ptr<const Dataset> base_;
  Normalization normalization_;
};

// A seeded split into training and validation parts.
struct DatasetSplit {
  std::shared_ptr<SubsetDataset> train;
  std::shared_ptr<SubsetDataset> validation;
};

// Shuffles the indices of `dataset` with `seed` and puts round(fraction * size) of them into
// validation, the rest into train. The same seed gives the same split.
// kInvalidArgument for a fraction outside [0, 1).
Result<DatasetSplit> SplitDataset(std::shared_ptr<const Dataset> dataset,
                                  double validation_fraction, uint64_t seed);

// A uniformly random integer in [0, n) from `rng`. REQUIRES: n > 0.
uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n);
// 0..n-1 in a random order (Fisher-Yates on `rng`).
std::vector<int64_t> ShuffledIndices(int64_t n, std::mt19937_64& rng);

// Image augmentation for [C,H,W] features. Default: none.
struct AugmentOptions {
  // Pads the image with zeros by this many pixels on each side, then crops a random H x W
  // window. Default: 0 (no crop).
  int64_t crop_padding = 0;
  // Mirrors the image left-right with probability 1/2. Default: false.
  bool horizontal_flip = false;

  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
  // kInvalidArgument for a negative padding, or any augmentation on features that are not
  // [C,H,W].
  Status Validate(const Shape& feature_shape) const;
};

// Augments one [C,H,W] image in place. REQUIRES: options.Validate(chw) is OK and
// image.size() == C*H*W.
void AugmentImage(std::span<float> image, const Shape& chw, const AugmentOptions& options,
                  std::mt19937_64& rng);

// --- Readers -------------------------------------------------------------------------------

// Decompresses gzip bytes. `name` (a path) appears in errors: kDataLoss for corrupt or truncated
// data, kResourceExhausted when the output would exceed `max_bytes`.
Result<std::string> GunzipBytes(std::string_view gzip_bytes, std::string_view name,
                                int64_t max_bytes = int64_t{1} << 30);

// Parses an idx image file (magic 0x00000803, dims [N, rows, cols], uint8 pixels) and its idx
// label file (magic 0x00000801, dims [N]) into a dataset of [1, rows, cols] features scaled to
// [0, 1]. The names (paths) appear in errors: kInvalidArgument for a wrong magic number, wrong
// image dims (when `expected_rows`/`expected_cols` are > 0), counts that disagree, labels
// outside [0, num_classes); kDataLoss for files shorter than their header says.
Result<std::shared_ptr<InMemoryDataset>> ParseIdxDataset(std::string_view images,
                                                         std::string_view images_name,
                                                         std::string_view labels,
                                                         std::string_view labels_name,
                                                         int64_t num_classes,
                                                         int64_t expected_rows = 0,
                                                         int64_t expected_cols = 0);

// The Debian package's directory.
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

enum class FashionMnistPart { kTrain, kTest };

// Reads `{train,t10k}-images-idx3-ubyte.gz` and `...-labels-idx1-ubyte.gz` from `dir`:
// [1,28,28] images in [0,1], 10 classes. Errors as GunzipBytes/ParseIdxDataset, plus kNotFound
// for a missing file (the path is in the message).
Result<std::shared_ptr<InMemoryDataset>> LoadFashionMnist(Env& env, std::string_view dir,
                                                          FashionMnistPart part);

struct CsvOptions {
  // Column holding the integer class label; negative counts from the end. Default: -1 (last).
  int64_t label_column = -1;
  // Whether the first line is a header to skip. Default: true.
  bool has_header = true;
  // Default: ','.
  char delimiter = ',';
  // 0 = one more than the largest label seen. Default: 0.
  int64_t num_classes = 0;
};

// Parses CSV text: every row has the same number of columns, every feature is a finite number,
// the label is a non-negative integer. Blank lines are skipped. Errors (kInvalidArgument) name
// `name`, the 1-based line and column: "data.csv:7 column 3: 'abc' is not a number".
Result<std::shared_ptr<InMemoryDataset>> ParseCsvDataset(std::string_view text,
                                                         std::string_view name,
                                                         const CsvOptions& options = {});
Result<std::shared_ptr<InMemoryDataset>> LoadCsvDataset(Env& env, const std::string& path,
                                                        const CsvOptions& options = {});

// The directory-of-samples format: one file per sample, named `*.hmls`, read in name order.
// Each file is little-endian:
//   bytes 0-3   magic "HMLS"
//   bytes 4-7   uint32 version (1)
//   bytes 8-15  int64 label (>= 0)
//   bytes 16-19 uint32 rank (1..4)
//   then rank x int64 dims (each >= 1), then product(dims) float32 features.
// All samples must have the same dims; num_classes is one more than the largest label.
// Other files in the directory are ignored.
std::string EncodeSampleFile(std::span<const float> features, const Shape& shape, int64_t label);
// Errors name the file: kInvalidArgument for a bad magic/version/rank/dims or a shape that
// differs from the first sample's, kDataLoss for a truncated file; kNotFound for a missing
// directory, kInvalidArgument for one without samples.
Result<std::shared_ptr<InMemoryDataset>> LoadSampleDirectory(Env& env, const std::string& dir);

// --- Data specs (the --data flag of the CLI) ------------------------------------------------

// What a data spec names: the samples to train on (to be split into train/validation) and, when
// the source has one, a separate test set.
struct DataSource {
  std::shared_ptr<const Dataset> all;
  std::shared_ptr<const Dataset> test;  // null when the source has no test part
};

// Opens "fashion-mnist[:DIR]" (train + t10k test; DIR defaults to kFashionMnistDir),
// "csv:PATH" or "dir:PATH" (a sample directory). kInvalidArgument naming the spec for any other
// form; the readers' errors otherwise.
Result<DataSource> OpenDataSpec(Env& env, std::string_view spec);

}  // namespace hml::data

#endif  // HML_SRC_DATA_DATASET_H_
