// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/data/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>

namespace hml::data {
namespace {

int64_t Product(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Status CheckFeatureBuffer(const Dataset& d, std::span<float> out) {
  if (static_cast<int64_t>(out.size()) != d.feature_size()) {
    return InvalidArgumentError("Dataset::Get: buffer holds " + std::to_string(out.size()) +
                                " floats but a sample has " + std::to_string(d.feature_size()));
  }
  return Status::Ok();
}

Status CheckIndex(const Dataset& d, int64_t index) {
  if (index < 0 || index >= d.size()) {
    return OutOfRangeError("Dataset::Get: index " + std::to_string(index) + " outside [0, " +
                           std::to_string(d.size()) + ")");
  }
  return Status::Ok();
}

uint32_t ReadBigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Number of channels normalisation statistics are kept for: C of [C,H,W], D of [D].
int64_t NormChannels(const Shape& shape) { return shape.empty() ? 1 : shape[0]; }

}  // namespace

int64_t Dataset::feature_size() const { return Product(feature_shape()); }

// --- InMemoryDataset ---

Result<std::shared_ptr<InMemoryDataset>> InMemoryDataset::Create(Shape feature_shape,
                                                                 int64_t num_classes,
                                                                 std::vector<float> features,
                                                                 std::vector<int64_t> labels) {
  HML_ASSIGN_OR_RETURN(int64_t per_sample, CheckedNumElements(feature_shape, DType::kFloat32));
  if (feature_shape.empty() || per_sample < 1) {
    return InvalidArgumentError("dataset: feature shape " + ShapeToString(feature_shape) +
                                " is empty");
  }
  if (num_classes < 1) {
    return InvalidArgumentError("dataset: num_classes " + std::to_string(num_classes) + " < 1");
  }
  if (static_cast<int64_t>(features.size()) != per_sample * static_cast<int64_t>(labels.size())) {
    return InvalidArgumentError("dataset: " + std::to_string(features.size()) +
                                " feature values for " + std::to_string(labels.size()) +
                                " samples of shape " + ShapeToString(feature_shape));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return InvalidArgumentError("dataset: sample " + std::to_string(i) + " has label " +
                                  std::to_string(labels[i]) + " outside [0, " +
                                  std::to_string(num_classes) + ")");
    }
  }
  std::shared_ptr<InMemoryDataset> d(new InMemoryDataset());
  d->feature_shape_ = std::move(feature_shape);
  d->num_classes_ = num_classes;
  d->features_ = std::move(features);
  d->labels_ = std::move(labels);
  return d;
}

Result<int64_t> InMemoryDataset::Get(int64_t index, std::span<float> features_out) const {
  HML_RETURN_IF_ERROR(CheckIndex(*this, index));
  HML_RETURN_IF_ERROR(CheckFeatureBuffer(*this, features_out));
  const size_t n = features_out.size();
  std::memcpy(features_out.data(), features_.data() + static_cast<size_t>(index) * n,
              n * sizeof(float));
  return labels_[static_cast<size_t>(index)];
}

// --- SubsetDataset ---

Result<std::shared_ptr<SubsetDataset>> SubsetDataset::Create(std::shared_ptr<const Dataset> base,
                                                             std::vector<int64_t> indices) {
  for (int64_t i : indices) {
    if (i < 0 || i >= base->size()) {
      return OutOfRangeError("subset: index " + std::to_string(i) + " outside [0, " +
                             std::to_string(base->size()) + ")");
    }
  }
  return std::shared_ptr<SubsetDataset>(new SubsetDataset(std::move(base), std::move(indices)));
}

Result<int64_t> SubsetDataset::Get(int64_t index, std::span<float> features_out) const {
  HML_RETURN_IF_ERROR(CheckIndex(*this, index));
  return base_->Get(indices_[static_cast<size_t>(index)], features_out);
}

// --- Normalisation ---

Status Normalization::Validate(const Shape& feature_shape) const {
  const size_t channels = static_cast<size_t>(NormChannels(feature_shape));
  if (mean.size() != stddev.size() || (mean.size() != 1 && mean.size() != channels)) {
    return InvalidArgumentError("normalization: " + std::to_string(mean.size()) + " means and " +
                                std::to_string(stddev.size()) + " stddevs for " +
                                std::to_string(channels) + " channels");
  }
  for (float s : stddev) {
    if (!(s > 0.0f) || !std::isfinite(s)) {
      return InvalidArgumentError("normalization: stddev " + std::to_string(s) + " is not > 0");
    }
  }
  for (float m : mean) {
    if (!std::isfinite(m)) return InvalidArgumentError("normalization: mean is not finite");
  }
  return Status::Ok();
}

Result<Normalization> ComputeNormalization(const Dataset& dataset) {
  if (dataset.size() == 0) return InvalidArgumentError("normalization: the dataset is empty");
  const Shape& shape = dataset.feature_shape();
  const int64_t channels = NormChannels(shape);
  const int64_t per_channel = dataset.feature_size() / channels;
  std::vector<double> sum(static_cast<size_t>(channels), 0.0);
  std::vector<double> sum_sq(static_cast<size_t>(channels), 0.0);
  std::vector<float> sample(static_cast<size_t>(dataset.feature_size()));
  for (int64_t i = 0; i < dataset.size(); ++i) {
    HML_RETURN_IF_ERROR(dataset.Get(i, sample).status());
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t k = 0; k < per_channel; ++k) {
        const double v = sample[static_cast<size_t>(c * per_channel + k)];
        sum[static_cast<size_t>(c)] += v;
        sum_sq[static_cast<size_t>(c)] += v * v;
      }
    }
  }
  Normalization n;
  const double count = static_cast<double>(dataset.size() * per_channel);
  for (int64_t c = 0; c < channels; ++c) {
    const double mean = sum[static_cast<size_t>(c)] / count;
    const double var = std::max(0.0, sum_sq[static_cast<size_t>(c)] / count - mean * mean);
    const double sd = std::sqrt(var);
    n.mean.push_back(static_cast<float>(mean));
    n.stddev.push_back(sd > 1e-12 ? static_cast<float>(sd) : 1.0f);
  }
  return n;
}

