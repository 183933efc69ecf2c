#include "linkstyle/tensor_io.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using linkstyle::Error;
using linkstyle::testing::ScratchDir;

// The six dtypes of the contract plus int8, which both formats also carry.
const std::vector<c10::ScalarType> kAllDtypes = {c10::kFloat, c10::kDouble, c10::kLong, c10::kInt,
                                                 c10::kByte,  c10::kBool,   c10::kChar};
// The 16-d shape makes numpy's header cross a 64-byte boundary only with its growth padding.
const std::vector<std::vector<int64_t>> kShapes = {
    {}, {0}, {5}, {2, 3}, {2, 0, 4}, {3, 1, 2, 2}, {1000}, {1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1}};

torch::Tensor sample(c10::ScalarType dtype, const std::vector<int64_t>& shape) {
  if (dtype == c10::kBool) return torch::randint(0, 2, shape) > 0;
  if (dtype == c10::kFloat || dtype == c10::kDouble) return torch::randn(shape, torch::dtype(dtype));
  if (dtype == c10::kByte) return torch::randint(0, 256, shape, torch::dtype(dtype));
  if (dtype == c10::kChar) return torch::randint(-128, 128, shape, torch::dtype(dtype));
  return torch::randint(-1000000, 1000000, shape, torch::dtype(dtype));
}

void expect_same(const torch::Tensor& actual, const torch::Tensor& expected) {
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
  EXPECT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::equal(actual, expected));
}

// Expects `action` to throw linkstyle::Error with a one-line message naming `path` and `fragment`.
void expect_error(const std::function<void()>& action, const fs::path& path, const std::string& fragment) {
  linkstyle::testing::expect_error(action, {path.string(), fragment});
}

void write_raw(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string le_bytes(uint64_t value, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
  return out;
}

// An npy file with a hand-written header dict (unpadded; readers must not rely on alignment).
std::string make_npy(const std::string& dict, const std::string& data, int major = 1) {
  const std::string text = dict + "\n";
  return "\x93NUMPY"s + static_cast<char>(major) + '\0' + le_bytes(text.size(), major == 1 ? 2 : 4) + text + data;
}

// A safetensors file with a hand-written JSON header.
std::string make_safetensors(const std::string& header, const std::string& buffer) {
  return le_bytes(header.size(), 8) + header + buffer;
}

std::vector<std::string> folder_entries(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? "'\\''"s : std::string(1, c);
  return out + "'";
}

// ---------------------------------------------------------------------------------------------
// npy

TEST(Npy, HeaderMatchesNumpyByteForByte) {
  const std::string bytes = linkstyle::encode_npy(torch::zeros({2, 3}));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string expected = "\x93NUMPY\x01\x00v\x00"s + dict + std::string(128 - 10 - dict.size() - 1, ' ') + "\n";
  ASSERT_EQ(bytes.size(), 128u + 6 * 4);
  EXPECT_EQ(bytes.substr(0, 128), expected);
  EXPECT_EQ(bytes.substr(128), std::string(24, '\0'));
}

TEST(Npy, ShapeSpellingForScalarsAndVectors) {
  EXPECT_NE(linkstyle::encode_npy(torch::tensor(1.5)).find("'shape': (), }"), std::string::npos);
  EXPECT_NE(linkstyle::encode_npy(torch::zeros({7}, torch::kLong))
                .find("'descr': '<i8', 'fortran_order': False, "
                      "'shape': (7,), }"),
            std::string::npos);
  EXPECT_NE(linkstyle::encode_npy(torch::zeros({1}, torch::kBool)).find("'|b1'"), std::string::npos);
}

TEST(Npy, RoundTripsEveryDtypeAndShape) {
  ScratchDir dir("npy-roundtrip");
  for (const auto dtype : kAllDtypes) {
    for (const auto& shape : kShapes) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + " " + c10::str(c10::IntArrayRef(shape)));
      const torch::Tensor tensor = sample(dtype, shape);
      const fs::path path = dir / "t.npy";
      linkstyle::write_npy(path, tensor);
      EXPECT_EQ(linkstyle::read_file(path), linkstyle::encode_npy(tensor));
      expect_same(linkstyle::read_npy(path), tensor);

      const linkstyle::NpyHeader header = linkstyle::read_npy_header(path);
      EXPECT_EQ(header.dtype, dtype);
      EXPECT_EQ(header.shape, shape);
      EXPECT_EQ(header.data_offset % 64, 0u);
      EXPECT_EQ(header.data_offset + tensor.nbytes(), fs::file_size(path));

      linkstyle::MappedNpy mapped(path);
      expect_same(mapped.tensor(), tensor);
    }
  }
}

