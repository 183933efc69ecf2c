// Tests of the linkstyle command line, run as a separate process: the whole workflow, resuming
// after kill -9, one-line errors that leave no half-written files, and --help.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "linkstyle/image_files.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/sqlite_database.hpp"
#include "linkstyle/tiny_models.hpp"
#include "cli_support.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CommandResult;
using testing::run_cli;
using testing::ScratchDir;
using namespace linkstyle::testing;

const std::string kStudyArguments = "--tiny --samples-per-class 200 --shard-size 100";

// ---------------------------------------------------------------------------------------------
TEST(Cli, EndToEnd) {
  ScratchDir dir("cli-e2e");
  const fs::path study = dir / "study";

  const json init = cli_json("init " + q(study) + " " + kStudyArguments);
  EXPECT_TRUE(fs::exists(study / "study.toml"));
  ASSERT_TRUE(init.contains("config") && init.contains("classifier") && init.contains("generator")) << init.dump();
  EXPECT_TRUE(fs::exists(init["classifier"].get<std::string>()));
  EXPECT_TRUE(fs::exists(init["generator"].get<std::string>()));
  // A second init refuses to overwrite.
  expect_cli_error("init " + q(study) + " --tiny", "study.toml", study);

  // Global options may also follow the subcommand.
  const json pairs = json::parse(cli_ok("pairs -s " + q(study) + " --json --threads 1"));
  EXPECT_EQ(pairs.value("rows", 0), 600) << pairs.dump();
  EXPECT_EQ(pairs.value("accepted", 0), 600);
  EXPECT_GE(pairs.value("shards", 0), 6);
  ASSERT_EQ(pairs["classes"].size(), 3u) << pairs.dump();
  for (const auto& c : pairs["classes"]) {
    EXPECT_EQ(c.value("accepted", 0), 200);
    EXPECT_GT(c.value("acceptance_rate", 0.0), 0.0);
  }
  EXPECT_TRUE(fs::exists(study / "pairs" / "manifest.json"));
  EXPECT_TRUE(fs::exists(study / "pairs" / "r-00000.npy"));

  const json fit = cli_json("fit -s " + q(study));
  ASSERT_TRUE(fit.contains("held_out")) << fit.dump();
  EXPECT_GT(fit["held_out"].value("r2", 0.0), 0.5) << fit.dump();
  EXPECT_GT(fit["held_out"].value("pairs", 0), 0);
  EXPECT_EQ(fit.value("method", ""), "ols");
  EXPECT_TRUE(fit.value("statistics_reused", false));
  EXPECT_TRUE(fs::exists(study / "linking" / "linking.safetensors"));
  ASSERT_TRUE(fs::exists(study / "linking" / "fit.json"));
  const json fit_report = json::parse(bytes_of(study / "linking" / "fit.json"));
  EXPECT_TRUE(fit_report["held_out"].contains("r2_per_dim"));
  EXPECT_EQ(fit_report["held_out"]["r2_per_dim"].size(), 24u);
  // Recomputing the statistics gives the same fit.
  const json refit = cli_json("fit --recompute -s " + q(study));
  EXPECT_FALSE(refit.value("statistics_reused", true));
  EXPECT_NEAR(refit["held_out"].value("r2", 0.0), fit["held_out"].value("r2", 1.0), 1e-5);

  const json sample = cli_json("sample -s " + q(study));
  ASSERT_TRUE(sample.contains("images")) << sample.dump();
  ASSERT_EQ(sample["images"].size(), 6u);
  std::string image_arguments;
  for (const auto& image : sample["images"]) {
    EXPECT_TRUE(fs::exists(image.get<std::string>())) << image;
    image_arguments += " " + q(image.get<std::string>());
  }

  const json reconstruct = cli_json("reconstruct -s " + q(study) + image_arguments);
  ASSERT_TRUE(reconstruct.contains("images")) << reconstruct.dump();
  ASSERT_EQ(reconstruct["images"].size(), 6u);
  EXPECT_GE(reconstruct.value("same_class_rate", -1.0), 0.0);
  EXPECT_LE(reconstruct.value("same_class_rate", 2.0), 1.0);
  for (const auto& image : reconstruct["images"]) {
    const fs::path png = image.value("output", "");
    EXPECT_TRUE(fs::exists(png)) << image.dump();
    EXPECT_EQ(png.parent_path(), study / "reconstructions");
    const fs::path report = fs::path(png).replace_extension(".json");
    ASSERT_TRUE(fs::exists(report)) << report;
    const json written = json::parse(bytes_of(report));
    EXPECT_EQ(written, image);
    EXPECT_TRUE(written["original"].contains("class"));
    EXPECT_TRUE(written["reconstruction"].contains("class"));
    const double cosine = written.value("feature_cosine", -2.0);
    EXPECT_GE(cosine, -1.0 - 1e-6);
    EXPECT_LE(cosine, 1.0 + 1e-6);
    // The PNG shows the original and the reconstruction side by side (2 x 256 by 256).
    const auto shown = read_image(png);
    EXPECT_EQ(shown.size(2), 256);
    EXPECT_EQ(shown.size(3), 512);
  }

  const json info = cli_json("info -s " + q(study));
  EXPECT_EQ(info["classifier"].value("feature_dim", 0), 32) << info.dump();
  EXPECT_EQ(info["generator"].value("w_dim", 0), 24);
  EXPECT_EQ(info["generator"].value("num_classes", 0), 3);
  ASSERT_EQ(info["classes"].size(), 3u);
  EXPECT_EQ(info["classes"][2].value("generator_class", -1), 2);
  ASSERT_TRUE(info.contains("pairs"));
  EXPECT_EQ(info["pairs"].value("rows", 0), 600);
  EXPECT_TRUE(info["pairs"].value("complete", false));
  ASSERT_TRUE(info.contains("linking"));
  EXPECT_GT(info["linking"]["held_out"].value("r2", 0.0), 0.5);

  // The human-readable forms succeed too.
  const std::string text = cli_ok("info -s " + q(study));
  EXPECT_NE(text.find("pairs: 600 rows"), std::string::npos) << text;
  EXPECT_NE(text.find("linking network: ols"), std::string::npos) << text;

  for (const auto& entry : fs::recursive_directory_iterator(study))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
}

