// linkstyle: understand what a classifier's units encode by linking its features to a
// style-based generator's latent space. See README.md.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <new>

#include <fmt/format.h>
#include <torch/cuda.h>

#include "commands.hpp"
#include "linkstyle/cancellation.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle::cli {

void print_summary(const GlobalOptions& global, const nlohmann::json& summary, const std::string& line,
                   const DistributedJob* job) {
  if (!job) {
    std::cout << (global.json ? summary.dump(2) : line) << std::endl;
    return;
  }
  auto with_job = summary;
  with_job["job"] = {{"ranks", job->size()},
                     {"bytes_sent", job->bytes_sent()},
                     {"bytes_received", job->bytes_received()},
                     {"seconds_waiting", job->seconds_waiting()},
                     {"seconds_recording", job->seconds_recording()}};
  std::cout << (global.json ? with_job.dump(2)
                            : fmt::format("{} ({} processes; {} received from the others)", line, job->size(),
                                          memory_text(double(job->bytes_received()))))
            << std::endl;
}

void print_warnings(const nlohmann::json& warnings) {
  for (const auto& warning : warnings) std::fprintf(stderr, "warning: %s\n", warning.get<std::string>().c_str());
}

void map_setting(GlobalOptions& global, const std::string& setting, const CLI::Option* flag) {
  global.setting_flags.emplace(setting, flag);
}

// A setting's error names the flag that set it, or the setting when the value came from elsewhere.
std::string setting_error_line(const GlobalOptions& global, const linkstyle::SettingError& error) {
  const auto [first, last] = global.setting_flags.equal_range(error.setting());
  for (auto flag = first; flag != last; ++flag)
    if (flag->second->count() > 0) return flag->second->get_name() + ": " + error.problem();
  return error.what();
}

CLI::Option* add_study_option(CLI::App& command, std::string& folder) {
  return command.add_option("-s,--study", folder, "study folder (holds study.toml)")->capture_default_str();
}

StudyModels load_study_models(const std::string& study_folder, const GlobalOptions& global) {
  auto study = load_study(study_folder);
  const auto device = configure_runtime(global.runtime);
  auto classifier = Classifier::load(study.classifier, device);
  auto generator = Generator::load(study.generator, device);
  print_warnings(nlohmann::json(generator.load_warnings()));
  return {std::move(study), std::move(classifier), std::move(generator)};
}

std::unique_ptr<DistributedJob> join_launched_job(GlobalOptions& global) {
  const auto environment = LaunchEnvironment::from_environment();
  if (!environment.distributed()) return nullptr;
  // A rank sees every GPU of its node, or (Slurm binding one per task) only its own.
  if (global.runtime.device == "cuda")
    global.runtime.device =
        fmt::format("cuda:{}", environment.local_rank % std::max<int64_t>(1, torch::cuda::device_count()));
  const char* threads = std::getenv("LINKSTYLE_THREADS");
  if (global.runtime.threads == 0 && !(threads && *threads))
    global.runtime.threads = std::max(1, hardware_threads() / environment.local_world_size);
  return DistributedJob::join(environment, global.command_line);
}

namespace {

// The stages that run as one job over many processes; under a launcher, rank 0 runs any other
// command alone.
bool runs_distributed(const std::string& command) {
  return command == "pairs" || command == "sweep" || command == "counterfactual";
}

// The subcommand named in the arguments ("" if none).
std::string subcommand_of(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
      if (sub->get_name() == argv[i]) return argv[i];
  return "";
}

// An allocation that failed, in the C++ runtime, libtorch or OpenCV.
bool is_out_of_memory(const std::exception& error, const std::string& message) {
  if (dynamic_cast<const std::bad_alloc*>(&error)) return true;
  for (const char* text : {"can't allocate memory", "out of memory", "Failed to allocate", "Insufficient memory"})
    if (message.find(text) != std::string::npos) return true;
  return false;
}

// The command that ran ("sweep", "train generator").
std::string command_name(const CLI::App& app) {
  std::string name;
  for (const CLI::App* command = &app; !command->get_subcommands().empty();) {
    command = command->get_subcommands().front();
    name += (name.empty() ? "" : " ") + command->get_name();
  }
  return name.empty() ? "linkstyle" : name;
}

}  // namespace

}  // namespace linkstyle::cli

int main(int argc, char** argv) {
  using namespace linkstyle::cli;
  CLI::App app{"linkstyle: link a classifier's features to a style generator's latents and look at its units"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "linkstyle 0.1.0");
  GlobalOptions global;
  app.add_option("--device", global.runtime.device, "cpu (default) or cuda")->capture_default_str();
  app.add_option("--threads", global.runtime.threads, "intra-op threads (0: all cores)")->capture_default_str();
  app.add_option("--memory-budget", global.runtime.memory_budget_gib,
                 "GiB one batch may take (0: LINKSTYLE_MEMORY_BUDGET, else half the memory or 80% of what is free)")
      ->capture_default_str();
  app.add_flag("--json", global.json, "print a machine-readable JSON summary on stdout");
  for (auto* registrar :
       {register_init, register_info, register_pairs, register_fit, register_sample, register_reconstruct,
        register_train, register_eval, register_generator, register_render, register_sweep,
        register_counterfactual, register_report, register_serve})
    registrar(app, global);
  // Global options may also follow the subcommand name.
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) sub->fallthrough();
  for (int i = 1; i < argc; ++i) global.command_line += (i > 1 ? " " : "") + std::string(argv[i]);
  try {
    const auto launch = linkstyle::LaunchEnvironment::from_environment();
    const std::string command = subcommand_of(app, argc, argv);
    if (launch.distributed() && launch.rank != 0 && !runs_distributed(command)) {
      std::fprintf(stderr, "rank %d of %d: `%s` runs on one process; rank 0 runs it\n", launch.rank,
                   launch.world_size, command.c_str());
      return 0;
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const linkstyle::Cancelled& stopped) {
    // Interrupted (Ctrl-C, SIGTERM) after a commit: what was done stays, the same command resumes.
    std::fprintf(stderr, "%s\n", stopped.what());
    return 130;
  } catch (const linkstyle::SettingError& error) {
    std::fprintf(stderr, "error: %s\n", setting_error_line(global, error).c_str());
    return 2;
  } catch (const linkstyle::Error& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 2;
  } catch (const std::exception& error) {
    // Errors from libraries (torch, OpenCV): keep the first line, it carries the message.
    std::string message = error.what();
    // (the first non-empty one: TorchScript compiler messages start with a newline).
    message.erase(0, message.find_first_not_of("\n "));
    message = message.substr(0, message.find('\n'));
    if (is_out_of_memory(error, message)) {
      std::fprintf(stderr, "error: %s: out of memory (%s); lower the batch size or the sizes asked for\n",
                   command_name(app).c_str(), message.c_str());
      return 2;
    }
    std::fprintf(stderr, "error: %s\n", message.c_str());
    return 1;
  }
  return 0;
}