TEST(Npy, WritesNonContiguousTensorsInCOrder) {
  ScratchDir dir("npy-strided");
  const torch::Tensor tensor = torch::arange(12, torch::kInt).reshape({3, 4}).t();
  linkstyle::write_npy(dir / "t.npy", tensor);
  expect_same(linkstyle::read_npy(dir / "t.npy"), tensor.contiguous());
  EXPECT_EQ(linkstyle::read_npy(dir / "t.npy")[0][1].item<int>(), 4);
}

TEST(Npy, ReadsVersions2And3AndUnalignedHeaders) {
  ScratchDir dir("npy-versions");
  const torch::Tensor tensor = torch::arange(6, torch::kDouble).reshape({3, 2});
  const std::string data = linkstyle::encode_npy(tensor).substr(128);
  for (const int major : {1, 2, 3}) {
    const fs::path path = dir / ("v" + std::to_string(major) + ".npy");
    write_raw(path, make_npy("{'shape':(3,2),'fortran_order':False,'descr':'<f8'}", data, major));
    expect_same(linkstyle::read_npy(path), tensor);
    linkstyle::MappedNpy mapped(path);
    expect_same(mapped.tensor(), tensor);
  }
}

TEST(Npy, HugeHeaderUsesVersion2) {
  // Enough dimensions that the header no longer fits a 16-bit length.
  const torch::Tensor tensor = torch::zeros(std::vector<int64_t>(22000, 1), torch::kByte);
  const std::string bytes = linkstyle::encode_npy(tensor);
  EXPECT_EQ(bytes.substr(6, 2), "\x02\x00"s);
  ScratchDir dir("npy-v2");
  write_raw(dir / "t.npy", bytes);
  EXPECT_EQ(linkstyle::read_npy_header(dir / "t.npy").data_offset % 64, 0u);
  EXPECT_EQ(linkstyle::read_npy(dir / "t.npy").dim(), 22000);
}