// ---------------------------------------------------------------------------------------------
// Starts the CLI in the background (output discarded); returns its pid.
pid_t spawn_cli(const std::vector<std::string>& arguments) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    std::vector<char*> argv;
    static const std::string program = LINKSTYLE_CLI;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int64_t committed_shards(const fs::path& manifest_file) {
  try {
    return static_cast<int64_t>(json::parse(bytes_of(manifest_file)).at("shards").size());
  } catch (const std::exception&) {
    return 0;  // not written yet (the manifest is replaced atomically, never half-written)
  }
}

TEST(Cli, KilledPairsRunResumesToTheSameFiles) {
  ScratchDir dir("cli-kill");
  const fs::path killed = dir / "killed", full = dir / "full";
  const std::string settings = " --tiny --samples-per-class 3000 --shard-size 200";
  cli_ok("init " + q(killed) + settings);
  cli_ok("init " + q(full) + settings);

  const pid_t pid = spawn_cli({"--threads", "1", "pairs", "-s", killed.string()});
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (committed_shards(killed / "pairs" / "manifest.json") < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the pairs run ended before it could be killed; make the study larger";
  const json partial = json::parse(bytes_of(killed / "pairs" / "manifest.json"));
  ASSERT_FALSE(partial.value("complete", true));
  ASSERT_GE(partial["shards"].size(), 1u);

  // An incomplete study cannot be fitted yet.
  expect_cli_error("fit -s " + q(killed), "manifest.json", killed);

  const std::string resumed_output = cli_ok("--threads 1 pairs -s " + q(killed));
  EXPECT_NE(resumed_output.find("9000 rows"), std::string::npos) << resumed_output;
  cli_ok("--threads 1 pairs -s " + q(full));

  std::vector<std::string> names_killed, names_full;
  for (const auto& e : fs::directory_iterator(killed / "pairs")) names_killed.push_back(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(full / "pairs")) names_full.push_back(e.path().filename().string());
  std::sort(names_killed.begin(), names_killed.end());
  std::sort(names_full.begin(), names_full.end());
  EXPECT_EQ(names_killed, names_full);
  for (const auto& name : names_full) {
    if (name == "manifest.json") continue;
    EXPECT_EQ(bytes_of(killed / "pairs" / name), bytes_of(full / "pairs" / name)) << name << " differs";
  }
  json manifest_killed = json::parse(bytes_of(killed / "pairs" / "manifest.json"));
  json manifest_full = json::parse(bytes_of(full / "pairs" / "manifest.json"));
  EXPECT_EQ(manifest_killed["shards"], manifest_full["shards"]);
  EXPECT_EQ(manifest_killed["classes"], manifest_full["classes"]);
  EXPECT_EQ(manifest_killed["settings"], manifest_full["settings"]);
  EXPECT_EQ(manifest_killed["statistics"], manifest_full["statistics"]);
  EXPECT_EQ(manifest_killed["total_rows"], 9000);
  EXPECT_TRUE(manifest_killed.value("complete", false));
}

// ---------------------------------------------------------------------------------------------
// Error cases share one fitted study; each case works on its own copy.
class CliErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = std::make_unique<ScratchDir>("cli-errors");
    fitted_ = root_->path() / "fitted";
    cli_ok("init " + q(fitted_) + " " + kStudyArguments);
    cli_ok("pairs -s " + q(fitted_));
    cli_ok("fit -s " + q(fitted_));
    image_ = root_->path() / "image.png";
    write_image_row(image_, {torch::rand({1, 3, 16, 16})}, 16);
  }
  static void TearDownTestSuite() { root_.reset(); }

  // A copy of the fitted study (or of a fresh, unfitted one when `fitted` is false).
  fs::path study_copy(const std::string& name, bool fitted = true) {
    const fs::path copy = root_->path() / name;
    if (fitted) {
      fs::copy(fitted_, copy, fs::copy_options::recursive);
    } else {
      fs::create_directories(copy);
      fs::copy(fitted_ / "study.toml", copy / "study.toml");
      fs::copy(fitted_ / "models", copy / "models", fs::copy_options::recursive);
    }
    return copy;
  }

  static std::unique_ptr<ScratchDir> root_;
  static fs::path fitted_, image_;
};
std::unique_ptr<ScratchDir> CliErrors::root_;
fs::path CliErrors::fitted_, CliErrors::image_;