Result<std::shared_ptr<NormalizedDataset>> NormalizedDataset::Create(
    std::shared_ptr<const Dataset> base, Normalization normalization) {
  HML_RETURN_IF_ERROR(normalization.Validate(base->feature_shape()));
  return std::shared_ptr<NormalizedDataset>(
      new NormalizedDataset(std::move(base), std::move(normalization)));
}

Result<int64_t> NormalizedDataset::Get(int64_t index, std::span<float> features_out) const {
  HML_ASSIGN_OR_RETURN(int64_t label, base_->Get(index, features_out));
  const int64_t channels = NormChannels(feature_shape());
  const int64_t per_channel = feature_size() / channels;
  for (int64_t c = 0; c < channels; ++c) {
    const size_t k = normalization_.mean.size() == 1 ? 0 : static_cast<size_t>(c);
    const float mean = normalization_.mean[k];
    const float inv = 1.0f / normalization_.stddev[k];
    float* p = features_out.data() + c * per_channel;
    for (int64_t j = 0; j < per_channel; ++j) p[j] = (p[j] - mean) * inv;
  }
  return label;
}

// --- Split, shuffle, augmentation ---

uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  // Rejection sampling: unbiased and the same on every standard library.
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const uint64_t limit = kMax - kMax % n;
  uint64_t r;
  do {
    r = rng();
  } while (r >= limit);
  return r % n;
}

std::vector<int64_t> ShuffledIndices(int64_t n, std::mt19937_64& rng) {
  std::vector<int64_t> idx(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  for (size_t i = idx.size(); i > 1; --i) {
    std::swap(idx[i - 1], idx[UniformIndex(rng, i)]);
  }
  return idx;
}

Result<DatasetSplit> SplitDataset(std::shared_ptr<const Dataset> dataset,
                                  double validation_fraction, uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
    return InvalidArgumentError("split: validation fraction " +
                                std::to_string(validation_fraction) + " outside [0, 1)");
  }
  std::mt19937_64 rng(seed);
  std::vector<int64_t> idx = ShuffledIndices(dataset->size(), rng);
  const auto n_val = static_cast<size_t>(
      std::llround(validation_fraction * static_cast<double>(dataset->size())));
  std::vector<int64_t> val(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n_val));
  std::vector<int64_t> train(idx.begin() + static_cast<std::ptrdiff_t>(n_val), idx.end());
  DatasetSplit split;
  HML_ASSIGN_OR_RETURN(split.train, SubsetDataset::Create(dataset, std::move(train)));
  HML_ASSIGN_OR_RETURN(split.validation, SubsetDataset::Create(dataset, std::move(val)));
  return split;
}

