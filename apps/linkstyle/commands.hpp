// The linkstyle command line: one file per subcommand, each only parses, calls the library and
// prints (a one-line summary, or JSON with --json).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "linkstyle/distributed.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/runtime.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle::cli {

struct GlobalOptions {
  RuntimeOptions runtime;
  bool json = false;
  std::string command_line;  // the arguments, for the ranks of a job to compare
  // The flag that sets each library setting ("sweep.steps" -> --steps), for its errors.
  std::multimap<std::string, const CLI::Option*> setting_flags;
};

// Records that `flag` sets `setting`: a SettingError about it names the flag when it was given.
void map_setting(GlobalOptions& global, const std::string& setting, const CLI::Option* flag);

// Prints `summary` as JSON (with --json) or the human line; with a job (rank 0's), also what its
// ranks sent ("job": ranks, bytes sent and received, seconds rank 0 waited for results and
// recorded them).
void print_summary(const GlobalOptions& global, const nlohmann::json& summary, const std::string& line,
                   const DistributedJob* job = nullptr);
// Prints each warning of a stage (a JSON array of strings) as "warning: ..." on stderr.
void print_warnings(const nlohmann::json& warnings);

// Loads the study's models on the configured device.
struct StudyModels {
  StudyConfig study;
  Classifier classifier;
  Generator generator;
};
StudyModels load_study_models(const std::string& study_folder, const GlobalOptions& global);

// The job this process was launched into by torchrun or srun (nullptr: one process): joins it,
// puts this rank on cuda:LOCAL_RANK (modulo the GPUs it sees) when the device is cuda, and gives
// it its node's share of the cores when --threads and LINKSTYLE_THREADS are not given. Call
// before load_study_models.
std::unique_ptr<DistributedJob> join_launched_job(GlobalOptions& global);

// Adds the --study option (default: the current folder).
CLI::Option* add_study_option(CLI::App& command, std::string& folder);

void register_init(CLI::App& app, GlobalOptions& global);
void register_info(CLI::App& app, GlobalOptions& global);
void register_pairs(CLI::App& app, GlobalOptions& global);
void register_fit(CLI::App& app, GlobalOptions& global);
void register_sample(CLI::App& app, GlobalOptions& global);
void register_reconstruct(CLI::App& app, GlobalOptions& global);
void register_train(CLI::App& app, GlobalOptions& global);
void register_eval(CLI::App& app, GlobalOptions& global);
// Adds `train generator` and `eval generator` (after register_train and register_eval).
void register_generator(CLI::App& app, GlobalOptions& global);
void register_render(CLI::App& app, GlobalOptions& global);
// Adds `sweep`, `export` and `probe`.
void register_sweep(CLI::App& app, GlobalOptions& global);
void register_counterfactual(CLI::App& app, GlobalOptions& global);
void register_report(CLI::App& app, GlobalOptions& global);
void register_serve(CLI::App& app, GlobalOptions& global);

}  // namespace linkstyle::cli