TEST_F(CliErrors, TheFittedStudyWorks) {
  // Guards the cases below: they differ from this only in what they break.
  const fs::path study = study_copy("works");
  const json result = cli_json("reconstruct -s " + q(study) + " " + q(image_));
  EXPECT_EQ(result["images"].size(), 1u);
  EXPECT_TRUE(fs::exists(study / "reconstructions" / "image.png"));
}

TEST_F(CliErrors, MissingClassifierFile) {
  const fs::path study = study_copy("missing-classifier", false);
  fs::remove(study / "models" / "tiny_classifier.pt");
  expect_cli_error("pairs -s " + q(study), "tiny_classifier.pt", study);
  expect_cli_error("info -s " + q(study), "tiny_classifier.pt", study);
}

TEST_F(CliErrors, CorruptClassifierFile) {
  const fs::path study = study_copy("corrupt-classifier", false);
  write_bytes(study / "models" / "tiny_classifier.pt", std::string("\x13\x37garbage\0bytes, not a zip", 25));
  expect_cli_error("pairs -s " + q(study), "tiny_classifier.pt", study);
  // A truncated archive.
  const std::string good = bytes_of(fitted_ / "models" / "tiny_classifier.pt");
  write_bytes(study / "models" / "tiny_classifier.pt", good.substr(0, good.size() / 2));
  expect_cli_error("pairs -s " + q(study), "tiny_classifier.pt", study);
}

TEST_F(CliErrors, GeneratorWithAnotherWDimThanTheLinkingNetwork) {
  const fs::path study = study_copy("other-generator");
  TinyModelSpec spec;
  spec.w_dim = 20;
  const auto other = write_tiny_models(root_->path() / "w20-models", spec);
  fs::copy_file(other.generator, study / "models" / "tiny_generator.pt", fs::copy_options::overwrite_existing);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(image_), "linking.safetensors", study);
  // The pairs were made with the other generator too.
  expect_cli_error("pairs -s " + q(study), "manifest.json", study);
}

TEST_F(CliErrors, LinkingNetworkOfOtherModelsWithTheSameSizes) {
  const fs::path study = study_copy("other-seed");
  TinyModelSpec spec;
  spec.seed = 5;
  const auto other = write_tiny_models(root_->path() / "seed5-models", spec);
  fs::copy_file(other.generator, study / "models" / "tiny_generator.pt", fs::copy_options::overwrite_existing);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(image_), "linking.safetensors", study);
  // A linking network from a study with another feature size, passed with --linking.
  const fs::path fresh = study_copy("other-linking");
  const fs::path foreign = root_->path() / "foreign.safetensors";
  {
    // As fitted for a classifier with D = 16 (the study's has 32).
    LinkingNetwork network = LinkingNetwork::load(fresh / "linking" / "linking.safetensors");
    network.weight = network.weight.slice(1, 0, 16).contiguous();
    network.save(foreign);
  }
  expect_cli_error("reconstruct -s " + q(fresh) + " --linking " + q(foreign) + " " + q(image_), "foreign.safetensors",
                   fresh);
}

TEST_F(CliErrors, ReconstructOfBadImages) {
  const fs::path study = study_copy("bad-images");
  const fs::path images = root_->path() / "bad-images-input";
  fs::create_directories(images);
  write_bytes(images / "corrupt.png", std::string("\x89PNG but not really, just garbage bytes here"));
  write_image_row(images / "tiny.png", {torch::rand({1, 3, 4, 4})}, 4);
  ASSERT_EQ(read_image(image_).size(3), 16);

  expect_cli_error("reconstruct -s " + q(study) + " " + q(images / "missing.png"), "missing.png", study);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(images / "corrupt.png"), "corrupt.png", study);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(images / "tiny.png"), "tiny.png", study);
  // All images are checked before anything is written: a good image before a bad one.
  expect_cli_error("reconstruct -s " + q(study) + " " + q(image_) + " " + q(images / "corrupt.png"), "corrupt.png",
                   study);
  // Two inputs with the same name would write the same outputs.
  fs::create_directories(images / "again");
  fs::copy_file(image_, images / "again" / image_.filename());
  expect_cli_error("reconstruct -s " + q(study) + " " + q(image_) + " " + q(images / "again" / image_.filename()),
                   "same file name", study);
}

TEST_F(CliErrors, UnknownKeyInStudyToml) {
  const fs::path study = study_copy("unknown-key");
  std::string text = bytes_of(study / "study.toml");
  text.replace(text.find("[pairs]\n"), 8, "[pairs]\nsamples_per_clas = 3\n");
  write_bytes(study / "study.toml", text);
  for (const char* command : {"pairs", "fit"})
    expect_cli_error(std::string(command) + " -s " + q(study), "study.toml", study);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(image_), "study.toml", study);
}

TEST_F(CliErrors, UnwritableOutputFolder) {
  const fs::path study = study_copy("unwritable");
  const fs::path blocker = root_->path() / "a-regular-file";
  write_bytes(blocker, "not a folder");
  expect_cli_error("reconstruct -s " + q(study) + " -o " + q(blocker / "out") + " " + q(image_),
                   (blocker / "out").string(), study);
  expect_cli_error("reconstruct -s " + q(study) + " -o " + q(blocker) + " " + q(image_), blocker.string(), study);
  expect_cli_error("sample -s " + q(study) + " -o " + q(blocker / "out"), (blocker / "out").string(), study);
  EXPECT_EQ(bytes_of(blocker), "not a folder");
}

