#include <cstdio>

#include <fmt/format.h>

#include "commands.hpp"
#include "linkstyle/cancellation.hpp"
#include "linkstyle/explorer_server.hpp"

namespace linkstyle::cli {

void register_serve(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string folder = ".";
    ServeOptions serve;
  };
  auto options = std::make_shared<Options>();
  auto* command = app.add_subcommand(
      "serve", "explore the study live in a browser: set units, see G(L(r)), the top classes and the parts, run "
               "counterfactuals (http://127.0.0.1:PORT/; Ctrl-C stops)");
  add_study_option(*command, options->folder);
  command->add_option("--port", options->serve.port, "TCP port (0: any free one, printed)")->capture_default_str();
  command->add_option("--host", options->serve.host, "address to bind")->capture_default_str();
  command->add_flag("--allow-remote", options->serve.allow_remote,
                    "allow an address other than loopback (the explorer has no authentication)");
  command->add_option("--connections", options->serve.threads, "connections served at once")->capture_default_str();
  command->callback([=, &global]() {
    const auto study = load_study(options->folder);
    const auto device = configure_runtime(global.runtime);
    Explorer explorer(study, device);
    stop_on_interrupt_signals();
    serve_explorer(
        explorer, options->serve,
        [&](int port) {
          const auto host = options->serve.host.find(':') != std::string::npos ? "[" + options->serve.host + "]"
                                                                                 : options->serve.host;
          std::printf("serving %s on http://%s:%d/ (Ctrl-C stops)\n", study.folder.string().c_str(), host.c_str(), port);
          std::fflush(stdout);
        },
        interrupt_requested);
  });
}

}  // namespace linkstyle::cli
