// One run of a built-in trainer: checkpoint, resume, log, model and card (see training_run.hpp).
#include "linkstyle/train/training_run.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/progress.hpp"
#include "train/training_common.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// 40-hex HEAD of the git repository around the working folder, or "unknown".
std::string git_revision() {
  std::string out;
  if (FILE* pipe = popen("git rev-parse HEAD 2>/dev/null", "r")) {
    char buffer[128];
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    if (pclose(pipe) != 0) out.clear();
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.size() == 40 ? out : "unknown";
}

// Rewrites the CSV log atomically keeping `header` and the rows whose first field <= last_step.
void truncate_log(const fs::path& log, int64_t last_step, const std::string& header) {
  std::string kept = header + "\n";
  std::ifstream in(log);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      continue;
    }
    if (line.empty()) continue;
    if (std::stoll(line.substr(0, line.find(','))) <= last_step) kept += line + "\n";
  }
  in.close();
  write_file_atomically(log, kept);
}

// "step,<fields>,seconds\n" with the seconds to the millisecond.
std::string log_row(int64_t step, const std::string& fields, double seconds) {
  char seconds_text[64];
  std::snprintf(seconds_text, sizeof seconds_text, "%.3f", seconds);
  return std::to_string(step) + "," + fields + "," + seconds_text + "\n";
}

}  // namespace

TrainingRun::TrainingRun(TrainingRunOptions options) : options_(std::move(options)) {
  if (options_.output.empty()) throw Error("--output", "pass the model file to write (-o FILE)");
  if (options_.steps < 1) throw Error("--steps", "must be >= 1, got " + std::to_string(options_.steps));
  if (options_.checkpoint_every < 1)
    throw Error("--checkpoint-every", "must be >= 1, got " + std::to_string(options_.checkpoint_every));
  result_.model = options_.output;
  result_.card = training::with_suffix(options_.output, ".json");
  result_.log = training::with_suffix(options_.output, ".log.csv");
  result_.checkpoint = training::with_suffix(options_.output, ".checkpoint") / "checkpoint.pt";
}

void TrainingRun::train(TrainingSteps& steps) {
  ensure_writable_directory(fs::absolute(options_.output).parent_path());
  ensure_writable_directory(result_.checkpoint.parent_path());
  torch::manual_seed(options_.seed);
  const bool resumed = fs::exists(result_.checkpoint);
  if (resumed)
    resume(steps);
  else
    steps.start_fresh();
  result_.resumed_from = result_.steps;
  open_log(resumed);
  std::ofstream log(result_.log, std::ios::app);
  if (!log) throw Error(result_.log, "cannot open for appending");

  ProgressBar bar(options_.label, options_.steps);
  if (!options_.progress) bar.finish();
  const auto run_start = std::chrono::steady_clock::now();
  const double seconds_before = result_.training_seconds;
  for (int64_t step = result_.steps + 1; step <= options_.steps; ++step) {
    const StepRecord record = steps.step(step);
    for (const double loss : record.losses)
      if (!std::isfinite(loss))
        throw Error(options_.output, "training diverged at step " + std::to_string(step) + " (loss is not finite)");
    result_.steps = step;
    result_.training_seconds =
        seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    log << log_row(step, record.fields, result_.training_seconds) << std::flush;
    if (step % options_.checkpoint_every == 0 || step == options_.steps) {
      write_checkpoint(steps);
      steps.after_checkpoint();
    }
    if (options_.progress) bar.set(step);
  }
  bar.finish();
}

void TrainingRun::resume(TrainingSteps& steps) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(result_.checkpoint.string());
    steps.check_settings(archive, result_.checkpoint);
    const int64_t step = training::read_value(archive, "step").toInt();
    if (step > options_.steps)
      throw Error("--steps", "the checkpoint in " + result_.checkpoint.parent_path().string() + " is already at step " +
                                 std::to_string(step) + ", past " + std::to_string(options_.steps));
    result_.training_seconds = training::read_value(archive, "seconds").toDouble();
    steps.restore_state(archive);
    result_.steps = step;
  } catch (const c10::Error& e) {
    throw Error(result_.checkpoint, std::string("cannot read the checkpoint: ") + e.what_without_backtrace());
  }
}

void TrainingRun::open_log(bool resumed) const {
  if (resumed && fs::exists(result_.log))
    truncate_log(result_.log, result_.steps, options_.log_header);
  else
    write_file_atomically(result_.log, options_.log_header + "\n");
}

void TrainingRun::write_checkpoint(TrainingSteps& steps) const {
  torch::serialize::OutputArchive archive;
  steps.save_state(archive);
  archive.write("step", c10::IValue(result_.steps));
  archive.write("seconds", c10::IValue(result_.training_seconds));
  steps.save_settings(archive);
  AtomicFile out(result_.checkpoint);
  archive.save_to(out.stream());
  out.commit();
}

void TrainingRun::save_model(const torch::jit::Module& model) const {
  AtomicFile out(result_.model);
  try {
    model.save(out.stream());
  } catch (const c10::Error& e) {
    throw Error(result_.model, std::string("cannot serialise the model: ") + e.what_without_backtrace());
  }
  out.commit();
}

void TrainingRun::write_card(nlohmann::json card) const {
  card["steps"] = result_.steps;
  card["command_line"] = options_.command_line;
  card["training_seconds"] = result_.training_seconds;
  card["git_revision"] = git_revision();
  write_file_atomically(result_.card, card.dump(2) + "\n");
}

std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!bytes.empty() && bytes.back() == '\0') bytes.pop_back();
  for (char& c : bytes)
    if (c == '\0') c = ' ';
  return bytes;
}

nlohmann::json TrainingRunResult::to_json() const {
  return {{"model", model.string()}, {"card", card.string()},        {"log", log.string()},
          {"steps", steps},          {"resumed_from", resumed_from}, {"training_seconds", training_seconds}};
}

std::string TrainingRunResult::resumed_text() const {
  return resumed_from > 0 ? ", resumed from step " + std::to_string(resumed_from) : std::string();
}

}  // namespace linkstyle