TEST_F(CliErrors, FitBeforePairs) {
  const fs::path study = study_copy("no-pairs", false);
  expect_cli_error("fit -s " + q(study), "manifest.json", study);
  expect_cli_error("reconstruct -s " + q(study) + " " + q(image_), "linking.safetensors", study);
}

TEST_F(CliErrors, FailedInitLeavesNothingBehind) {
  const fs::path parent = root_->path() / "init-parent";
  fs::create_directories(parent);
  // A new folder: removed again.
  expect_cli_error("init " + q(parent / "s1") + " --tiny --psi 5", "--psi", parent);
  expect_cli_error("init " + q(parent / "s2") + " --tiny --classes 7", "--classes", parent);
  expect_cli_error("init " + q(parent / "s3") + " --tiny --seed 18446744073709551615", "study.toml", parent);
  expect_cli_error("init " + q(parent / "s5") + " --classifier " + q(parent / "none.pt") + " --generator " +
                       q(fitted_ / "models" / "tiny_generator.pt"),
                   "none.pt", parent);
  // An existing folder keeps what it had.
  const fs::path existing = parent / "existing";
  fs::create_directories(existing);
  write_bytes(existing / "notes.txt", "mine");
  expect_cli_error("init " + q(existing) + " --tiny --psi 5", "--psi", parent);
  // A failed --force keeps the previous study.toml.
  const fs::path study = study_copy("init-force", false);
  expect_cli_error("init --force " + q(study) + " --tiny --batch-size 0", "--batch-size", study);
  // After a failed init, init works.
  cli_ok("init " + q(parent / "s1") + " --tiny");
  EXPECT_TRUE(fs::exists(parent / "s1" / "study.toml"));
}

TEST_F(CliErrors, BadNumericOptions) {
  const fs::path study = study_copy("bad-options");
  const fs::path output = root_->path() / "bad-options-output";
  expect_cli_error("reconstruct -s " + q(study) + " --side 0 -o " + q(output) + " " + q(image_), "--side", study);
  expect_cli_error("sample -s " + q(study) + " --per-class 0 -o " + q(output), "--per-class", study);
  expect_cli_error("sample -s " + q(study) + " --per-class -2 -o " + q(output), "--per-class", study);
  EXPECT_FALSE(fs::exists(output));
}

TEST_F(CliErrors, MissingStudy) {
  const fs::path nowhere = root_->path() / "no-study-here";
  fs::create_directories(nowhere);
  expect_cli_error("info -s " + q(nowhere), "study.toml", nowhere);
  expect_cli_error("pairs -s " + q(nowhere), "study.toml", nowhere);
}

// ---------------------------------------------------------------------------------------------
TEST(Cli, HelpForEveryCommand) {
  const CommandResult top = run_cli("--help");
  EXPECT_EQ(top.exit_code, 0) << top.output;
  for (const char* command :
       {"init", "info", "pairs", "fit", "sample", "reconstruct", "render", "train generator", "eval generator"}) {
    const std::string first_word = std::string(command).substr(0, std::string(command).find(' '));
    EXPECT_NE(top.output.find(first_word), std::string::npos) << command << " not in:\n" << top.output;
    const CommandResult help = run_cli(std::string(command) + " --help");
    EXPECT_EQ(help.exit_code, 0) << command << ":\n" << help.output;
    EXPECT_NE(help.output.find(std::string(command).substr(std::string(command).rfind(' ') + 1)), std::string::npos)
        << help.output;
    EXPECT_NE(help.output.find("--"), std::string::npos) << help.output;
  }
  // An unknown option is a usage error.
  EXPECT_NE(run_cli("pairs --no-such-option").exit_code, 0);
}

TEST(Cli, RenderWritesWorldImagesWithTheirLabelsAndFactors) {
  ScratchDir dir("cli_render");
  const CommandResult result =
      run_cli("render --world shapes --count 7 --seed 3 --resolution 48 -o " + (dir / "real").string());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const json listing = json::parse(std::ifstream(dir / "real" / "images.json"));
  ASSERT_EQ(listing["images"].size(), 7u);
  EXPECT_EQ(listing["factor_names"].size(), 17u);
  for (size_t i = 0; i < 7; ++i) {
    const json& entry = listing["images"][i];
    EXPECT_EQ(entry["label"], static_cast<int64_t>(i % 6));  // classes in turn
    EXPECT_EQ(entry["factors"].size(), 17u);
    const auto image = read_image(dir / "real" / entry["file"].get<std::string>());
    EXPECT_EQ(image.sizes(), (std::vector<int64_t>{1, 3, 48, 48}));
  }
  // Fashion class names become plain file names ("T-shirt/top" has a slash).
  ASSERT_EQ(run_cli("render --world fashion --count 20 -o " + (dir / "fashion").string()).exit_code, 0);
  for (const auto& entry : fs::directory_iterator(dir / "fashion"))
    EXPECT_TRUE(entry.is_regular_file()) << entry.path();
  // Bad requests fail with one line naming the option, and write nothing.
  const CommandResult past_end = run_cli("render --world fashion --count 5 --seed 9998 -o " + (dir / "none").string());
  EXPECT_NE(past_end.exit_code, 0);
  EXPECT_NE(past_end.output.find("--seed"), std::string::npos) << past_end.output;
  EXPECT_NE(run_cli("render --world shapes --count 0 -o " + (dir / "none").string()).exit_code, 0);
  EXPECT_FALSE(fs::exists(dir / "none"));
}