Status AugmentOptions::Validate(const Shape& feature_shape) const {
  if (crop_padding < 0) {
    return InvalidArgumentError("augment: crop padding " + std::to_string(crop_padding) + " < 0");
  }
  if (enabled() && feature_shape.size() != 3) {
    return InvalidArgumentError("augment: crop/flip need [C,H,W] images, features are " +
                                ShapeToString(feature_shape));
  }
  return Status::Ok();
}

void AugmentImage(std::span<float> image, const Shape& chw, const AugmentOptions& options,
                  std::mt19937_64& rng) {
  const int64_t c = chw[0], h = chw[1], w = chw[2];
  if (options.crop_padding > 0) {
    const int64_t p = options.crop_padding;
    // Offsets of the crop window inside the padded image, in [0, 2p].
    const auto window = static_cast<uint64_t>(2 * p + 1);
    const int64_t dy = static_cast<int64_t>(UniformIndex(rng, window)) - p;
    const int64_t dx = static_cast<int64_t>(UniformIndex(rng, window)) - p;
    std::vector<float> src(image.begin(), image.end());
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sy = y + dy, sx = x + dx;
          image[static_cast<size_t>((ch * h + y) * w + x)] =
              (sy >= 0 && sy < h && sx >= 0 && sx < w)
                  ? src[static_cast<size_t>((ch * h + sy) * w + sx)]
                  : 0.0f;
        }
      }
    }
  }
  if (options.horizontal_flip && (rng() & 1u) != 0) {
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t y = 0; y < h; ++y) {
        float* row = image.data() + (ch * h + y) * w;
        std::reverse(row, row + w);
      }
    }
  }
}

// --- gzip ---

Result<std::string> GunzipBytes(std::string_view gzip_bytes, std::string_view name,
                                int64_t max_bytes) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  // 15 + 16: a gzip (not zlib) header.
  if (inflateInit2(&zs, 15 + 16) != Z_OK) {
    return InternalError(std::string(name) + ": zlib inflateInit2 failed");
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gzip_bytes.data()));
  zs.avail_in = static_cast<uInt>(gzip_bytes.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      if (rc == Z_BUF_ERROR) {
        return DataLossError(std::string(name) + ": gzip data is truncated");
      }
      return DataLossError(std::string(name) + ": corrupt gzip data (" + msg + ")");
    }
    const size_t produced = sizeof(buf) - zs.avail_out;
    if (static_cast<int64_t>(out.size() + produced) > max_bytes) {
      inflateEnd(&zs);
      return ResourceExhaustedError(std::string(name) + ": decompresses to more than " +
                                    std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, produced);
    if (rc == Z_OK && zs.avail_in == 0 && produced == 0) {
      inflateEnd(&zs);
      return DataLossError(std::string(name) + ": gzip data is truncated");
    }
  }
  inflateEnd(&zs);
  return out;
}

// --- idx ---

