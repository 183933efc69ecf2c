// The bad-input corpus: one test per kind of bad input a demanding user has tried, each run through
// the CLI as a separate process. Every case asserts the exit status (2: a documented error), the
// one line "error: ..." naming the file or setting at fault, and that nothing was written or left
// behind. The bad files are made here by code from a good tiny study; none is committed.
#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "cli_support.hpp"
#include "linkstyle/image_files.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/results_database.hpp"
#include "linkstyle/study_lock.hpp"
#include "linkstyle/tensor_io.hpp"
#include "linkstyle/tiny_models.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace linkstyle::testing;

// Sets `key = value` in `[table]` of a study's study.toml (adding the key when it is absent).
void set_setting(const fs::path& study, const std::string& table, const std::string& key, const std::string& value) {
  std::string text = bytes_of(study / "study.toml");
  const size_t start = text.find("\n[" + table + "]\n");
  ASSERT_NE(start, std::string::npos) << text;
  const size_t body = start + table.size() + 4;
  const size_t end = std::min(text.find("\n[", body), text.size());
  const size_t at = text.find("\n" + key + " = ", start);
  if (at == std::string::npos || at > end) {
    text.insert(body, key + " = " + value + "\n");
  } else {
    const size_t line_end = text.find('\n', at + 1);
    text.replace(at + 1, (line_end == std::string::npos ? text.size() : line_end) - at - 1, key + " = " + value);
  }
  write_bytes(study / "study.toml", text);
}

// Overwrites the float32 at [row, column] of a 2-D .npy file in place.
void poke_npy_float(const fs::path& file, int64_t row, int64_t column, float value) {
  const NpyHeader header = read_npy_header(file);
  ASSERT_EQ(header.shape.size(), 2u);
  std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
  out.seekp(static_cast<std::streamoff>(header.data_offset + 4 * (row * header.shape[1] + column)));
  out.write(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Saves a TorchScript module with the given int attributes and methods.
void save_module(const fs::path& file, const std::vector<std::pair<std::string, int64_t>>& attributes,
                 const std::string& methods) {
  torch::jit::Module module("BadInputModel");
  for (const auto& [name, value] : attributes) module.register_attribute(name, c10::IntType::get(), value);
  module.define(methods);
  module.save(file.string());
}

const std::string kStudyArguments = "--tiny --samples-per-class 200 --shard-size 100";

// Every case works on its own copy of one fitted tiny study (32 units, 3 classes, D = 32, w = 24).
class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = std::make_unique<ScratchDir>("bad-inputs");
    fitted_ = root_->path() / "fitted";
    cli_ok("init " + q(fitted_) + " " + kStudyArguments);
    cli_ok("pairs -s " + q(fitted_));
    cli_ok("fit -s " + q(fitted_));
    // Small sweeps: a few seconds each.
    set_setting(fitted_, "sweep", "null_directions", "8");
    set_setting(fitted_, "sweep", "null_bins", "1");
    set_setting(fitted_, "sweep", "strip_units", "0");
    set_setting(fitted_, "sweep", "parts", "\"none\"");
    image_ = root_->path() / "image.png";
    write_image_row(image_, {torch::rand({1, 3, 16, 16})}, 16);
  }
  static void TearDownTestSuite() { root_.reset(); }

  // A copy of the fitted study in a folder of the test's own.
  fs::path study_copy(const std::string& name) {
    const fs::path copy = root_->path() / name;
    fs::copy(fitted_, copy, fs::copy_options::recursive);
    return copy;
  }

  static std::unique_ptr<ScratchDir> root_;
  static fs::path fitted_, image_;
};
std::unique_ptr<ScratchDir> BadInput::root_;
fs::path BadInput::fitted_, BadInput::image_;

TEST_F(BadInput, TheGoodStudyWorks) {
  // Guards the cases below: they differ from this only in what they break.
  const fs::path study = study_copy("good");
  cli_ok("--threads 1 sweep -s " + q(study));
  EXPECT_TRUE(fs::exists(study / "sweeps" / "results.sqlite"));
  cli_ok("reconstruct -s " + q(study) + " " + q(image_));
}