// ---------------------------------------------------------------------------------------------
// sweep, export and probe. The tests share one fitted tiny study (32 units, 3 classes, k-means
// parts); each works on its own copy with small [sweep] settings.

// Sets `key = value` lines of study.toml's [sweep] table.
void set_sweep_settings(const fs::path& study, const std::vector<std::pair<std::string, std::string>>& settings) {
  std::string text = bytes_of(study / "study.toml");
  const size_t table = text.find("\n[sweep]\n");
  ASSERT_NE(table, std::string::npos) << text;
  for (const auto& [key, value] : settings) {
    const size_t next_table = text.find("\n[", table + 1);
    const size_t at = text.find("\n" + key + " = ", table);
    if (at == std::string::npos || at > next_table) {
      ADD_FAILURE() << "no sweep." << key << " in study.toml:\n" << text;
      continue;
    }
    const size_t end = text.find('\n', at + 1);
    text.replace(at + 1, (end == std::string::npos ? text.size() : end) - at - 1, key + " = " + value);
  }
  write_bytes(study / "study.toml", text);
}

// The lines of a text file (without their '\n').
std::vector<std::string> lines_of(const fs::path& file) {
  std::vector<std::string> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The first `count` comma-separated fields of a CSV line (as numbers; the key columns).
std::vector<int64_t> key_fields(const std::string& line, size_t count) {
  std::vector<int64_t> keys;
  size_t begin = 0;
  while (keys.size() < count && begin <= line.size()) {
    const size_t end = std::min(line.find(',', begin), line.size());
    try {
      keys.push_back(std::stoll(line.substr(begin, end - begin)));
    } catch (const std::exception&) {
      keys.push_back(-1);
    }
    begin = end + 1;
  }
  return keys;
}

constexpr int64_t kTinyUnits = 32, kTinyClasses = 3;

class CliSweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = std::make_unique<ScratchDir>("cli-sweep");
    fitted_ = root_->path() / "fitted";
    cli_ok("init " + q(fitted_) + " --tiny --samples-per-class 100");
    cli_ok("--threads 1 pairs -s " + q(fitted_));
    cli_ok("fit -s " + q(fitted_));
  }
  static void TearDownTestSuite() { root_.reset(); }

  // A folder of its own for the test, with a copy of the fitted study (without its linking
  // network when `fitted` is false) in `<folder>/<name>`.
  fs::path study_copy(const std::string& name, bool fitted = true) {
    const fs::path copy = root_->path() / name;
    fs::create_directories(copy);
    for (const char* part : {"study.toml", "models", "pairs", "linking"})
      if (fitted || std::string(part) != "linking") fs::copy(fitted_ / part, copy / part, fs::copy_options::recursive);
    return copy;
  }

  static std::unique_ptr<ScratchDir> root_;
  static fs::path fitted_;
};
std::unique_ptr<ScratchDir> CliSweep::root_;
fs::path CliSweep::fitted_;

