#include "linkstyle/worlds/fashion.hpp"

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zlib.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using linkstyle::Error;
using linkstyle::FashionMnist;
using linkstyle::testing::ScratchDir;

// ---------------------------------------------------------------------------------------------
// A tiny IDX writer: big-endian dims and data, built byte by byte.

std::string be_bytes(uint64_t value, size_t count) {
  std::string out;
  for (size_t i = count; i-- > 0;) out += static_cast<char>((value >> (8 * i)) & 0xFF);
  return out;
}

std::string idx_header(unsigned char type, const std::vector<uint32_t>& dims) {
  std::string out = "\0\0"s + static_cast<char>(type) + static_cast<char>(dims.size());
  for (const uint32_t dim : dims) out += be_bytes(dim, 4);
  return out;
}

struct IdxDtype {
  unsigned char code;
  c10::ScalarType dtype;
};

const std::vector<IdxDtype> kIdxDtypes = {{0x08, c10::kByte}, {0x09, c10::kChar},  {0x0B, c10::kShort},
                                          {0x0C, c10::kInt},  {0x0D, c10::kFloat}, {0x0E, c10::kDouble}};

// The IDX encoding of `tensor`: each element's bytes in big-endian order.
std::string encode_idx(unsigned char type, const torch::Tensor& tensor) {
  std::vector<uint32_t> dims(tensor.sizes().begin(), tensor.sizes().end());
  std::string out = idx_header(type, dims);
  const torch::Tensor data = tensor.contiguous();
  const size_t width = data.element_size();
  const auto* bytes = static_cast<const unsigned char*>(data.data_ptr());
  for (int64_t i = 0; i < data.numel(); ++i) {
    uint64_t value = 0;
    for (size_t b = 0; b < width; ++b) value |= uint64_t(bytes[i * width + b]) << (8 * b);  // little-endian host
    out += be_bytes(value, width);
  }
  return out;
}

torch::Tensor sample(c10::ScalarType dtype, const std::vector<int64_t>& shape) {
  if (dtype == c10::kFloat || dtype == c10::kDouble) return torch::randn(shape, torch::dtype(dtype)) * 1e3;
  if (dtype == c10::kByte) return torch::randint(0, 256, shape, torch::dtype(dtype));
  if (dtype == c10::kChar) return torch::randint(-128, 128, shape, torch::dtype(dtype));
  if (dtype == c10::kShort) return torch::randint(-32768, 32768, shape, torch::dtype(dtype));
  return torch::randint(-2000000000, 2000000000, shape, torch::dtype(dtype));
}

void write_raw(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// Writes `bytes` gzip-compressed with zlib's own gzip writer.
void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  if (!bytes.empty()) {
    EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), int(bytes.size()));
  }
  ASSERT_EQ(gzclose(file), Z_OK);
}

std::string gzip_bytes(const ScratchDir& dir, const std::string& bytes) {
  const fs::path path = dir / "gzip-scratch.gz";
  write_gzip(path, bytes);
  std::string out = linkstyle::read_file(path);
  fs::remove(path);
  return out;
}

void expect_same(const torch::Tensor& actual, const torch::Tensor& expected) {
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
  EXPECT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(actual.is_contiguous());
  EXPECT_TRUE(torch::equal(actual, expected));
}

// Expects `action` to throw linkstyle::Error with a one-line message naming `path` and `fragment`.
void expect_error(const std::function<void()>& action, const fs::path& path, const std::string& fragment) {
  linkstyle::testing::expect_error(action, {path.string() + ": ", fragment});
}

// ---------------------------------------------------------------------------------------------
// read_idx