// Runs the CLI with an environment variable set; expects a one-line error naming `names`.
void expect_error_with_environment(const std::string& variable, const std::string& arguments,
                                   const std::string& names) {
  const CommandResult result = run_command(variable + " " + std::string(LINKSTYLE_CLI) + " " + arguments);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_EQ(result.output.rfind("error: ", 0), 0u) << result.output;
  EXPECT_EQ(result.output.find('\n'), result.output.size() - 1) << result.output;
  EXPECT_NE(result.output.find(names), std::string::npos) << result.output;
}

// 1. A thread count far beyond the cores is refused at once, whether from the flag or the
// environment, instead of spawning threads without limit.
TEST_F(BadInput, Case01_ThreadCountBeyondTheBound) {
  const fs::path study = study_copy("threads");
  const auto started = std::chrono::steady_clock::now();
  expect_cli_error("--threads 100000 info -s " + q(study), "--threads", study);
  expect_cli_error("--threads 1024 pairs -s " + q(study), "--threads", study);
  expect_cli_error("--threads -3 info -s " + q(study), "--threads", study);
  expect_cli_error("info -s " + q(study) + " --threads 1000", "--threads", study);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(seconds, 60.0) << "a refused thread count must not start the threads first";
  expect_error_with_environment("LINKSTYLE_THREADS=100000", "info -s " + q(study), "LINKSTYLE_THREADS");
  expect_error_with_environment("LINKSTYLE_THREADS=four", "info -s " + q(study), "LINKSTYLE_THREADS");
}