TEST_F(CliSweep, SweepAndExportEndToEnd) {
  const fs::path study = study_copy("e2e");
  // study.toml asks for other units, steps and samples than the options: the options win.
  set_sweep_settings(study, {{"units", "[1, 2]"},
                             {"null_directions", "8"},
                             {"null_bins", "1"},
                             {"strip_units", "1"},
                             {"strip_samples", "1"}});
  const std::string sweep_arguments = "--threads 1 sweep -s " + q(study) +
                                      " --units 0,3,5 --steps 4 --samples-per-class 3 --batch-size 16 "
                                      "--parts kmeans --strip-units 5";
  const CommandResult sweep = run_cli(sweep_arguments);
  ASSERT_EQ(sweep.exit_code, 0) << sweep.output;
  const fs::path database = study / "sweeps" / "results.sqlite";
  EXPECT_TRUE(fs::exists(database));
  // One summary line (the progress bar goes elsewhere when the output is not a terminal).
  ASSERT_FALSE(sweep.output.empty());
  EXPECT_EQ(sweep.output.find('\n'), sweep.output.size() - 1) << sweep.output;
  EXPECT_NE(sweep.output.find(database.string()), std::string::npos) << sweep.output;
  EXPECT_NE(sweep.output.find("3 units (0 resumed)"), std::string::npos) << sweep.output;
  EXPECT_NE(sweep.output.find("kmeans"), std::string::npos) << sweep.output;

  const int64_t samples = 3 * kTinyClasses, steps = 4;
  ASSERT_TRUE(fs::exists(study / "sweeps" / "summary.json"));
  const json summary = json::parse(bytes_of(study / "sweeps" / "summary.json"));
  EXPECT_EQ(summary.value("units", 0), 3) << summary.dump();
  EXPECT_EQ(summary.value("units_resumed", -1), 0);
  EXPECT_GE(summary.value("images", 0), 3 * samples * steps);
  // Strips: the asked-for unit 5 (and the top unit), never a unit that was not swept.
  ASSERT_TRUE(summary.contains("strips")) << summary.dump();
  bool unit5_strip = false;
  for (const auto& strip : summary["strips"]) {
    const fs::path file = strip.get<std::string>();
    EXPECT_TRUE(fs::exists(file)) << file;
    EXPECT_EQ(file.parent_path(), study / "sweeps" / "strips");
    const std::string name = file.filename().string();
    EXPECT_TRUE(name.rfind("unit-00000-", 0) == 0 || name.rfind("unit-00003-", 0) == 0 ||
                name.rfind("unit-00005-", 0) == 0)
        << name;
    unit5_strip |= name.rfind("unit-00005-sample-", 0) == 0;
  }
  EXPECT_TRUE(unit5_strip) << summary["strips"].dump();

  // export, with --json: one row per unit and per (unit, sample, step).
  const json written = cli_json("export -s " + q(study) + " units steps");
  ASSERT_TRUE(written.contains("units") && written.contains("steps")) << written.dump();
  EXPECT_EQ(written["units"].value("rows", 0), 3) << written.dump();
  EXPECT_EQ(written["steps"].value("rows", 0), 3 * samples * steps) << written.dump();
  const fs::path csv = study / "sweeps" / "csv";
  EXPECT_EQ(fs::path(written["units"].value("file", "")), csv / "units.csv");
  const auto units = lines_of(csv / "units.csv");
  ASSERT_EQ(units.size(), 4u) << bytes_of(csv / "units.csv");
  EXPECT_EQ(units[0].rfind("unit,", 0), 0u) << units[0];
  std::vector<int64_t> unit_ids;
  for (size_t i = 1; i < units.size(); ++i) unit_ids.push_back(key_fields(units[i], 1)[0]);
  std::sort(unit_ids.begin(), unit_ids.end());
  EXPECT_EQ(unit_ids, (std::vector<int64_t>{0, 3, 5}));
  const auto step_lines = lines_of(csv / "steps.csv");
  ASSERT_EQ(int64_t(step_lines.size()), 1 + 3 * samples * steps);
  EXPECT_EQ(step_lines[0].rfind("unit,sample,step,", 0), 0u) << step_lines[0];
  std::set<std::vector<int64_t>> step_keys;
  for (size_t i = 1; i < step_lines.size(); ++i) {
    const auto key = key_fields(step_lines[i], 3);
    EXPECT_TRUE(key[0] == 0 || key[0] == 3 || key[0] == 5) << step_lines[i];
    EXPECT_TRUE(key[1] >= 0 && key[1] < samples && key[2] >= 0 && key[2] < steps) << step_lines[i];
    step_keys.insert(key);
  }
  EXPECT_EQ(int64_t(step_keys.size()), 3 * samples * steps) << "duplicate (unit, sample, step) rows";

  // The default table is units; -o writes elsewhere and only there.
  const fs::path elsewhere = root_->path() / "e2e-csv";
  const std::string exported = cli_ok("export -s " + q(study) + " -o " + q(elsewhere));
  EXPECT_NE(exported.find(elsewhere.string()), std::string::npos) << exported;
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(elsewhere)) files.push_back(entry.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"units.csv"});
  EXPECT_EQ(bytes_of(elsewhere / "units.csv"), bytes_of(csv / "units.csv"));

  // Running the same sweep again resumes everything and renders nothing; the results stay.
  const json again = cli_json(sweep_arguments);
  EXPECT_EQ(again.value("units", 0), 3) << again.dump();
  EXPECT_EQ(again.value("units_resumed", 0), 3) << again.dump();
  EXPECT_EQ(again.value("images", -1), 0) << again.dump();
  EXPECT_EQ(fs::path(again.value("database", "")), database);
  EXPECT_EQ(again.value("part_source", ""), "kmeans");
  cli_ok("export -s " + q(study) + " units steps -o " + q(root_->path() / "e2e-again"));
  EXPECT_EQ(bytes_of(root_->path() / "e2e-again" / "units.csv"), bytes_of(csv / "units.csv"));
  EXPECT_EQ(bytes_of(root_->path() / "e2e-again" / "steps.csv"), bytes_of(csv / "steps.csv"));

  for (const auto& entry : fs::recursive_directory_iterator(study))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
}

// Committed rows of a results database's units table; 0 while it or the table does not exist.
int64_t committed_units(const fs::path& database) {
  if (!fs::exists(database)) return 0;
  try {
    Database db(database, Database::Mode::open_existing);
    return db.query_int("SELECT COUNT(*) FROM units").value_or(0);
  } catch (const std::exception&) {
    return 0;
  }
}

// A sweep of one unit per transaction that takes a few seconds: all 32 units over 18 samples and
// 5 steps.
constexpr int64_t kSlowSweepSamples = 6 * kTinyClasses, kSlowSweepSteps = 5;
void set_slow_sweep_settings(const fs::path& study) {
  set_sweep_settings(study, {{"units_per_chunk", "1"},
                             {"samples_per_class", "6"},
                             {"steps", "5"},
                             {"null_directions", "8"},
                             {"null_bins", "1"},
                             {"strip_units", "0"}});
}

