// Tests for the training-run skeleton (train/training_run.hpp) with a tiny trainer whose state is
// one number: options, resume, log truncation, refused checkpoints, divergence, model and card.
#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/train/training_run.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

// Adds each step's number to a total; its setting is `tag`, and it diverges at `nan_at`.
class SummingSteps final : public TrainingSteps {
 public:
  explicit SummingSteps(int64_t tag = 1, int64_t nan_at = 0) : tag_(tag), nan_at_(nan_at) {}

  void start_fresh() override { total = 0; }
  void check_settings(torch::serialize::InputArchive& checkpoint, const fs::path& file) override {
    c10::IValue tag;
    checkpoint.read("tag", tag);
    if (tag.toInt() != tag_) throw Error(file, "was made for tag " + std::to_string(tag.toInt()));
  }
  void restore_state(torch::serialize::InputArchive& checkpoint) override {
    c10::IValue value;
    checkpoint.read("total", value);
    total = value.toInt();
    restored = true;
  }
  void save_state(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("total", c10::IValue(total));
  }
  void save_settings(torch::serialize::OutputArchive& checkpoint) override {
    checkpoint.write("tag", c10::IValue(tag_));
  }
  StepRecord step(int64_t step) override {
    total += step;
    const double loss = step == nan_at_ ? std::numeric_limits<double>::quiet_NaN() : 1.0 / double(step);
    return {{loss}, std::to_string(total)};
  }
  void after_checkpoint() override { ++checkpoints; }

  int64_t total = -1, checkpoints = 0;
  bool restored = false;

 private:
  int64_t tag_, nan_at_;
};

TrainingRunOptions options_for(const fs::path& output, int64_t steps) {
  TrainingRunOptions options;
  options.output = output;
  options.steps = steps;
  options.checkpoint_every = 2;
  options.log_header = "step,total,seconds";
  options.label = "sum";
  options.progress = false;
  options.command_line = "linkstyle train sum";
  return options;
}

// The log's rows without their seconds column.
std::vector<std::string> log_rows(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line.substr(0, line.rfind(',')));
  return rows;
}

TEST(TrainingRun, RefusesBadOptionsBeforeWritingAnything) {
  ScratchDir dir("training_run_options");
  auto options = options_for(dir / "m.pt", 3);
  options.output.clear();
  testing::expect_error([&] { TrainingRun run(options); }, {"--output"});
  options = options_for(dir / "m.pt", 0);
  testing::expect_error([&] { TrainingRun run(options); }, {"--steps"});
  options = options_for(dir / "m.pt", 3);
  options.checkpoint_every = 0;
  testing::expect_error([&] { TrainingRun run(options); }, {"--checkpoint-every"});
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(TrainingRun, NamesItsFilesAfterTheOutputAndCheckpointsEveryFewSteps) {
  ScratchDir dir("training_run_files");
  TrainingRun run(options_for(dir / "m.pt", 5));
  SummingSteps steps;
  run.train(steps);
  const TrainingRunResult& result = run.result();
  EXPECT_EQ(result.model, dir / "m.pt");
  EXPECT_EQ(result.card, dir / "m.pt.json");
  EXPECT_EQ(result.log, dir / "m.pt.log.csv");
  EXPECT_EQ(result.checkpoint, dir / "m.pt.checkpoint" / "checkpoint.pt");
  EXPECT_EQ(result.steps, 5);
  EXPECT_EQ(result.resumed_from, 0);
  EXPECT_EQ(steps.total, 15);
  EXPECT_EQ(steps.checkpoints, 3);  // steps 2, 4 and the last
  EXPECT_EQ(log_rows(result.log), (std::vector<std::string>{"step,total", "1,1", "2,3", "3,6", "4,10", "5,15"}));
  EXPECT_TRUE(fs::exists(result.checkpoint));
}

TEST(TrainingRun, ResumesWhereTheCheckpointStoppedLikeAStraightRun) {
  ScratchDir dir("training_run_resume");
  {
    TrainingRun first(options_for(dir / "m.pt", 4));
    SummingSteps steps;
    first.train(steps);
  }
  // A stale row past the checkpoint (as after kill -9) is redone, not duplicated.
  { std::ofstream(dir / "m.pt.log.csv", std::ios::app) << "5,999,1.0\n"; }
  TrainingRun second(options_for(dir / "m.pt", 7));
  SummingSteps resumed;
  second.train(resumed);
  EXPECT_TRUE(resumed.restored);
  EXPECT_EQ(second.result().resumed_from, 4);
  EXPECT_EQ(second.result().steps, 7);

  TrainingRun straight(options_for(dir / "s.pt", 7));
  SummingSteps fresh;
  straight.train(fresh);
  EXPECT_FALSE(fresh.restored);
  EXPECT_EQ(resumed.total, fresh.total);
  EXPECT_EQ(log_rows(second.result().log), log_rows(straight.result().log));
}

TEST(TrainingRun, RefusesACheckpointWithOtherSettingsOrPastTheLastStep) {
  ScratchDir dir("training_run_refused");
  {
    TrainingRun run(options_for(dir / "m.pt", 4));
    SummingSteps steps;
    run.train(steps);
  }
  TrainingRun other(options_for(dir / "m.pt", 6));
  SummingSteps other_steps(2);
  testing::expect_error([&] { other.train(other_steps); }, {"checkpoint.pt", "tag 1"});
  TrainingRun shorter(options_for(dir / "m.pt", 3));
  SummingSteps steps;
  testing::expect_error([&] { shorter.train(steps); }, {"--steps", "at step 4"});
}

TEST(TrainingRun, StopsWhenALossIsNotFinite) {
  ScratchDir dir("training_run_diverged");
  TrainingRun run(options_for(dir / "m.pt", 5));
  SummingSteps steps(1, 3);
  testing::expect_error([&] { run.train(steps); }, {"m.pt", "diverged at step 3"});
  EXPECT_EQ(log_rows(dir / "m.pt.log.csv"), (std::vector<std::string>{"step,total", "1,1", "2,3"}));
}

TEST(TrainingRun, WritesTheModelAndCompletesItsCard) {
  ScratchDir dir("training_run_card");
  TrainingRun run(options_for(dir / "m.pt", 2));
  SummingSteps steps;
  run.train(steps);
  torch::jit::Module module("Tiny");
  module.register_parameter("weight", torch::ones({2}), false);
  run.save_model(module);
  EXPECT_TRUE(torch::equal(torch::jit::load((dir / "m.pt").string()).attr("weight").toTensor(), torch::ones({2})));
  run.write_card({{"world", "sum"}});
  const auto card = nlohmann::json::parse(std::ifstream(dir / "m.pt.json"));
  EXPECT_EQ(card.at("world"), "sum");
  EXPECT_EQ(card.at("steps"), 2);
  EXPECT_EQ(card.at("command_line"), "linkstyle train sum");
  EXPECT_DOUBLE_EQ(card.at("training_seconds").get<double>(), run.result().training_seconds);
  EXPECT_TRUE(card.contains("git_revision"));
  EXPECT_FALSE(own_command_line().empty());
}

}  // namespace
}  // namespace linkstyle