TEST(Idx, ReadsHandWrittenBigEndianBytes) {
  ScratchDir dir("idx-hand");
  struct Case {
    std::string name;
    std::string bytes;
    torch::Tensor expected;
  };
  const std::vector<Case> cases = {
      {"uint8", "\0\0\x08\x01\0\0\0\x03\x00\x7f\xff"s, torch::tensor({0, 127, 255}, torch::kByte)},
      {"int8", "\0\0\x09\x01\0\0\0\x03\x00\x7f\xff"s, torch::tensor({0, 127, -1}, torch::kChar)},
      {"int16", "\0\0\x0b\x01\0\0\0\x02\x01\x02\xff\xfe"s, torch::tensor({258, -2}, torch::kShort)},
      {"int32", "\0\0\x0c\x02\0\0\0\x01\0\0\0\x02\x01\x02\x03\x04\xff\xff\xff\xfd"s,
       torch::tensor({16909060, -3}, torch::kInt).reshape({1, 2})},
      {"float32", "\0\0\x0d\x01\0\0\0\x02\x3f\x80\x00\x00\xc0\x49\x0f\xdb"s,
       torch::tensor({1.0f, -3.14159274f}, torch::kFloat)},
      {"float64", "\0\0\x0e\x01\0\0\0\x01\x40\x09\x21\xfb\x54\x44\x2d\x18"s,
       torch::tensor({3.141592653589793}, torch::kDouble)},
      {"scalar", "\0\0\x0b\x00\x80\x00"s, torch::tensor(-32768, torch::kShort)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    write_raw(dir / (c.name + ".idx"), c.bytes);
    expect_same(linkstyle::read_idx(dir / (c.name + ".idx")), c.expected);
    write_gzip(dir / (c.name + ".idx.gz"), c.bytes);
    expect_same(linkstyle::read_idx(dir / (c.name + ".idx.gz")), c.expected);
  }
}

TEST(Idx, RoundTripsEveryDtypeAndShapePlainAndGzip) {
  ScratchDir dir("idx-roundtrip");
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {7}, {2, 3}, {2, 0, 4}, {3, 1, 2, 2}, {50, 28, 28}};
  for (const auto& type : kIdxDtypes) {
    for (const auto& shape : shapes) {
      SCOPED_TRACE(std::string(c10::toString(type.dtype)) + " " + c10::str(c10::IntArrayRef(shape)));
      const torch::Tensor tensor = sample(type.dtype, shape);
      const std::string bytes = encode_idx(type.code, tensor);
      write_raw(dir / "t.idx", bytes);
      expect_same(linkstyle::read_idx(dir / "t.idx"), tensor);
      write_gzip(dir / "t.idx.gz", bytes);
      expect_same(linkstyle::read_idx(dir / "t.idx.gz"), tensor);
    }
  }
}

TEST(Idx, RecognisesGzipByMagicNotName) {
  ScratchDir dir("idx-magic");
  const torch::Tensor tensor = sample(c10::kInt, {4, 5});
  const std::string bytes = encode_idx(0x0C, tensor);
  write_gzip(dir / "compressed.idx", bytes);  // gzip without the .gz name
  write_raw(dir / "plain.gz", bytes);         // plain with a .gz name
  expect_same(linkstyle::read_idx(dir / "compressed.idx"), tensor);
  expect_same(linkstyle::read_idx(dir / "plain.gz"), tensor);
}

TEST(Idx, ReadsConcatenatedGzipMembers) {
  ScratchDir dir("idx-members");
  const torch::Tensor tensor = sample(c10::kShort, {10, 100});
  const std::string bytes = encode_idx(0x0B, tensor);
  // `cat a.gz b.gz` is a valid gzip file holding both contents; split inside the data.
  write_raw(dir / "joined.gz", gzip_bytes(dir, bytes.substr(0, 777)) + gzip_bytes(dir, bytes.substr(777)));
  expect_same(linkstyle::read_idx(dir / "joined.gz"), tensor);
}

