#include <filesystem>

#include <fmt/format.h>
#include <torch/torch.h>

#include "commands.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/reconstruct.hpp"

namespace linkstyle::cli {

void register_sample(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    std::string output;
    int64_t per_class = 2;
    uint64_t seed = 1000;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand("sample", "write generator samples of the study's classes as PNG files");
  add_study_option(*command, options->folder);
  command->add_option("--per-class", options->per_class, "images per class")->capture_default_str();
  command->add_option("--seed", options->seed, "latent seed (pick one other than the pairs' seed)")
      ->capture_default_str();
  command->add_option("-o,--output", options->output, "output folder (default: <study>/samples)");
  command->callback([options, &global]() {
    namespace fs = std::filesystem;
    if (options->per_class <= 0) throw Error("--per-class", "must be > 0");
    auto [study, classifier, generator] = load_study_models(options->folder, global);
    const fs::path output = options->output.empty() ? study.folder / "samples" : fs::path(options->output);
    ensure_writable_directory(output);
    std::vector<int64_t> classes = study.pairs.classes;
    if (classes.empty())
      for (int64_t c = 0; c < generator.num_classes(); ++c) classes.push_back(c);
    torch::NoGradGuard no_grad;
    std::vector<std::string> written;
    for (int64_t c : classes) {
      auto z = draw_latents(options->seed, c, 0, options->per_class, generator.z_dim());
      auto w = generator.mapping(z.to(generator.device()),
                                 torch::full({options->per_class}, c, torch::kInt64).to(generator.device()),
                                 study.pairs.psi);
      auto images = generator_to_classifier_range(generator.synthesis(w));
      for (int64_t i = 0; i < options->per_class; ++i) {
        const fs::path file = output / fmt::format("class{}-{}.png", c, i);
        write_image_row(file, {images.slice(0, i, i + 1)}, static_cast<int>(generator.resolution()));
        written.push_back(file.string());
      }
    }
    print_summary(global, {{"output", output.string()}, {"images", written}},
                  fmt::format("sample: wrote {} images to {}", written.size(), output.string()));
  });
}

}  // namespace linkstyle::cli