TEST(Npy, ReadHeaderReadsOnlyTheHeader) {
  ScratchDir dir("npy-header");
  const fs::path path = dir / "t.npy";
  linkstyle::write_npy(path, torch::ones({4, 5}, torch::kInt));
  const linkstyle::NpyHeader header = linkstyle::read_npy_header(path);
  EXPECT_EQ(header.dtype, c10::kInt);
  EXPECT_EQ(header.shape, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(header.data_offset, 128u);
}

TEST(Npy, RejectsCorruptFiles) {
  ScratchDir dir("npy-corrupt");
  const std::string f4x2 = std::string(8, '\0');
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const struct {
    std::string name;
    std::string bytes;
    std::string fragment;
  } cases[] = {
      {"empty", "", "not an npy file"},
      {"bad_magic", "\x93NUMPZ\x01\x00"s + le_bytes(2, 2) + "{}", "not an npy file"},
      {"short_prefix", "\x93NUMPY\x01"s, "not an npy file"},
      {"no_length", "\x93NUMPY\x02\x00\x10\x00"s, "truncated npy header"},
      {"version_4", make_npy(good, f4x2, 4), "unsupported npy format version 4.0"},
      {"version_1_1", "\x93NUMPY\x01\x01"s + le_bytes(2, 2) + "{}", "unsupported npy format version 1.1"},
      {"header_cut", make_npy(good, "").substr(0, 30), "truncated npy header"},
      {"fortran", make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", f4x2), "fortran_order"},
      {"big_endian", make_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f4x2), "big-endian"},
      {"complex", make_npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f4x2),
       "unsupported npy dtype '<c8'"},
      {"object", make_npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", f4x2), "unsupported npy dtype"},
      {"no_brace", make_npy("'descr': '<f4', 'fortran_order': False, 'shape': (2,)", f4x2), "malformed npy header"},
      {"unclosed", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", f4x2), "malformed npy header"},
      {"missing_key", make_npy("{'descr': '<f4', 'shape': (2,), }", f4x2), "malformed npy header"},
      {"extra_key", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", f4x2),
       "malformed npy header"},
      {"repeated_key", make_npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", f4x2),
       "malformed npy header"},
      {"bad_bool", make_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", f4x2), "malformed npy header"},
      {"negative", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", f4x2),
       "malformed npy header"},
      {"not_tuple", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", f4x2), "malformed npy header"},
      {"junk_after", make_npy(good + " x", f4x2), "malformed npy header"},
      {"huge_dim", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", f4x2),
       "malformed npy header"},
      {"overflow", make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", f4x2),
       "too large"},
      {"truncated", make_npy(good, f4x2.substr(0, 7)), "truncated npy data"},
      {"trailing", make_npy(good, f4x2 + "x"), "trailing bytes"},
      {"bad_bool_byte", make_npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", "\x01\x02"s),
       "bool data"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path path = dir / (c.name + ".npy");
    write_raw(path, c.bytes);
    expect_error([&] { linkstyle::read_npy(path); }, path, c.fragment);
    expect_error([&] { linkstyle::MappedNpy mapped(path); }, path, c.fragment);
    if (c.name != "bad_bool_byte")  // the header alone is fine there
      expect_error([&] { linkstyle::read_npy_header(path); }, path, c.fragment);
  }
  expect_error([&] { linkstyle::read_npy(dir / "missing.npy"); }, dir / "missing.npy", "not found");
  expect_error([&] { linkstyle::read_npy_header(dir / "missing.npy"); }, dir / "missing.npy", "not found");
  expect_error([&] { linkstyle::MappedNpy mapped(dir / "missing.npy"); }, dir / "missing.npy", "not found");
  expect_error([&] { linkstyle::read_npy_header(dir.path()); }, dir.path(), "folder");
}

// ---------------------------------------------------------------------------------------------
// safetensors

TEST(Safetensors, RoundTripsEveryDtypeAndShapeWithMetadata) {
  ScratchDir dir("st-roundtrip");
  linkstyle::TensorMap tensors;
  for (const auto dtype : kAllDtypes)
    for (size_t i = 0; i < kShapes.size(); ++i)
      tensors[std::string(c10::toString(dtype)) + "." + std::to_string(i)] = sample(dtype, kShapes[i]);
  tensors["strided"] = torch::arange(12, torch::kLong).reshape({3, 4}).t();
  const linkstyle::MetadataMap metadata = {{"format", "pt"}, {"note", "quotes \" and\nnewlines"}, {"empty", ""}};
  const fs::path path = dir / "t.safetensors";
  linkstyle::write_safetensors(path, tensors, metadata);

  const linkstyle::SafetensorsContent content = linkstyle::read_safetensors(path);
  EXPECT_EQ(content.metadata, metadata);
  ASSERT_EQ(content.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_EQ(content.tensors.count(name), 1u);
    expect_same(content.tensors.at(name), tensor);
  }

  // Layout: 8-byte length, space-padded JSON of a multiple of 8 bytes, buffer in name order.
  const std::string bytes = linkstyle::read_file(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    EXPECT_EQ(header[name]["data_offsets"][0].get<uint64_t>(), offset) << name;
    offset += tensor.nbytes();
  }
  EXPECT_EQ(bytes.size(), 8 + header_size + offset);
}

TEST(Safetensors, RoundTripsEmptyFile) {
  ScratchDir dir("st-empty");
  linkstyle::write_safetensors(dir / "e.safetensors", {});
  const auto content = linkstyle::read_safetensors(dir / "e.safetensors");
  EXPECT_TRUE(content.tensors.empty());
  EXPECT_TRUE(content.metadata.empty());
}

TEST(Safetensors, RejectsCorruptFiles) {
  ScratchDir dir("st-corrupt");
  const std::string data8(8, '\x01');
  const std::string ok = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  const struct {
    std::string name;
    std::string bytes;
    std::string fragment;
  } cases[] = {
      {"tiny", "\x01\x02", "not a safetensors file"},
      {"huge_length", le_bytes(1ull << 40, 8) + "{}", "exceeds the file size"},
      {"length_past_end", le_bytes(100, 8) + "{}", "exceeds the file size"},
      {"bad_json", make_safetensors("{\"a\": ", data8), "not valid JSON"},
      {"not_object", make_safetensors("[1, 2]", ""), "not a JSON object"},
      {"entry_not_object", make_safetensors(R"({"a": 3})", ""), "not a JSON object"},
      {"no_dtype", make_safetensors(R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", data8), "needs"},
      {"no_shape", make_safetensors(R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", data8), "needs"},
      {"no_offsets", make_safetensors(R"({"a": {"dtype": "F32", "shape": [2]}})", data8), "needs"},
      {"bad_dtype", make_safetensors(R"({"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]}})", data8),
       "unsupported dtype \"F16\""},
      {"negative_dim", make_safetensors(R"({"a": {"dtype": "U8", "shape": [-8], "data_offsets": [0, 8]}})", data8),
       "non-negative"},
      {"float_offset", make_safetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8.0]}})", data8),
       "data_offsets"},
      {"reversed", make_safetensors(R"({"a": {"dtype": "U8", "shape": [0], "data_offsets": [8, 0]}})", data8),
       "end before"},
      {"size_mismatch", make_safetensors(R"({"a": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}})", data8),
       "shape needs 16"},
      {"truncated", make_safetensors(ok, data8.substr(0, 5)), "past the 5-byte buffer"},
      {"trailing", make_safetensors(ok, data8 + "xyz"), "trailing bytes"},
      {"overlap",
       make_safetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                       "b": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}})",
                        data8),
       "overlaps"},
      {"gap", make_safetensors(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}})", data8),
       "unused bytes"},
      {"metadata_number", make_safetensors(R"({"__metadata__": {"k": 1}})", ""), "metadata \"k\" is not a string"},
      {"metadata_list", make_safetensors(R"({"__metadata__": ["k"]})", ""), "__metadata__"},
      {"bad_bool", make_safetensors(R"({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})", "\x01\x07"),
       "bool data"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path path = dir / (c.name + ".safetensors");
    write_raw(path, c.bytes);
    expect_error([&] { linkstyle::read_safetensors(path); }, path, c.fragment);
  }
  expect_error([&] { linkstyle::read_safetensors(dir / "missing"); }, dir / "missing", "not found");
}