TEST(Idx, RejectsBadFiles) {
  ScratchDir dir("idx-bad");
  const std::string good = idx_header(0x0B, {2, 3}) + std::string(12, '\x05');
  const std::string good_gz = gzip_bytes(dir, good);

  std::string bad_crc = good_gz;
  bad_crc[bad_crc.size() - 8] ^= 0x55;  // the trailer: CRC-32, then the length mod 2^32
  std::string bad_method = good_gz;
  bad_method[2] = 7;  // only 8 (deflate) exists
  const std::string big = encode_idx(0x08, sample(c10::kByte, {4000}));
  std::string scrambled = gzip_bytes(dir, big);
  for (size_t i = scrambled.size() / 3; i < scrambled.size() / 3 + 64; ++i) scrambled[i] = '\xff';

  const struct {
    std::string name;
    std::string bytes;
    bool gzip;  // compress `bytes` first
    std::string fragment;
  } cases[] = {
      {"empty", "", false, "shorter than the 4-byte magic"},
      {"short_magic", "\0\0\x08"s, false, "shorter than the 4-byte magic"},
      {"bad_magic", "\x01\x02\x08\x01\0\0\0\x01\x07"s, false, "magic must start with two zero bytes, found 0x01 0x02"},
      {"npy", "\x93NUMPY\x01\x00"s, false, "not an IDX file"},
      {"unknown_type", "\0\0\x0a\x01\0\0\0\x01\x07"s, false, "unknown IDX type byte 0x0a"},
      {"float16_type", "\0\0\x0f\x01\0\0\0\x01\x07\x07"s, false, "unknown IDX type byte 0x0f"},
      {"truncated_dims", idx_header(0x08, {2, 3}).substr(0, 10), false, "truncated IDX header"},
      {"truncated_data", good.substr(0, good.size() - 1), false, "need 12 bytes, the file holds 11"},
      {"no_data", idx_header(0x0C, {4}), false, "need 16 bytes, the file holds 0"},
      {"trailing", good + "xyz", false, "3 unexpected trailing bytes"},
      {"absurd_dims", idx_header(0x08, {65536, 65536}), false, "more than 2^31 elements"},
      {"absurd_many_dims", idx_header(0x08, {2048, 1024, 1024, 2}), false, "more than 2^31 elements"},
      {"absurd_gz", idx_header(0x0E, {4294967295u, 4294967295u, 4294967295u}), true, "more than 2^31 elements"},
      {"gz_truncated_data", good.substr(0, good.size() - 2), true, "the decompressed stream holds 10"},
      {"gz_trailing", good + "!", true, "1 unexpected trailing bytes"},
      {"gz_bad_magic", "\x09\0\x08\x01\0\0\0\x01\x07"s, true, "not an IDX file"},
      {"gz_bad_crc", bad_crc, false, "corrupt gzip stream: incorrect data check"},
      {"gz_bad_method", bad_method, false, "corrupt gzip stream: unknown compression method"},
      {"gz_scrambled", scrambled, false, "corrupt gzip stream"},
      {"gz_cut", good_gz.substr(0, good_gz.size() - 5), false, "corrupt gzip stream: the compressed data ends early"},
      {"gz_only_magic", "\x1f\x8b"s, false, "corrupt gzip stream"},
      {"gz_garbage_after", good_gz + "garbage", false, "corrupt gzip stream: unexpected bytes after the end"},
      {"gz_bad_second_member", good_gz + "\x1f\x8b\x07"s, false, "corrupt gzip stream"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path path = dir / (c.name + ".idx");
    if (c.gzip)
      write_gzip(path, c.bytes);
    else
      write_raw(path, c.bytes);
    expect_error([&] { linkstyle::read_idx(path); }, path, c.fragment);
  }
  expect_error([&] { linkstyle::read_idx(dir / "missing.idx"); }, dir / "missing.idx", "file not found");
  expect_error([&] { linkstyle::read_idx(dir.path()); }, dir.path(), "is a folder");
}

// ---------------------------------------------------------------------------------------------
// FashionMnist on hand-made files

// What load() must make of [N, 28, 28] uint8 images, built from torch ops.
torch::Tensor expected_images(const torch::Tensor& grey) {
  return torch::constant_pad_nd(grey.to(torch::kFloat) / 255.0f, {2, 2, 2, 2}).unsqueeze(1).expand({-1, 3, -1, -1});
}

struct Split {
  torch::Tensor grey;    // [N, 28, 28] uint8
  torch::Tensor labels;  // [N] uint8
};

Split write_split(const ScratchDir& dir, const std::string& prefix, int64_t count, bool gzip = true) {
  Split split{sample(c10::kByte, {count, 28, 28}), torch::randint(0, 10, {count}, torch::kByte)};
  const std::string suffix = gzip ? ".gz" : "";
  const std::string images = encode_idx(0x08, split.grey);
  const std::string labels = encode_idx(0x08, split.labels);
  if (gzip) {
    write_gzip(dir / (prefix + "-images-idx3-ubyte.gz"), images);
    write_gzip(dir / (prefix + "-labels-idx1-ubyte.gz"), labels);
  } else {
    write_raw(dir / (prefix + "-images-idx3-ubyte"), images);
    write_raw(dir / (prefix + "-labels-idx1-ubyte"), labels);
  }
  return split;
}

TEST(Fashion, ClassNamesAndDefaultFolder) {
  const std::vector<std::string> expected = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  EXPECT_EQ(FashionMnist::class_names(), expected);
  EXPECT_EQ(&FashionMnist::class_names(), &FashionMnist::class_names());
  EXPECT_EQ(linkstyle::default_fashion_folder(), fs::path("/usr/share/datasets/fashion-mnist"));
}

TEST(Fashion, LoadsBothSplitsFromAFolder) {
  ScratchDir dir("fashion-splits");
  const Split train = write_split(dir, "train", 7);
  const Split test = write_split(dir, "t10k", 3);
  for (const bool is_train : {true, false}) {
    SCOPED_TRACE(is_train ? "train" : "t10k");
    const Split& split = is_train ? train : test;
    const FashionMnist data = FashionMnist::load(dir.path(), is_train);
    EXPECT_EQ(data.images.scalar_type(), torch::kFloat);
    EXPECT_EQ(data.images.sizes(), (std::vector<int64_t>{split.grey.size(0), 3, 32, 32}));
    EXPECT_TRUE(data.images.is_contiguous());
    EXPECT_TRUE(torch::equal(data.images, expected_images(split.grey)));
    expect_same(data.labels, split.labels.to(torch::kLong));
  }
}

TEST(Fashion, PadsScalesAndReplicatesExactly) {
  ScratchDir dir("fashion-pixels");
  torch::Tensor grey = torch::zeros({1, 28, 28}, torch::kByte);
  grey[0][0][0] = 255;
  grey[0][27][27] = 51;
  grey[0][5][9] = 1;
  write_raw(dir / "t10k-images-idx3-ubyte", encode_idx(0x08, grey));
  write_raw(dir / "t10k-labels-idx1-ubyte", encode_idx(0x08, torch::tensor({9}, torch::kByte)));
  const FashionMnist data = FashionMnist::load(dir.path(), false);
  for (int64_t c = 0; c < 3; ++c) {
    SCOPED_TRACE(c);
    EXPECT_EQ(data.images[0][c][2][2].item<float>(), 1.0f);
    EXPECT_EQ(data.images[0][c][29][29].item<float>(), 0.2f);
    EXPECT_EQ(data.images[0][c][7][11].item<float>(), 1.0f / 255.0f);
    EXPECT_EQ(data.images[0][c].sum().item<float>(), 1.0f + 0.2f + 1.0f / 255.0f);
  }
  EXPECT_EQ(data.labels.item<int64_t>(), 9);
}

TEST(Fashion, PrefersGzipAndFallsBackToUncompressed) {
  ScratchDir dir("fashion-fallback");
  const Split plain = write_split(dir, "t10k", 2, false);
  EXPECT_TRUE(torch::equal(FashionMnist::load(dir.path(), false).images, expected_images(plain.grey)));
  const Split gz = write_split(dir, "t10k", 4, true);
  EXPECT_TRUE(torch::equal(FashionMnist::load(dir.path(), false).images, expected_images(gz.grey)));
}

TEST(Fashion, MissingDataNamesTheDebianPackage) {
  ScratchDir dir("fashion-missing");
  expect_error([&] { FashionMnist::load(dir / "absent"); }, dir / "absent", "dataset-fashion-mnist");
  expect_error([&] { FashionMnist::load(dir / "absent"); }, dir / "absent", "folder not found");
  expect_error([&] { FashionMnist::load(dir.path(), false); }, dir / "t10k-labels-idx1-ubyte.gz",
               "Debian package dataset-fashion-mnist");
  write_gzip(dir / "t10k-labels-idx1-ubyte.gz", encode_idx(0x08, torch::zeros({3}, torch::kByte)));
  expect_error([&] { FashionMnist::load(dir.path(), false); }, dir / "t10k-images-idx3-ubyte.gz",
               "Debian package dataset-fashion-mnist");
}

TEST(Fashion, RejectsInconsistentFiles) {
  ScratchDir dir("fashion-inconsistent");
  const fs::path images = dir / "t10k-images-idx3-ubyte.gz";
  const fs::path labels = dir / "t10k-labels-idx1-ubyte.gz";
  const auto load = [&] { FashionMnist::load(dir.path(), false); };
  const std::string five_images = encode_idx(0x08, sample(c10::kByte, {5, 28, 28}));

  write_gzip(images, five_images);
  write_gzip(labels, encode_idx(0x08, torch::zeros({4}, torch::kByte)));
  expect_error(load, images, "holds 5 images but " + labels.string() + " holds 4 labels");

  write_gzip(labels, encode_idx(0x08, torch::tensor({0, 1, 10, 2, 3}, torch::kByte)));
  expect_error(load, labels, "label 10 at index 2 is outside [0, 10)");

  write_gzip(labels, encode_idx(0x0C, torch::zeros({5}, torch::kInt)));
  expect_error(load, labels, "1-d uint8");

  write_gzip(labels, encode_idx(0x08, torch::zeros({5, 1}, torch::kByte)));
  expect_error(load, labels, "1-d uint8");

  write_gzip(labels, encode_idx(0x08, torch::zeros({5}, torch::kByte)));
  write_gzip(images, encode_idx(0x08, sample(c10::kByte, {5, 27, 28})));
  expect_error(load, images, "N x 28 x 28, found Byte 5 x 27 x 28");

  write_gzip(images, encode_idx(0x08, sample(c10::kByte, {5, 784})));
  expect_error(load, images, "N x 28 x 28");

  write_gzip(images, encode_idx(0x0D, torch::zeros({5, 28, 28})));
  expect_error(load, images, "found Float");

  write_gzip(images, five_images.substr(0, five_images.size() - 100));
  expect_error(load, images, "truncated IDX data");

  write_gzip(images, five_images);
  EXPECT_EQ(FashionMnist::load(dir.path(), false).images.size(0), 5);
}

// ---------------------------------------------------------------------------------------------
// The real data from Debian's dataset-fashion-mnist package (the project installs it).

void require_real_files(const std::string& split) {
  for (const char* kind : {"-images-idx3-ubyte.gz", "-labels-idx1-ubyte.gz"}) {
    const fs::path file = linkstyle::default_fashion_folder() / (split + kind);
    ASSERT_TRUE(fs::is_regular_file(file))
        << file << " is missing: install the Debian package dataset-fashion-mnist "
        << "(tools/ensure-dependencies.sh, or apt-get install dataset-fashion-mnist)";
  }
}

void check_real_split(const FashionMnist& data, int64_t count) {
  ASSERT_EQ(data.images.sizes(), (std::vector<int64_t>{count, 3, 32, 32}));
  ASSERT_EQ(data.labels.sizes(), (std::vector<int64_t>{count}));
  EXPECT_EQ(data.images.scalar_type(), torch::kFloat);
  EXPECT_EQ(data.labels.scalar_type(), torch::kLong);

  // Balanced: count / 10 of every class.
  const torch::Tensor per_class = torch::bincount(data.labels, {}, 10);
  EXPECT_TRUE(torch::equal(per_class, torch::full({10}, count / 10, torch::kLong))) << per_class;

  EXPECT_GE(data.images.min().item<float>(), 0.0f);
  EXPECT_LE(data.images.max().item<float>(), 1.0f);
  EXPECT_EQ(data.images.max().item<float>(), 1.0f);  // some pixel is pure white
  EXPECT_GT(data.images.mean().item<float>(), 0.1f);

  // The 2-pixel border is zero in every image and channel.
  for (const int64_t dim : {2, 3})
    for (const int64_t start : {0, 30})
      EXPECT_EQ(torch::count_nonzero(data.images.slice(dim, start, start + 2)).item<int64_t>(), 0)
          << "dim " << dim << " from " << start;

  // All three channels hold the same grey image.
  EXPECT_TRUE(torch::equal(data.images.select(1, 0), data.images.select(1, 1)));
  EXPECT_TRUE(torch::equal(data.images.select(1, 0), data.images.select(1, 2)));
}

TEST(FashionReal, TestSplit) {
  require_real_files("t10k");
  const FashionMnist data = FashionMnist::load(linkstyle::default_fashion_folder(), false);
  check_real_split(data, 10000);

  // The inner 28x28 is the raw file / 255.
  const torch::Tensor raw = linkstyle::read_idx(linkstyle::default_fashion_folder() / "t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(raw.sizes(), (std::vector<int64_t>{10000, 28, 28}));
  EXPECT_TRUE(torch::equal(data.images.select(1, 0).slice(1, 2, 30).slice(2, 2, 30), raw.to(torch::kFloat) / 255.0f));
  // The first test image is an ankle boot.
  EXPECT_EQ(data.labels[0].item<int64_t>(), 9);
}

TEST(FashionReal, TrainingSplitLoadsQuickly) {
  require_real_files("train");
  const auto start = std::chrono::steady_clock::now();
  const FashionMnist data = FashionMnist::load();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ timing   ] FashionMnist::load() of the 60000 training images took " << seconds << " s\n";
  RecordProperty("load_seconds", std::to_string(seconds));
  check_real_split(data, 60000);
  // Measured well under a second; the generous bound only catches pathological slow-downs.
  EXPECT_LT(seconds, 10.0);
}

}  // namespace