Result<std::shared_ptr<InMemoryDataset>> ParseIdxDataset(std::string_view images,
                                                         std::string_view images_name,
                                                         std::string_view labels,
                                                         std::string_view labels_name,
                                                         int64_t num_classes,
                                                         int64_t expected_rows,
                                                         int64_t expected_cols) {
  const std::string in(images_name), ln(labels_name);
  const auto* ip = reinterpret_cast<const unsigned char*>(images.data());
  const auto* lp = reinterpret_cast<const unsigned char*>(labels.data());
  if (images.size() < 16) {
    return DataLossError(in + ": " + std::to_string(images.size()) +
                         " bytes, shorter than the 16-byte idx3 header");
  }
  if (labels.size() < 8) {
    return DataLossError(ln + ": " + std::to_string(labels.size()) +
                         " bytes, shorter than the 8-byte idx1 header");
  }
  const uint32_t imagic = ReadBigEndian32(ip), lmagic = ReadBigEndian32(lp);
  if (imagic != 0x803) {
    return InvalidArgumentError(in + ": magic " + Hex(imagic) +
                                " is not 0x00000803 (idx3 uint8 images)");
  }
  if (lmagic != 0x801) {
    return InvalidArgumentError(ln + ": magic " + Hex(lmagic) +
                                " is not 0x00000801 (idx1 uint8 labels)");
  }
  const int64_t count = ReadBigEndian32(ip + 4), rows = ReadBigEndian32(ip + 8),
                cols = ReadBigEndian32(ip + 12);
  const int64_t lcount = ReadBigEndian32(lp + 4);
  if ((expected_rows > 0 && rows != expected_rows) ||
      (expected_cols > 0 && cols != expected_cols)) {
    return InvalidArgumentError(in + ": images are " + std::to_string(rows) + "x" +
                                std::to_string(cols) + ", expected " +
                                std::to_string(expected_rows) + "x" +
                                std::to_string(expected_cols));
  }
  if (rows < 1 || cols < 1 || rows > 65536 || cols > 65536) {
    return InvalidArgumentError(in + ": bad image dims " + std::to_string(rows) + "x" +
                                std::to_string(cols));
  }
  if (count != lcount) {
    return InvalidArgumentError(in + " holds " + std::to_string(count) + " images but " + ln +
                                " holds " + std::to_string(lcount) + " labels");
  }
  const int64_t pixels = rows * cols;
  // Checked before allocating: the payload must really be there.
  if (static_cast<int64_t>(images.size()) - 16 < count * pixels) {
    return DataLossError(in + ": truncated: header says " + std::to_string(count) + " images of " +
                         std::to_string(pixels) + " bytes but only " +
                         std::to_string(images.size() - 16) + " bytes follow");
  }
  if (static_cast<int64_t>(labels.size()) - 8 < count) {
    return DataLossError(ln + ": truncated: header says " + std::to_string(count) +
                         " labels but only " + std::to_string(labels.size() - 8) +
                         " bytes follow");
  }
  std::vector<float> features(static_cast<size_t>(count * pixels));
  const unsigned char* px = ip + 16;
  for (size_t i = 0; i < features.size(); ++i) features[i] = static_cast<float>(px[i]) / 255.0f;
  std::vector<int64_t> label_values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    label_values[static_cast<size_t>(i)] = lp[8 + i];
    if (lp[8 + i] >= num_classes) {
      return InvalidArgumentError(ln + ": label " + std::to_string(lp[8 + i]) + " of sample " +
                                  std::to_string(i) + " is not below " +
                                  std::to_string(num_classes));
    }
  }
  return InMemoryDataset::Create({1, rows, cols}, num_classes, std::move(features),
                                 std::move(label_values));
}

Result<std::shared_ptr<InMemoryDataset>> LoadFashionMnist(Env& env, std::string_view dir,
                                                          FashionMnistPart part) {
  const std::string prefix =
      std::string(dir) + (part == FashionMnistPart::kTrain ? "/train" : "/t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = prefix + "-labels-idx1-ubyte.gz";
  HML_ASSIGN_OR_RETURN(std::string images_gz, env.ReadFile(images_path, int64_t{256} << 20));
  HML_ASSIGN_OR_RETURN(std::string labels_gz, env.ReadFile(labels_path, int64_t{16} << 20));
  HML_ASSIGN_OR_RETURN(std::string images, GunzipBytes(images_gz, images_path));
  HML_ASSIGN_OR_RETURN(std::string labels, GunzipBytes(labels_gz, labels_path));
  return ParseIdxDataset(images, images_path, labels, labels_path, 10, 28, 28);
}

// --- CSV ---

namespace {

std::vector<std::string_view> SplitFields(std::string_view line, char delimiter) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (true) {
    const size_t pos = line.find(delimiter, start);
    if (pos == std::string_view::npos) {
      fields.push_back(line.substr(start));
      break;
    }
    fields.push_back(line.substr(start, pos - start));
    start = pos + 1;
  }
  for (std::string_view& f : fields) {
    while (!f.empty() && (f.front() == ' ' || f.front() == '\t')) f.remove_prefix(1);
    while (!f.empty() && (f.back() == ' ' || f.back() == '\t' || f.back() == '\r')) {
      f.remove_suffix(1);
    }
  }
  return fields;
}

}  // namespace