// 2. Sizes whose buffers cannot fit in memory are refused before anything is allocated, naming
// the setting; a refused run leaves nothing that blocks the corrected one.
TEST_F(BadInput, Case02_SizesBeyondMemory) {
  const fs::path study = study_copy("sizes");
  set_setting(study, "sweep", "steps", "1000000000");
  const std::string message = expect_cli_error("--threads 1 sweep -s " + q(study), "'sweep.steps' needs about", study);
  EXPECT_NE(message.find("study.toml"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(study / "sweeps" / "results.sqlite"));
  expect_cli_error("--threads 1 sweep -s " + q(study) + " --steps 2000000000", "--steps: needs about", study);
  // The corrected run goes through.
  set_setting(study, "sweep", "steps", "3");
  cli_ok("--threads 1 sweep -s " + q(study));

  const fs::path pairs_study = study_copy("sizes-pairs");
  fs::remove_all(pairs_study / "pairs");
  set_setting(pairs_study, "pairs", "batch_size", "100000000000");
  expect_cli_error("pairs -s " + q(pairs_study), "'pairs.batch_size' needs about", pairs_study);
  expect_cli_error("sample -s " + q(study) + " --per-class 1000000000000 -o " + q(root_->path() / "no-samples"),
                   "--per-class: needs about", study);
  EXPECT_FALSE(fs::exists(root_->path() / "no-samples"));
  expect_cli_error("reconstruct -s " + q(study) + " --side 100000 " + q(image_), "--side", study);
  expect_cli_error("probe -s " + q(study) + " --images 1000000000000", "--images: needs about", study);

  // A classifier that asks for 100000 x 100000 inputs.
  const fs::path huge = root_->path() / "huge-input.pt";
  save_module(huge, {{"input_size", 100000}}, R"(
def features(self, x):
    return x.mean([2, 3])
def head(self, r):
    return r
)");
  const fs::path parent = root_->path() / "huge-input-studies";
  fs::create_directories(parent);
  expect_cli_error("init " + q(parent / "s") + " --classifier " + q(huge) + " --generator " +
                       q(fitted_ / "models" / "tiny_generator.pt"),
                   "huge-input.pt: attribute 'input_size' must be an int in [1, 16384]", parent);
}

// 2b. A results database of another run that committed nothing (its run failed before the first
// chunk) does not block the corrected run; one with results still does.
TEST_F(BadInput, Case02b_EmptyDatabaseOfAFailedRunDoesNotBlock) {
  const fs::path study = study_copy("failed-run");
  fs::create_directories(study / "sweeps");
  {
    ResultsDatabase results(study / "sweeps" / "results.sqlite", ResultsDatabase::Mode::create_or_open);
    results.start_run("{\"a run\": \"with other settings\"}", {"whole"}, torch::zeros({3}, torch::kLong),
                      torch::zeros({3}, torch::kLong));
  }
  cli_ok("--threads 1 sweep -s " + q(study));
  set_setting(study, "sweep", "steps", "4");
  expect_cli_error("--threads 1 sweep -s " + q(study), "results.sqlite: was made with other sweep settings", study);
}

// 3. One process per study and stage: the second is refused and told which process holds it.
TEST_F(BadInput, Case03_OneProcessPerStudyStage) {
  const fs::path study = study_copy("locked");
  fs::remove_all(study / "pairs");
  const std::string pid = std::to_string(::getpid());
  {
    const StudyLock pairs_lock(study, "pairs");
    expect_cli_error("pairs -s " + q(study), "in use by process " + pid, study);
  }
  EXPECT_FALSE(fs::exists(study / ".lock-pairs")) << "the lock file goes with the lock";
  cli_ok("pairs -s " + q(study));
  {
    const StudyLock linking_lock(study, "linking");
    expect_cli_error("fit -s " + q(study), "in use by process " + pid, study);
  }
  cli_ok("fit -s " + q(study));
  {
    const StudyLock sweeps_lock(study, "sweeps");
    expect_cli_error("--threads 1 sweep -s " + q(study), "in use by process " + pid, study);
  }
  cli_ok("--threads 1 sweep -s " + q(study));
  for (const auto& entry : fs::directory_iterator(study))
    EXPECT_EQ(entry.path().filename().string().rfind(".lock-", 0), std::string::npos) << entry.path();
}

// 4. fit refuses non-finite numbers, naming the file and row, or the setting.
TEST_F(BadInput, Case04_FitRefusesNonFiniteNumbers) {
  const fs::path study = study_copy("fit-nan");
  int64_t held_out_row = 0;
  while (!is_held_out(held_out_row, 0.1)) ++held_out_row;
  ASSERT_LT(held_out_row, 100);
  poke_npy_float(study / "pairs" / "r-00000.npy", held_out_row, 3, std::numeric_limits<float>::quiet_NaN());
  expect_cli_error("fit -s " + q(study), "r-00000.npy: row " + std::to_string(held_out_row) + " holds NaN or Inf",
                   study);
  poke_npy_float(study / "pairs" / "r-00000.npy", held_out_row, 3, std::numeric_limits<float>::infinity());
  expect_cli_error("fit -s " + q(study), "r-00000.npy: row " + std::to_string(held_out_row), study);

  // NaN in the statistics that pairs saved.
  const fs::path stats_study = study_copy("fit-nan-statistics");
  const auto manifest = PairsManifest::load(stats_study / "pairs");
  const fs::path statistics = stats_study / "pairs" / manifest.statistics;
  auto content = read_safetensors(statistics);
  ASSERT_TRUE(content.tensors.count("shift_r"));
  content.tensors["shift_r"] = content.tensors["shift_r"].clone();
  content.tensors["shift_r"][0] = std::numeric_limits<float>::quiet_NaN();
  write_safetensors(statistics, content.tensors, content.metadata);
  expect_cli_error("fit -s " + q(stats_study), manifest.statistics + ": shift_r / shift_w contain NaN or Inf",
                   stats_study);

  // Penalties that are no number.
  expect_cli_error("fit -s " + q(study) + " --method ridge --penalty inf", "--penalty", study);
  expect_cli_error("fit -s " + q(study) + " --method ridge --penalty nan", "--penalty", study);
  const fs::path toml_study = study_copy("fit-nan-penalty");
  set_setting(toml_study, "fit", "penalty", "nan");
  expect_cli_error("fit -s " + q(toml_study), "study.toml: 'fit.penalty' must be a finite number", toml_study);
  set_setting(toml_study, "fit", "penalty", "inf");
  expect_cli_error("fit -s " + q(toml_study), "'fit.penalty'", toml_study);
}

// 5. A class or unit listed twice is refused (its pairs would be drawn twice and could land on
// both sides of the held-out split).
TEST_F(BadInput, Case05_DuplicateClassesAndUnits) {
  const fs::path parent = root_->path() / "duplicates";
  fs::create_directories(parent);
  expect_cli_error("init " + q(parent / "s") + " --tiny --classes 0,0", "--classes: lists class 0 twice", parent);
  const fs::path study = study_copy("duplicate-classes");
  set_setting(study, "pairs", "classes", "[0, 1, 0]");
  expect_cli_error("pairs -s " + q(study), "study.toml: 'pairs.classes' lists class 0 twice", study);
  const fs::path units = study_copy("duplicate-units");
  expect_cli_error("--threads 1 sweep -s " + q(units) + " --units 0,0", "--units: lists unit 0 twice", units);
  set_setting(units, "sweep", "units", "[1, 2, 1]");
  expect_cli_error("--threads 1 sweep -s " + q(units), "study.toml: 'sweep.units' lists unit 1 twice", units);
}

// 6. A model archive whose weights were damaged fails its checksums instead of loading.
TEST_F(BadInput, Case06_ModelArchiveWithBadChecksum) {
  const fs::path study = study_copy("bad-crc");
  const fs::path model = study / "models" / "tiny_classifier.pt";
  std::string bytes = bytes_of(model);
  // The first weight entry: its local header, then its data.
  const size_t name = bytes.find("/data/0");
  ASSERT_NE(name, std::string::npos);
  const size_t header = bytes.rfind(std::string("PK\x03\x04", 4), name);
  ASSERT_NE(header, std::string::npos);
  const auto le16 = [&](size_t at) { return size_t(uint8_t(bytes[at])) | size_t(uint8_t(bytes[at + 1])) << 8; };
  const size_t data = header + 30 + le16(header + 26) + le16(header + 28);
  // (0 when the sizes follow the data; the first weight is larger than 64 bytes anyway)
  const size_t size = le16(header + 18) | le16(header + 20) << 16;
  for (size_t i = 0; i < (size == 0 ? 64 : std::min<size_t>(64, size)); ++i) bytes[data + i] = char(~bytes[data + i]);
  write_bytes(model, bytes);
  expect_cli_error("info -s " + q(study), "tiny_classifier.pt: not a TorchScript archive: archive entry", study);
  expect_cli_error("pairs -s " + q(study), "CRC", study);
}

// 7. A finished sweep's database holds every result by itself: the write-ahead log is checkpointed
// into it before the run reports success.
TEST_F(BadInput, Case07_FinishedSweepNeedsNoWriteAheadLog) {
  const fs::path study = study_copy("wal");
  cli_ok("--threads 1 sweep -s " + q(study));
  const fs::path wal = study / "sweeps" / "results.sqlite-wal";
  EXPECT_TRUE(!fs::exists(wal) || fs::file_size(wal) == 0) << fs::file_size(wal) << " bytes left in the log";
  // The database file alone, copied without its log, holds the complete run.
  const fs::path alone = root_->path() / "wal-alone";
  fs::create_directories(alone);
  fs::copy_file(study / "sweeps" / "results.sqlite", alone / "results.sqlite");
  ResultsDatabase results(alone / "results.sqlite", ResultsDatabase::Mode::open_existing);
  EXPECT_TRUE(results.is_complete());
  EXPECT_EQ(results.swept_units().size(), 32u);
}

// 8. A truncated JPEG is refused like a truncated PNG (libjpeg alone only warns), and a PNG is
// checked chunk by chunk (libpng prints its own text).
TEST_F(BadInput, Case08_TruncatedJpeg) {
  const fs::path study = study_copy("jpeg");
  const fs::path images = root_->path() / "jpeg-images";
  fs::create_directories(images);
  cv::Mat picture(64, 64, CV_8UC3);
  cv::randu(picture, 0, 255);
  std::vector<uchar> encoded;
  ASSERT_TRUE(cv::imencode(".jpg", picture, encoded));
  const std::string jpeg(encoded.begin(), encoded.end());
  write_bytes(images / "whole.jpg", jpeg);
  cli_ok("reconstruct -s " + q(study) + " -o " + q(root_->path() / "jpeg-out") + " " + q(images / "whole.jpg"));
  for (const double fraction : {0.2, 0.5, 0.9}) {
    const fs::path cut = images / ("cut-" + std::to_string(int(fraction * 100)) + ".jpg");
    write_bytes(cut, jpeg.substr(0, size_t(double(jpeg.size()) * fraction)));
    expect_cli_error("reconstruct -s " + q(study) + " " + q(cut), cut.filename().string() + ": truncated", study);
  }
  write_bytes(images / "no-end.jpg", jpeg.substr(0, jpeg.size() - 2));
  expect_cli_error("reconstruct -s " + q(study) + " " + q(images / "no-end.jpg"), "no-end.jpg: truncated", study);
  const std::string png = bytes_of(image_);
  write_bytes(images / "cut.png", png.substr(0, png.size() / 2));
  expect_cli_error("reconstruct -s " + q(study) + " " + q(images / "cut.png"), "cut.png: truncated PNG", study);
  std::string flipped = png;
  flipped[flipped.size() / 2] = char(~flipped[flipped.size() / 2]);
  write_bytes(images / "flipped.png", flipped);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(images / "flipped.png"), "flipped.png: corrupt PNG", study);
}