// Starts a sweep of `study` and waits (up to 120 s) until it has committed a unit.
pid_t sweep_until_first_unit(const fs::path& study) {
  const pid_t pid = spawn_cli({"--threads", "1", "sweep", "-s", study.string()});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (pid > 0 && committed_units(study / "sweeps" / "results.sqlite") < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return pid;
}

TEST_F(CliSweep, CtrlCStopsAfterAChunkWithStatus130AndTheSweepResumes) {
  const fs::path study = study_copy("interrupted");
  const int64_t samples = kSlowSweepSamples, steps = kSlowSweepSteps;
  set_slow_sweep_settings(study);
  const pid_t pid = sweep_until_first_unit(study);
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "Ctrl-C must end the sweep cleanly, status " << status;
  if (WEXITSTATUS(status) == 0) {
    std::cout << "[ NOTE     ] the sweep finished before Ctrl-C reached it\n";
    return;
  }
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const json partial = cli_json("export -s " + q(study) + " units steps -o " + q(root_->path() / "interrupted-csv"));
  const int64_t partial_units = partial["units"].value("rows", -1);
  EXPECT_GE(partial_units, 1);
  EXPECT_LT(partial_units, kTinyUnits);
  EXPECT_EQ(partial["steps"].value("rows", -1), partial_units * samples * steps) << "half a chunk committed";
  const json resumed = cli_json("--threads 1 sweep -s " + q(study));
  EXPECT_EQ(resumed.value("units_resumed", -1), partial_units) << resumed.dump();
  EXPECT_EQ(resumed.value("images", -1), (kTinyUnits - partial_units) * samples * steps) << resumed.dump();
}

TEST_F(CliSweep, KilledSweepResumesToTheSameTables) {
  const fs::path killed = study_copy("killed"), full = study_copy("full");
  const int64_t samples = kSlowSweepSamples, steps = kSlowSweepSteps;
  for (const auto& study : {killed, full}) set_slow_sweep_settings(study);
  const fs::path database = killed / "sweeps" / "results.sqlite";
  const pid_t pid = sweep_until_first_unit(killed);
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const bool killed_midway = WIFSIGNALED(status);
  if (!killed_midway) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the sweep failed, status " << status;
    std::cout << "[ NOTE     ] the sweep finished before it could be killed: only the straight-run checks ran\n";
  }
  ASSERT_GE(committed_units(database), 1) << "no unit committed within 120 s";

  // What the killed run left: whole units only.
  const json partial = cli_json("export -s " + q(killed) + " units steps -o " + q(root_->path() / "killed-partial"));
  const int64_t partial_units = partial["units"].value("rows", -1);
  EXPECT_GE(partial_units, 1) << partial.dump();
  if (killed_midway) {
    EXPECT_LT(partial_units, kTinyUnits) << partial.dump();
  }
  EXPECT_EQ(partial["steps"].value("rows", -1), partial_units * samples * steps) << "half a chunk committed";
  std::cout << "[ NOTE     ] killed after " << partial_units << " of " << kTinyUnits << " units\n";

  const json resumed = cli_json("--threads 1 sweep -s " + q(killed));
  EXPECT_EQ(resumed.value("units", 0), kTinyUnits) << resumed.dump();
  EXPECT_EQ(resumed.value("units_resumed", -1), partial_units) << resumed.dump();
  EXPECT_EQ(resumed.value("images", -1), (kTinyUnits - partial_units) * samples * steps) << resumed.dump();
  cli_ok("--threads 1 sweep -s " + q(full));

  const std::vector<std::string> tables = {"units", "steps", "part_changes", "selectivity", "null_changes"};
  std::string table_arguments;
  for (const auto& table : tables) table_arguments += " " + table;
  const fs::path killed_csv = root_->path() / "killed-csv", full_csv = root_->path() / "full-csv";
  cli_ok("export -s " + q(killed) + table_arguments + " -o " + q(killed_csv));
  cli_ok("export -s " + q(full) + table_arguments + " -o " + q(full_csv));

  // Exactly one row per unit and per (unit, sample, step).
  const auto units = lines_of(killed_csv / "units.csv");
  std::vector<int64_t> unit_ids;
  for (size_t i = 1; i < units.size(); ++i) unit_ids.push_back(key_fields(units[i], 1)[0]);
  std::sort(unit_ids.begin(), unit_ids.end());
  std::vector<int64_t> all_units(kTinyUnits);
  for (int64_t u = 0; u < kTinyUnits; ++u) all_units[u] = u;
  EXPECT_EQ(unit_ids, all_units);
  const auto step_lines = lines_of(killed_csv / "steps.csv");
  EXPECT_EQ(int64_t(step_lines.size()), 1 + kTinyUnits * samples * steps);
  std::set<std::vector<int64_t>> step_keys;
  for (size_t i = 1; i < step_lines.size(); ++i) step_keys.insert(key_fields(step_lines[i], 3));
  EXPECT_EQ(int64_t(step_keys.size()), kTinyUnits * samples * steps) << "duplicate (unit, sample, step) rows";
  // The selectivity comparison below means something only with rows.
  EXPECT_GT(lines_of(full_csv / "selectivity.csv").size(), 1u);

  // The same tables as the uninterrupted run.
  for (const auto& table : tables) {
    const std::string a = bytes_of(killed_csv / (table + ".csv")), b = bytes_of(full_csv / (table + ".csv"));
    EXPECT_FALSE(b.empty()) << table;
    EXPECT_TRUE(a == b) << table << ".csv differs between the resumed and the uninterrupted run";
  }
}