Result<std::shared_ptr<InMemoryDataset>> ParseCsvDataset(std::string_view text,
                                                         std::string_view name,
                                                         const CsvOptions& options) {
  const std::string n(name);
  std::vector<float> features;
  std::vector<int64_t> labels;
  size_t columns = 0;
  size_t label_col = 0;
  int64_t line_no = 0;
  size_t pos = 0;
  bool header_pending = options.has_header;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      if (end == text.size()) break;
      continue;
    }
    const std::vector<std::string_view> fields = SplitFields(line, options.delimiter);
    if (columns == 0) {
      columns = fields.size();
      if (columns < 2) {
        return InvalidArgumentError(n + ":" + std::to_string(line_no) + ": " +
                                    std::to_string(columns) +
                                    " column(s); need at least one feature and a label");
      }
      const int64_t lc = options.label_column < 0
                             ? static_cast<int64_t>(columns) + options.label_column
                             : options.label_column;
      if (lc < 0 || lc >= static_cast<int64_t>(columns)) {
        return InvalidArgumentError(n + ": label column " + std::to_string(options.label_column) +
                                    " outside the " + std::to_string(columns) + " columns");
      }
      label_col = static_cast<size_t>(lc);
    } else if (fields.size() != columns) {
      return InvalidArgumentError(n + ":" + std::to_string(line_no) + ": " +
                                  std::to_string(fields.size()) + " columns, expected " +
                                  std::to_string(columns));
    }
    if (header_pending) {
      header_pending = false;
      if (end == text.size()) break;
      continue;
    }
    for (size_t c = 0; c < fields.size(); ++c) {
      const std::string_view f = fields[c];
      const std::string where =
          n + ":" + std::to_string(line_no) + " column " + std::to_string(c + 1) + ": ";
      if (c == label_col) {
        int64_t label = 0;
        auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), label);
        if (ec != std::errc() || ptr != f.data() + f.size() || f.empty()) {
          return InvalidArgumentError(where + "label '" + std::string(f) +
                                      "' is not an integer");
        }
        if (label < 0 || (options.num_classes > 0 && label >= options.num_classes)) {
          return InvalidArgumentError(where + "label " + std::to_string(label) + " outside [0, " +
                                      (options.num_classes > 0
                                           ? std::to_string(options.num_classes)
                                           : std::string("inf")) +
                                      ")");
        }
        labels.push_back(label);
      } else {
        float v = 0.0f;
        auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
        if (ec != std::errc() || ptr != f.data() + f.size() || f.empty() || !std::isfinite(v)) {
          return InvalidArgumentError(where + "'" + std::string(f) + "' is not a finite number");
        }
        features.push_back(v);
      }
    }
    if (end == text.size()) break;
  }
  if (labels.empty()) return InvalidArgumentError(n + ": no data rows");
  int64_t num_classes = options.num_classes;
  if (num_classes <= 0) num_classes = *std::max_element(labels.begin(), labels.end()) + 1;
  return InMemoryDataset::Create({static_cast<int64_t>(columns - 1)}, num_classes,
                                 std::move(features), std::move(labels));
}

Result<std::shared_ptr<InMemoryDataset>> LoadCsvDataset(Env& env, const std::string& path,
                                                        const CsvOptions& options) {
  HML_ASSIGN_OR_RETURN(std::string text, env.ReadFile(path, int64_t{1} << 30));
  return ParseCsvDataset(text, path, options);
}

// --- Directory of samples ---

namespace {

constexpr char kSampleMagic[4] = {'H', 'M', 'L', 'S'};
constexpr uint32_t kSampleVersion = 1;

template <typename T>
void AppendLE(std::string& out, T v) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // hosts we build for are little-endian
  out.append(reinterpret_cast<const char*>(b), sizeof(T));
}