// 9. A zero is an error, not "use the study's value".
TEST_F(BadInput, Case09_ZeroIsAnError) {
  const fs::path study = study_copy("zeros");
  expect_cli_error("--threads 1 sweep -s " + q(study) + " --steps 0", "--steps: must be >= 2", study);
  expect_cli_error("--threads 1 sweep -s " + q(study) + " --batch-size 0", "--batch-size: must be > 0", study);
  expect_cli_error("--threads 1 sweep -s " + q(study) + " --samples-per-class 0", "--samples-per-class: must be > 0",
                   study);
  const fs::path parent = root_->path() / "zeros-init";
  fs::create_directories(parent);
  expect_cli_error("init " + q(parent / "s") + " --tiny --samples-per-class 0", "--samples-per-class: must be > 0",
                   parent);
}

// 10. Messages give the right reason.
TEST_F(BadInput, Case10_MessagesGiveTheRightReason) {
  const fs::path study = study_copy("reasons");
  const fs::path folder = root_->path() / "a-folder.png";
  fs::create_directories(folder);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(folder), "a-folder.png: is a folder", study);
  expect_cli_error("reconstruct -s " + q(study) + " /dev/null", "/dev/null: is not a regular file", study);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(root_->path() / "none.png"), "none.png: image file not found",
                   study);
  if (::geteuid() != 0) {  // root reads any file: the case exists only for other users
    const fs::path locked = root_->path() / "locked.png";
    fs::copy_file(image_, locked);
    fs::permissions(locked, fs::perms::none);
    expect_cli_error("reconstruct -s " + q(study) + " " + q(locked), "locked.png: cannot read", study);
  }
  // Units named twice on the command line are the flag's fault, not study.toml's.
  const std::string units = expect_cli_error("--threads 1 sweep -s " + q(study) + " --units 0,0", "--units", study);
  EXPECT_EQ(units.find("study.toml"), std::string::npos) << units;
  // NaN in a training shard names the shard and row.
  const fs::path shard_study = study_copy("reasons-shard");
  int64_t training_row = 0;
  while (is_held_out(100 + training_row, 0.1)) ++training_row;
  poke_npy_float(shard_study / "pairs" / "w-00001.npy", training_row, 0, std::numeric_limits<float>::infinity());
  expect_cli_error("fit --recompute -s " + q(shard_study),
                   "w-00001.npy: row " + std::to_string(training_row) + " holds NaN or Inf", shard_study);
}