// ---------------------------------------------------------------------------------------------
// Writing failures

TEST(TensorIo, UnwritableTargetsThrowAndLeaveNoFiles) {
  ScratchDir dir("io-unwritable");
  write_raw(dir / "blocker", "x");
  fs::create_directory(dir / "folder");
  const torch::Tensor tensor = torch::ones({3});
  for (const fs::path& target : {dir / "blocker" / "t.out", dir / "folder"}) {
    SCOPED_TRACE(target.string());
    EXPECT_THROW(linkstyle::write_npy(target, tensor), Error);
    EXPECT_THROW(linkstyle::write_safetensors(target, {{"t", tensor}}), Error);
  }
  EXPECT_EQ(folder_entries(dir.path()), (std::vector<std::string>{"blocker", "folder"}));
  EXPECT_TRUE(fs::is_empty(dir / "folder"));

  // Unsupported dtypes fail before anything is created.
  expect_error([&] { linkstyle::write_npy(dir / "h.npy", tensor.to(torch::kHalf)); }, dir / "h.npy",
               "unsupported dtype");
  expect_error(
      [&] {
        linkstyle::write_safetensors(dir / "h.st", {{"h", tensor.to(torch::kHalf)}});
      },
      dir / "h.st", "unsupported dtype");
  expect_error(
      [&] {
        linkstyle::write_safetensors(dir / "m.st", {{"__metadata__", tensor}});
      },
      dir / "m.st", "reserved");
  EXPECT_EQ(folder_entries(dir.path()), (std::vector<std::string>{"blocker", "folder"}));
}