template <typename T>
T ReadLE(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::string EncodeSampleFile(std::span<const float> features, const Shape& shape, int64_t label) {
  std::string out(kSampleMagic, 4);
  AppendLE<uint32_t>(out, kSampleVersion);
  AppendLE<int64_t>(out, label);
  AppendLE<uint32_t>(out, static_cast<uint32_t>(shape.size()));
  for (int64_t d : shape) AppendLE<int64_t>(out, d);
  for (float f : features) AppendLE<float>(out, f);
  return out;
}

Result<std::shared_ptr<InMemoryDataset>> LoadSampleDirectory(Env& env, const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFoundError("sample directory '" + dir + "' does not exist");
  }
  // Env has no directory listing; std::filesystem lists, Env reads.
  std::vector<std::string> files;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->path().extension() == ".hmls") files.push_back(it->path().string());
  }
  if (ec) return InvalidArgumentError("sample directory '" + dir + "': " + ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return InvalidArgumentError("sample directory '" + dir + "' holds no *.hmls files");
  }
  Shape shape;
  std::vector<float> features;
  std::vector<int64_t> labels;
  for (const std::string& path : files) {
    HML_ASSIGN_OR_RETURN(std::string bytes, env.ReadFile(path, int64_t{1} << 30));
    if (bytes.size() < 20) return DataLossError(path + ": truncated header");
    if (std::memcmp(bytes.data(), kSampleMagic, 4) != 0) {
      return InvalidArgumentError(path + ": bad magic (not an HMLS sample)");
    }
    const uint32_t version = ReadLE<uint32_t>(bytes.data() + 4);
    if (version != kSampleVersion) {
      return InvalidArgumentError(path + ": unsupported version " + std::to_string(version));
    }
    const int64_t label = ReadLE<int64_t>(bytes.data() + 8);
    const uint32_t rank = ReadLE<uint32_t>(bytes.data() + 16);
    if (label < 0) return InvalidArgumentError(path + ": negative label " + std::to_string(label));
    if (rank < 1 || rank > 4) {
      return InvalidArgumentError(path + ": rank " + std::to_string(rank) + " outside [1, 4]");
    }
    if (bytes.size() < 20 + 8 * size_t{rank}) return DataLossError(path + ": truncated dims");
    Shape s;
    for (uint32_t i = 0; i < rank; ++i) {
      const int64_t d = ReadLE<int64_t>(bytes.data() + 20 + 8 * i);
      if (d < 1) return InvalidArgumentError(path + ": dim " + std::to_string(d) + " < 1");
      s.push_back(d);
    }
    auto elems = CheckedNumElements(s, DType::kFloat32);
    if (!elems.ok()) return elems.status().WithContext(path);
    if (shape.empty()) {
      shape = s;
    } else if (s != shape) {
      return InvalidArgumentError(path + ": shape " + ShapeToString(s) +
                                  " differs from the first sample's " + ShapeToString(shape));
    }
    const size_t offset = 20 + 8 * size_t{rank};
    const size_t need = offset + static_cast<size_t>(*elems) * sizeof(float);
    if (bytes.size() < need) {
      return DataLossError(path + ": truncated: " + std::to_string(bytes.size()) +
                           " bytes, need " + std::to_string(need));
    }
    for (int64_t i = 0; i < *elems; ++i) {
      features.push_back(ReadLE<float>(bytes.data() + offset + 4 * static_cast<size_t>(i)));
    }
    labels.push_back(label);
  }
  const int64_t num_classes = *std::max_element(labels.begin(), labels.end()) + 1;
  return InMemoryDataset::Create(shape, num_classes, std::move(features), std::move(labels));
}

Result<DataSource> OpenDataSpec(Env& env, std::string_view spec) {
  DataSource d;
  const size_t colon = spec.find(':');
  const std::string_view kind = spec.substr(0, colon);
  const std::string arg(colon == std::string_view::npos ? "" : spec.substr(colon + 1));
  if (kind == "fashion-mnist") {
    const std::string dir = arg.empty() ? std::string(kFashionMnistDir) : arg;
    HML_ASSIGN_OR_RETURN(d.all, LoadFashionMnist(env, dir, FashionMnistPart::kTrain));
    HML_ASSIGN_OR_RETURN(d.test, LoadFashionMnist(env, dir, FashionMnistPart::kTest));
  } else if (kind == "csv" && !arg.empty()) {
    HML_ASSIGN_OR_RETURN(d.all, LoadCsvDataset(env, arg));
  } else if (kind == "dir" && !arg.empty()) {
    HML_ASSIGN_OR_RETURN(d.all, LoadSampleDirectory(env, arg));
  } else {
    return InvalidArgumentError("data '" + std::string(spec) +
                                "': expected fashion-mnist[:DIR], csv:PATH or dir:PATH");
  }
  return d;
}

}  // namespace hml::data