// 11. init checks what later stages rely on.
TEST_F(BadInput, Case11_InitChecksTheModels) {
  const fs::path parent = root_->path() / "init-checks";
  fs::create_directories(parent);
  const fs::path generator = fitted_ / "models" / "tiny_generator.pt";
  const fs::path classifier = fitted_ / "models" / "tiny_classifier.pt";

  const fs::path nan_classifier = root_->path() / "nan-classifier.pt";
  save_module(nan_classifier, {{"input_size", 16}}, R"(
def features(self, x):
    return torch.full([x.size(0), 8], float('nan'))
def head(self, r):
    return r[:, :3]
)");
  expect_cli_error("init " + q(parent / "s1") + " --classifier " + q(nan_classifier) + " --generator " + q(generator),
                   "nan-classifier.pt: features gives NaN or Inf", parent);

  const fs::path inf_generator = root_->path() / "inf-generator.pt";
  save_module(inf_generator, {{"z_dim", 16}, {"w_dim", 24}, {"num_classes", 3}, {"resolution", 16}}, R"(
def mapping(self, z, c, psi: float):
    return torch.zeros([z.size(0), 24])
def synthesis(self, w):
    return torch.full([w.size(0), 3, 16, 16], float('inf'))
)");
  expect_cli_error("init " + q(parent / "s2") + " --classifier " + q(classifier) + " --generator " + q(inf_generator),
                   "inf-generator.pt: synthesis gives NaN or Inf pixels", parent);
  // A study pointed at it afterwards: pairs refuses its images too.
  const fs::path study = study_copy("inf-generator-pairs");
  fs::remove_all(study / "pairs");
  set_setting(study, "models", "generator", "\"" + inf_generator.string() + "\"");
  expect_cli_error("pairs -s " + q(study), "inf-generator.pt", study);

  TinyModelSpec six;
  six.num_classes = 6;
  const auto six_models = write_tiny_models(root_->path() / "six-class-models", six);
  TinyModelSpec ten;
  ten.num_classes = 10;
  const auto ten_models = write_tiny_models(root_->path() / "ten-class-models", ten);
  expect_cli_error("init " + q(parent / "s3") + " --classifier " + q(six_models.classifier) + " --generator " +
                       q(ten_models.generator),
                   "pairs.classes: generator class 6 is classifier class 6, but the classifier has 6 classes", parent);

  write_bytes(root_->path() / "empty-segmenter.pt", "");
  expect_cli_error("init " + q(parent / "s4") + " --tiny --segmenter " + q(root_->path() / "empty-segmenter.pt"),
                   "empty-segmenter.pt", parent);

  // Models whose class names differ: a warning, and the study is made.
  const fs::path shapes_classifier = fs::path(LINKSTYLE_SOURCE_DIR) / "models" / "shapes" / "classifier.pt";
  const fs::path fashion_generator = fs::path(LINKSTYLE_SOURCE_DIR) / "models" / "fashion" / "generator.pt";
  const CommandResult mixed = run_cli("init " + q(parent / "mixed") + " --classes 0,1 --classifier " +
                                      q(shapes_classifier) + " --generator " + q(fashion_generator));
  EXPECT_EQ(mixed.exit_code, 0) << mixed.output;
  EXPECT_NE(mixed.output.find("warning: 2 of 2 classes have other names"), std::string::npos) << mixed.output;
  EXPECT_TRUE(fs::exists(parent / "mixed" / "study.toml"));
}

