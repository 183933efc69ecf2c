// Tests of the linkstyle command line, run as a separate process: the whole workflow, resuming
// after kill -9, one-line errors that leave no half-written files, and --help.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "linkstyle/linking.hpp"
#include "linkstyle/reconstruct.hpp"
#include "linkstyle/tiny_models.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CommandResult;
using testing::run_cli;
using testing::ScratchDir;

// Single-quotes a path for the shell.
std::string q(const fs::path& path) {
  std::string quoted = "'";
  for (char ch : path.string()) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

std::string bytes_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Runs the CLI and expects exit 0; returns the output.
std::string cli_ok(const std::string& arguments) {
  const CommandResult result = run_cli(arguments);
  EXPECT_EQ(result.exit_code, 0) << "linkstyle " << arguments << "\n" << result.output;
  return result.output;
}

// Runs the CLI with --json and parses its output.
json cli_json(const std::string& arguments) {
  const std::string output = cli_ok("--json " + arguments);
  try {
    return json::parse(output);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "linkstyle --json " << arguments << ": output is not JSON (" << e.what() << "):\n" << output;
    return json::object();
  }
}

// Every file and folder under `folder` with its content ("<dir>" for folders).
std::map<std::string, std::string> snapshot(const fs::path& folder) {
  std::map<std::string, std::string> files;
  if (!fs::exists(folder)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    const std::string name = fs::relative(entry.path(), folder).string();
    files[name] = entry.is_directory() ? std::string("<dir>") : bytes_of(entry.path());
  }
  return files;
}

std::string describe_changes(const std::map<std::string, std::string>& before,
                             const std::map<std::string, std::string>& after) {
  std::string text;
  for (const auto& [name, content] : after) {
    auto it = before.find(name);
    if (it == before.end()) text += "  new: " + name + "\n";
    else if (it->second != content) text += "  changed: " + name + "\n";
  }
  for (const auto& [name, content] : before)
    if (!after.count(name)) text += "  removed: " + name + "\n";
  return text;
}

// Runs a command that must fail: exit status != 0, output one line "error: ..." naming
// `names`, and `watched` (a folder) unchanged, without temporary files.
void expect_cli_error(const std::string& arguments, const std::string& names, const fs::path& watched) {
  SCOPED_TRACE("linkstyle " + arguments);
  const auto before = snapshot(watched);
  const CommandResult result = run_cli(arguments);
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_LT(result.exit_code, 128) << "crashed: " << result.output;
  EXPECT_EQ(result.output.rfind("error: ", 0), 0u) << result.output;
  ASSERT_FALSE(result.output.empty());
  EXPECT_EQ(result.output.back(), '\n') << result.output;
  EXPECT_EQ(result.output.find('\n'), result.output.size() - 1) << "more than one line:\n" << result.output;
  EXPECT_NE(result.output.find(names), std::string::npos) << "'" << names << "' not in: " << result.output;
  const auto after = snapshot(watched);
  EXPECT_TRUE(before == after) << "files changed:\n" << describe_changes(before, after);
  for (const auto& [name, content] : after)
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << "temporary file left: " << name;
}

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
  EXPECT_EQ(info["generator_classes"].size(), 3u);
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
  expect_cli_error("reconstruct -s " + q(fresh) + " --linking " + q(foreign) + " " + q(image_),
                   "foreign.safetensors", fresh);
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
  expect_cli_error("init " + q(parent / "s1") + " --tiny --psi 5", "study.toml", parent);
  expect_cli_error("init " + q(parent / "s2") + " --tiny --classes 7", "--classes", parent);
  expect_cli_error("init " + q(parent / "s3") + " --tiny --seed 18446744073709551615", "study.toml", parent);
  expect_cli_error("init " + q(parent / "s5") + " --classifier " + q(parent / "none.pt") + " --generator " +
                       q(fitted_ / "models" / "tiny_generator.pt"),
                   "none.pt", parent);
  // An existing folder keeps what it had.
  const fs::path existing = parent / "existing";
  fs::create_directories(existing);
  write_bytes(existing / "notes.txt", "mine");
  expect_cli_error("init " + q(existing) + " --tiny --psi 5", "study.toml", parent);
  // A failed --force keeps the previous study.toml.
  const fs::path study = study_copy("init-force", false);
  expect_cli_error("init --force " + q(study) + " --tiny --batch-size 0", "batch_size", study);
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
  for (const char* command : {"init", "info", "pairs", "fit", "sample", "reconstruct", "render",
                              "train generator", "eval generator"}) {
    const std::string first_word = std::string(command).substr(0, std::string(command).find(' '));
    EXPECT_NE(top.output.find(first_word), std::string::npos) << command << " not in:\n" << top.output;
    const CommandResult help = run_cli(std::string(command) + " --help");
    EXPECT_EQ(help.exit_code, 0) << command << ":\n" << help.output;
    EXPECT_NE(help.output.find(std::string(command).substr(std::string(command).rfind(' ') + 1)),
              std::string::npos) << help.output;
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
  const CommandResult past_end =
      run_cli("render --world fashion --count 5 --seed 9998 -o " + (dir / "none").string());
  EXPECT_NE(past_end.exit_code, 0);
  EXPECT_NE(past_end.output.find("--seed"), std::string::npos) << past_end.output;
  EXPECT_NE(run_cli("render --world shapes --count 0 -o " + (dir / "none").string()).exit_code, 0);
  EXPECT_FALSE(fs::exists(dir / "none"));
}

}  // namespace
}  // namespace linkstyle
