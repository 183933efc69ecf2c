// Writes the fuzz targets' seed inputs into <folder>/<target>/seed-<what>: valid files made by
// the project's own writers (write_npy, write_safetensors, write_study, PairsManifest::save) and
// small IDX files, plain and gzip-compressed. Usage: make_seeds <folder>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include <torch/torch.h>
#include <zlib.h>

#include "linkstyle/pairs.hpp"
#include "linkstyle/study.hpp"
#include "linkstyle/tensor_io.hpp"

using namespace linkstyle;
namespace fs = std::filesystem;

namespace {

fs::path out_folder;

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void seed(const std::string& target, const std::string& what, const std::string& bytes) {
  fs::create_directories(out_folder / target);
  std::ofstream(out_folder / target / ("seed-" + what), std::ios::binary) << bytes;
}

std::string gzip(const std::string& bytes) {
  z_stream stream{};
  deflateInit2(&stream, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, bytes.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// Small tensors of every supported dtype and a few shapes.
std::vector<std::pair<std::string, torch::Tensor>> sample_tensors() {
  return {{"f32-2x3", torch::arange(6, torch::kFloat).reshape({2, 3})},
          {"f64-4", torch::linspace(-1, 1, 4, torch::kDouble)},
          {"i64-scalar", torch::tensor(int64_t(-7))},
          {"i32-2x1x2", torch::arange(4, torch::kInt).reshape({2, 1, 2})},
          {"u8-3", torch::tensor({0, 128, 255}, torch::kByte)},
          {"bool-2", torch::tensor({true, false})},
          {"i8-empty", torch::empty({0, 3}, torch::kChar)}};
}

void npy_seeds() {
  for (const auto& [what, tensor] : sample_tensors()) seed("npy", what, encode_npy(tensor));
  // Format 3.0 (4-byte header length), as numpy writes for non-latin-1 headers.
  const std::string v1 = encode_npy(torch::arange(3, torch::kFloat));
  const size_t length = static_cast<unsigned char>(v1[8]) | static_cast<unsigned char>(v1[9]) << 8;
  std::string v3 = v1.substr(0, 6) + std::string("\x03\x00", 2);
  for (int i = 0; i < 4; ++i) v3 += static_cast<char>((length >> (8 * i)) & 0xFF);
  seed("npy", "f32-3-v3", v3 + v1.substr(10));
}

void safetensors_seeds() {
  const fs::path file = out_folder / "scratch.safetensors";
  TensorMap all;
  for (const auto& [what, tensor] : sample_tensors()) {
    write_safetensors(file, {{what, tensor}});
    seed("safetensors", what, read_bytes(file));
    all[what] = tensor;
  }
  write_safetensors(file, all, {{"format", "pt"}, {"note", "seed"}});
  seed("safetensors", "all-with-metadata", read_bytes(file));
  write_safetensors(file, {});
  seed("safetensors", "empty", read_bytes(file));
  fs::remove(file);
}

void study_seeds() {
  const fs::path folder = out_folder / "scratch-study";
  StudyConfig config;
  config.folder = folder;
  config.classifier = folder / "models" / "classifier.pt";
  config.generator = folder / "models" / "generator.pt";
  write_study(config);  // as `linkstyle init` writes it
  seed("study", "default", read_bytes(config.config_file()));
  config.segmenter = "/opt/models/segmenter.pt";
  config.pairs.classes = {0, 2, 5};
  config.pairs.classifier_classes = {1, 3, 4};
  config.fit.method = "ridge";
  config.fit.penalty = 0.25;
  config.sweep.units = {3, 1, 4};
  config.sweep.parts = "segmenter";
  write_study(config);
  seed("study", "segmenter-classes-ridge", read_bytes(config.config_file()));
  seed("study", "minimal", "[models]\nclassifier = \"c.pt\"\ngenerator = 'g.pt'\n");
  fs::remove_all(folder);
}

void pairs_seeds() {
  PairsManifest manifest;
  manifest.folder = out_folder / "scratch-pairs";
  fs::create_directories(manifest.folder);
  manifest.models = {{"classifier", {{"file", "/m/classifier.pt"}, {"fingerprint", "1234:abcd"}}},
                     {"generator", {{"file", "/m/generator.pt"}, {"fingerprint", "5678:ef01"}}}};
  manifest.settings = {{"seed", 0}, {"psi", 0.7}, {"batch_size", 32}, {"classes", {0, 1}}};
  manifest.feature_dim = 16;
  manifest.latent_dim = 8;
  manifest.statistics_holdout_fraction = 0.1;
  manifest.save();
  seed("pairs", "fresh", read_bytes(manifest.file()));
  manifest.shards.push_back({"r-00000.npy", "w-00000.npy", "class-00000.npy", "latent-00000.npy", 64, 0});
  manifest.shards.push_back({"r-00001.npy", "w-00001.npy", "class-00001.npy", "latent-00001.npy", 10, 64});
  manifest.classes.push_back({0, 0, "circle", 3, 96, 40, true});
  manifest.classes.push_back({1, 2, "square", 2, 64, 34, false});
  manifest.total_rows = 74;
  manifest.statistics = "stats-00001.safetensors";
  manifest.complete = true;
  manifest.save();
  seed("pairs", "complete", read_bytes(manifest.file()));
  fs::remove_all(manifest.folder);
}

// An IDX file: magic (0, 0, type, rank), big-endian uint32 dims, then `data` (already big-endian).
std::string idx(unsigned char type, const std::vector<uint32_t>& dims, const std::string& data) {
  std::string out{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (const uint32_t dim : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((dim >> shift) & 0xFF);
  return out + data;
}

void idx_seeds() {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"labels-u8", idx(0x08, {5}, std::string("\x00\x09\x03\x01\x07", 5))},
      {"images-u8", idx(0x08, {2, 2, 3}, std::string(12, '\x7f'))},
      {"i8", idx(0x09, {3}, std::string("\x80\x00\x7f", 3))},
      {"i16", idx(0x0B, {2}, std::string("\x01\x02\xff\xfe", 4))},
      {"i32", idx(0x0C, {1, 1}, std::string("\x00\x00\x01\x00", 4))},
      {"f32", idx(0x0D, {2}, std::string("\x3f\x80\x00\x00\xc0\x00\x00\x00", 8))},
      {"f64", idx(0x0E, {1}, std::string("\x3f\xf0\x00\x00\x00\x00\x00\x00", 8))},
      {"scalar-u8", idx(0x08, {}, "\x2a")},
      {"empty", idx(0x08, {0, 28, 28}, "")},
  };
  for (const auto& [what, bytes] : files) seed("idx", what, bytes);
  seed("idx", "images-u8.gz", gzip(files[1].second));
  seed("idx", "f64.gz", gzip(files[6].second));
  // Two concatenated gzip members, as `cat a.gz b.gz` makes.
  const std::string labels = files[0].second;
  seed("idx", "labels-two-members.gz", gzip(labels.substr(0, 6)) + gzip(labels.substr(6)));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <folder>\n");
    return 2;
  }
  out_folder = argv[1];
  npy_seeds();
  safetensors_seeds();
  study_seeds();
  pairs_seeds();
  idx_seeds();
  return 0;
}