// 12. Sizes so large that arithmetic on them would overflow are refused.
TEST_F(BadInput, Case12_HugeCountsCannotOverflow) {
  const fs::path study = study_copy("overflow");
  fs::remove_all(study / "pairs");
  set_setting(study, "pairs", "samples_per_class", "9223372036854775807");
  expect_cli_error("pairs -s " + q(study), "'pairs.samples_per_class' must be <= 2^40", study);
  const fs::path parent = root_->path() / "overflow-init";
  fs::create_directories(parent);
  expect_cli_error("init " + q(parent / "s") + " --tiny --samples-per-class 9223372036854775807", "--samples-per-class",
                   parent);
}

// 13. Degenerate runs say why their results are weak.
TEST_F(BadInput, Case13_DegenerateRunsWarn) {
  const fs::path parent = root_->path() / "degenerate";
  cli_ok("init " + q(parent) + " --tiny --samples-per-class 6 --shard-size 100");
  cli_ok("pairs -s " + q(parent));
  const CommandResult fit = run_cli("fit -s " + q(parent));
  EXPECT_EQ(fit.exit_code, 0) << fit.output;
  EXPECT_NE(fit.output.find("warning: "), std::string::npos) << fit.output;
  EXPECT_NE(fit.output.find("training pairs for 32 features: the fit is underdetermined"), std::string::npos)
      << fit.output;
  const json report = json::parse(bytes_of(parent / "linking" / "fit.json"));
  EXPECT_GE(report["warnings"].size(), 1u) << report.dump();

  // One tuning sample: no unit varies, so none can be swept or tested.
  const fs::path study = study_copy("one-sample");
  set_setting(study, "pairs", "classes", "[0]");
  const CommandResult sweep = run_cli("--threads 1 sweep -s " + q(study) + " --samples-per-class 1 --units 0,1,2");
  EXPECT_EQ(sweep.exit_code, 0) << sweep.output;
  EXPECT_NE(sweep.output.find("warning: 3 of 3 units never vary over 1 tuning sample:"), std::string::npos)
      << sweep.output;
}