// Splits a CSV line at its commas (the tables tested here have no quoted fields).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields;
  size_t begin = 0;
  for (size_t end; (end = line.find(',', begin)) != std::string::npos; begin = end + 1)
    fields.push_back(line.substr(begin, end - begin));
  fields.push_back(line.substr(begin));
  return fields;
}

TEST_F(CliSweep, SweepErrors) {
  // No linking network yet.
  const fs::path unfitted = study_copy("errors-unfitted", false);
  EXPECT_EQ(run_cli("sweep -s " + q(unfitted)).exit_code, 2);
  expect_cli_error("sweep -s " + q(unfitted), "linking.safetensors", unfitted);
  // Bad options: nothing is written.
  const fs::path study = study_copy("errors-options");
  expect_cli_error("sweep -s " + q(study) + " --steps 1", "--steps", study);
  expect_cli_error("sweep -s " + q(study) + " --samples-per-class -1", "--samples-per-class", study);
  expect_cli_error("sweep -s " + q(study) + " --parts bogus", "--parts", study);
  expect_cli_error("sweep -s " + q(study) + " --units 0,99", "99", study);
  EXPECT_FALSE(fs::exists(study / "sweeps"));
}

TEST_F(CliSweep, ExportAndProbeErrors) {
  const fs::path study = study_copy("errors-export");
  // No sweep yet.
  expect_cli_error("export -s " + q(study), "results.sqlite", study);
  expect_cli_error("probe -s " + q(study) + " --images 60", "results.sqlite", study);
  EXPECT_FALSE(fs::exists(study / "sweeps"));

  // A small sweep whose loose thresholds make units expressible and labelled (with k-means part
  // names, "cluster N").
  set_sweep_settings(study, {{"null_directions", "8"},
                             {"null_bins", "1"},
                             {"strip_units", "0"},
                             {"min_gain", "0"},
                             {"min_correlation", "-1"},
                             {"min_specificity", "0"},
                             {"significance", "0.5"}});
  cli_ok("--threads 1 sweep -s " + q(study) + " --units 0,1,2 --steps 2 --samples-per-class 2");

  // Unknown tables name themselves and write nothing.
  const fs::path output = root_->path() / "errors-export-csv";
  fs::create_directories(output);
  expect_cli_error("export -s " + q(study) + " -o " + q(output) + " no_such_table", "no_such_table", study);
  expect_cli_error("export -s " + q(study) + " -o " + q(output) + " Bad-Name", "Bad-Name", study);
  EXPECT_TRUE(fs::is_empty(output));
  // A good name before a bad one writes nothing either, and the default folder is not made.
  expect_cli_error("export -s " + q(study) + " units no_such_table", "no_such_table", study);
  EXPECT_FALSE(fs::exists(study / "sweeps" / "csv"));

  // The probe case below fails for the part names only if a labelled expressible unit exists.
  cli_ok("export -s " + q(study) + " -o " + q(output));
  const auto units = lines_of(output / "units.csv");
  ASSERT_GE(units.size(), 2u);
  const auto header = csv_fields(units[0]);
  const auto column = [&](const std::string& name) {
    return size_t(std::find(header.begin(), header.end(), name) - header.begin());
  };
  const size_t expressible = column("expressible"), label_part = column("label_part");
  ASSERT_LT(std::max(expressible, label_part), header.size()) << units[0];
  int64_t labelled_expressible = 0;
  for (size_t i = 1; i < units.size(); ++i) {
    const auto fields = csv_fields(units[i]);
    ASSERT_EQ(fields.size(), header.size()) << units[i];
    labelled_expressible += fields[expressible] == "1" && !fields[label_part].empty();
  }
  ASSERT_GE(labelled_expressible, 1) << bytes_of(output / "units.csv");

  // probe: bad options, and the tiny study is no shapes study (its classifier is not the shapes
  // world's and its part names are not shapes parts).
  expect_cli_error("probe -s " + q(study) + " --images 5", "--images", study);
  expect_cli_error("probe -s " + q(study) + " --images 60", "shapes", study);
  EXPECT_FALSE(fs::exists(study / "sweeps" / "ground_truth.json"));
}

TEST(Cli, HelpForSweepExportAndProbe) {
  const CommandResult top = run_cli("--help");
  EXPECT_EQ(top.exit_code, 0) << top.output;
  const std::map<std::string, std::vector<std::string>> options = {
      {"sweep", {"--study", "--units", "--steps", "--samples-per-class", "--batch-size", "--parts", "--strip-units"}},
      {"export", {"--study", "tables", "--output", "units", "selectivity"}},
      {"probe", {"--study", "--images", "--seed", "--top"}},
  };
  for (const auto& [command, names] : options) {
    EXPECT_NE(top.output.find(command), std::string::npos) << command << " not in:\n" << top.output;
    const CommandResult help = run_cli(command + " --help");
    EXPECT_EQ(help.exit_code, 0) << command << ":\n" << help.output;
    for (const auto& name : names)
      EXPECT_NE(help.output.find(name), std::string::npos) << name << " not in " << command << " --help:\n"
                                                           << help.output;
  }
  EXPECT_NE(run_cli("sweep --no-such-option").exit_code, 0);
}

}  // namespace
}  // namespace linkstyle
