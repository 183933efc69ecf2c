// linkstyle/train/training_run.hpp
//
// WHAT THIS REPRESENTS
//   One run of a built-in trainer: the part every trainer shares. The run's files lie beside the
//   model file `output`: the checkpoint <output>.checkpoint/checkpoint.pt, the CSV log
//   <output>.log.csv and the model card <output>.json. A run resumes from its checkpoint, performs
//   the steps with one log row each, a checkpoint every checkpoint_every steps and at the last
//   one, and a progress bar, then exports the model and its card. What differs between trainers
//   (the state to build or restore, the settings a resume must match, one step) is a
//   TrainingSteps that the trainer hands to train().
// REQUIRES
//   options.output is not empty, steps >= 1, checkpoint_every >= 1: the constructor throws
//   linkstyle::Error naming --output, --steps or --checkpoint-every otherwise, and writes nothing.
//   log_header starts with "step," and ends with ",seconds". The trainer checks its own options
//   and its data before train(), so that a refused run leaves no file behind.
// ENSURES
//   train() makes the output's folder and the checkpoint folder and seeds torch's global
//   generator with `seed`. With a checkpoint, it lets the steps check its settings (they throw
//   Error naming the checkpoint when they differ), refuses one past `steps` (Error naming
//   --steps) and restores the state; without one, the steps start afresh. The log keeps its
//   header and rows up to the checkpoint's step (a fresh run starts it anew). Each step s in
//   resumed_from + 1 .. steps appends "s,<the step's fields>,<seconds>" (%.3f) and flushes it; a
//   loss that is not finite throws Error naming the output. Every checkpoint_every steps and at
//   the last, the checkpoint is written atomically: the trainer's state, "step", "seconds", the
//   trainer's settings, in that order; then after_checkpoint() runs. Seconds count training time
//   over every run of the same output. save_model() writes a module atomically to the model
//   file; write_card() adds steps, command_line, training_seconds and git_revision (the 40-hex
//   HEAD around the working folder, or "unknown") to the card and writes it atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace torch::jit {
struct Module;
}
namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace linkstyle {

struct TrainingRunOptions {
  std::filesystem::path output;  // the model file; the run's other files are named after it
  int64_t steps = 0;             // the step the run ends at
  int64_t checkpoint_every = 0;
  uint64_t seed = 0;         // torch's global generator is seeded with it before the state is made
  std::string log_header;    // "step,<fields>,seconds"
  std::string label;         // the progress bar's
  bool progress = true;      // draw a ProgressBar (only on a terminal)
  std::string command_line;  // recorded in the model card
};

// What a run reached; each trainer's result adds its evaluation.
struct TrainingRunResult {
  int64_t steps = 0;            // steps done in total
  int64_t resumed_from = 0;     // step of the checkpoint resumed from (0: fresh start)
  double training_seconds = 0;  // over all runs, resumes included
  std::filesystem::path model, card, log, checkpoint;
  // {model, card, log, steps, resumed_from, training_seconds}
  nlohmann::json to_json() const;
  // ", resumed from step K", or "" after a fresh start.
  std::string resumed_text() const;
};

// What one step reports: losses that must be finite, and the log row's fields between the step
// and the seconds ("0.693147,0.500000").
struct StepRecord {
  std::vector<double> losses;
  std::string fields;
};

// The trainer's part of a run.
class TrainingSteps {
 public:
  virtual ~TrainingSteps() = default;
  // Builds the untrained state (no checkpoint).
  virtual void start_fresh() = 0;
  // Throws linkstyle::Error naming `file` when the checkpoint's settings differ from this run's.
  virtual void check_settings(torch::serialize::InputArchive& checkpoint, const std::filesystem::path& file) = 0;
  // Restores the state written by save_state (after check_settings).
  virtual void restore_state(torch::serialize::InputArchive& checkpoint) = 0;
  // The models and optimisers; then the settings a resume must match.
  virtual void save_state(torch::serialize::OutputArchive& checkpoint) = 0;
  virtual void save_settings(torch::serialize::OutputArchive& checkpoint) = 0;
  // Trains step `step` (1-based).
  virtual StepRecord step(int64_t step) = 0;
  // Runs after each checkpoint (a preview image, say).
  virtual void after_checkpoint() {}
};

// The run options of a trainer's options (output, steps, checkpoint_every, seed, progress,
// command_line), with its log header and the progress bar's label.
template <typename TrainerOptions>
TrainingRunOptions training_run_options(const TrainerOptions& options, std::string log_header, std::string label) {
  TrainingRunOptions run;
  run.output = options.output;
  run.steps = options.steps;
  run.checkpoint_every = options.checkpoint_every;
  run.seed = options.seed;
  run.log_header = std::move(log_header);
  run.label = std::move(label);
  run.progress = options.progress;
  run.command_line = options.command_line;
  return run;
}

class TrainingRun {
 public:
  explicit TrainingRun(TrainingRunOptions options);

  // Resumes or starts, then trains up to options.steps (see ENSURES).
  void train(TrainingSteps& steps);
  // The files and, after train(), the steps and seconds reached.
  const TrainingRunResult& result() const { return result_; }

  // Writes `model` to the model file atomically; Error naming the file when it cannot.
  void save_model(const torch::jit::Module& model) const;
  // Completes the model card with the run's fields and writes it atomically.
  void write_card(nlohmann::json card) const;

 private:
  void resume(TrainingSteps& steps);
  void open_log(bool resumed) const;
  void write_checkpoint(TrainingSteps& steps) const;

  TrainingRunOptions options_;
  TrainingRunResult result_;
};

// This process's command line (/proc/self/cmdline, arguments joined by spaces; empty when
// unavailable), for TrainingRunOptions::command_line.
std::string own_command_line();

}  // namespace linkstyle