// 14. pairs on a complete study checks its shards against the manifest.
TEST_F(BadInput, Case14_CompletePairsAreCheckedAgainstTheManifest) {
  const fs::path study = study_copy("shards");
  cli_ok("pairs -s " + q(study));  // complete and intact: nothing to do
  const std::string shard = bytes_of(study / "pairs" / "w-00002.npy");
  write_bytes(study / "pairs" / "w-00002.npy", shard.substr(0, shard.size() - 40));
  expect_cli_error("pairs -s " + q(study), "w-00002.npy", study);
  fs::remove(study / "pairs" / "w-00002.npy");
  expect_cli_error("pairs -s " + q(study), "w-00002.npy", study);
  write_npy(study / "pairs" / "w-00002.npy", torch::zeros({7, 24}));
  const int64_t rows = PairsManifest::load(study / "pairs").shards.at(2).rows;
  expect_cli_error("pairs -s " + q(study),
                   "w-00002.npy: has shape 7x24 (Float), but manifest.json lists " + std::to_string(rows) + "x24",
                   study);
}

// 15. What the parsers' fuzzing found: characters beyond ASCII in study.toml (the TOML library
// handles some of them with undefined behaviour; paths beyond ASCII are written as \u escapes),
// and manifest numbers that are no int64.
TEST_F(BadInput, Case15_FuzzingFindings) {
  const fs::path study = study_copy("fuzz-findings");
  const std::string good_toml = bytes_of(study / "study.toml");
  write_bytes(study / "study.toml", good_toml + "x = \xcf\x98\n");
  expect_cli_error("info -s " + q(study), "study.toml: line", study);
  write_bytes(study / "study.toml", good_toml + "# r\xc3\xa9sum\xc3\xa9\n");
  expect_cli_error("info -s " + q(study), "study.toml: line", study);
  write_bytes(study / "study.toml", good_toml);
  // Paths beyond ASCII are written as \u escapes, and read back.
  const fs::path accented = root_->path() / "r\xc3\xa9sum\xc3\xa9-\xf0\x9f\x93\x81";
  cli_ok("init " + q(accented) + " --tiny");
  const fs::path elsewhere = root_->path() / "models-elsewhere-\xc3\xa9";
  fs::copy(accented / "models", elsewhere, fs::copy_options::recursive);
  cli_ok("init " + q(accented / "again") + " --classifier " + q(elsewhere / "tiny_classifier.pt") + " --generator " +
         q(elsewhere / "tiny_generator.pt"));
  EXPECT_NE(bytes_of(accented / "again" / "study.toml").find("\\u00E9"), std::string::npos);
  cli_ok("info -s " + q(accented / "again"));

  const std::string good_manifest = bytes_of(study / "pairs" / "manifest.json");
  json manifest = json::parse(good_manifest);
  manifest["feature_dim"] = 1e300;
  write_bytes(study / "pairs" / "manifest.json", manifest.dump());
  expect_cli_error("fit -s " + q(study), "manifest.json: corrupt manifest: 'feature_dim' must be a whole number", study);
  manifest = json::parse(good_manifest);
  manifest["shards"][0]["rows"] = -5;
  write_bytes(study / "pairs" / "manifest.json", manifest.dump());
  expect_cli_error("fit -s " + q(study), "'rows' must be a whole number >= 0", study);
  manifest = json::parse(good_manifest);
  manifest["shards"][0]["features"] = "../../study.toml";
  write_bytes(study / "pairs" / "manifest.json", manifest.dump());
  expect_cli_error("fit -s " + q(study), "'features' must be a file name inside the pairs folder", study);
}

}  // namespace
}  // namespace linkstyle