TEST(TensorIo, NumpyReadsOurFiles) {
  ScratchDir dir("io-numpy");

  // numpy.load each file and save it again: identical bytes prove numpy read the same dtype, shape
  // and values, and that our header is the one numpy writes.
  std::vector<std::pair<fs::path, torch::Tensor>> npy_files;
  for (const auto dtype : kAllDtypes)
    for (const auto& shape : kShapes) {
      const fs::path path = dir / ("a" + std::to_string(npy_files.size()) + ".npy");
      npy_files.emplace_back(path, sample(dtype, shape));
      linkstyle::write_npy(path, npy_files.back().second);
    }
  const auto npy_run = linkstyle::testing::run_command(
      "/usr/bin/python3 -c 'import numpy, sys\n"
      "for p in sys.argv[1:]: numpy.save(p + \".again.npy\", numpy.load(p))' " +
      [&] {
        std::string args;
        for (const auto& [path, tensor] : npy_files) args += " " + shell_quote(path.string());
        return args;
      }());
  ASSERT_EQ(npy_run.exit_code, 0) << npy_run.output;
  for (const auto& [path, tensor] : npy_files)
    EXPECT_EQ(linkstyle::read_file(path.string() + ".again.npy"), linkstyle::read_file(path)) << path;

  // A minimal safetensors reader in Python saves every tensor as .npy; compare with our encoding.
  linkstyle::TensorMap tensors;
  for (const auto dtype : kAllDtypes)
    for (size_t i = 0; i < kShapes.size(); ++i)
      tensors[std::string(c10::toString(dtype)) + std::to_string(i)] = sample(dtype, kShapes[i]);
  const fs::path st_path = dir / "t.safetensors";
  linkstyle::write_safetensors(st_path, tensors, {{"format", "pt"}, {"source", "linkstyle"}});
  const std::string reader = R"(
import json, struct, sys, numpy
out = sys.argv[2]
data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n])
assert header.pop("__metadata__") == {"format": "pt", "source": "linkstyle"}
types = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "|u1", "BOOL": "|b1", "I8": "|i1"}
buffer = data[8 + n:]
for name, info in header.items():
    begin, end = info["data_offsets"]
    array = numpy.frombuffer(buffer[begin:end], dtype=types[info["dtype"]]).reshape(info["shape"])
    numpy.save(out + "/" + name + ".npy", array)
print(len(header))
)";
  fs::create_directory(dir / "st");
  const auto st_run =
      linkstyle::testing::run_command("/usr/bin/python3 -c " + shell_quote(reader) + " " +
                                      shell_quote(st_path.string()) + " " + shell_quote((dir / "st").string()));
  ASSERT_EQ(st_run.exit_code, 0) << st_run.output;
  EXPECT_EQ(st_run.output, std::to_string(tensors.size()) + "\n");
  for (const auto& [name, tensor] : tensors)
    EXPECT_EQ(linkstyle::read_file(dir / "st" / (name + ".npy")), linkstyle::encode_npy(tensor)) << name;
}

}  // namespace
