// bench_serve: the explorer's latency over HTTP, as a browser sees it. It builds a study of the
// shipped shapes models (the demo's: faithful generator at psi 1, classifier, segmenter; pairs
// and fit) in a temporary folder, serves it on a free loopback port in this process, and sends
// scripted slider moves (POST /api/render, one unit set to a new value each time, on a tuning
// sample), first from one client, then from several at once (browser tabs). Prints the median
// and the 95th percentile per update, client-side (request to parsed answer) and server-side.
// Usage: bench_serve [--threads T] [--device cpu|cuda] [--moves N] [--clients C]
//                    [--pairs-per-class P] [--study S (an existing study instead)]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <torch/torch.h>
#include <unistd.h>

#include "linkstyle/explorer_server.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/pairs.hpp"
#include "linkstyle/runtime.hpp"

namespace fs = std::filesystem;
using namespace linkstyle;
using json = nlohmann::json;

namespace {

double percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(position);
  const auto above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - static_cast<double>(below)) * (values[above] - values[below]);
}

struct Timings {
  std::vector<double> client_ms, server_ms;
};

// `moves` slider moves: unit (7 k) mod D set to a value swept across its range, on sample k mod S.
Timings slide(int port, int moves, int client, const json& study) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(60);
  Timings t;
  const auto& units = study["units"];
  const auto samples = static_cast<int64_t>(study["samples"].size());
  for (int k = 0; k < moves; ++k) {
    const auto& unit = units[static_cast<size_t>((7 * k + 13 * client) % static_cast<int>(units.size()))];
    const double fraction = (k % 10) / 9.0;
    const double value = unit["min"].get<double>() + fraction * (unit["max"].get<double>() - unit["min"].get<double>());
    const json request = {{"sample", (k + client) % samples}, {"units", {{std::to_string(unit["unit"].get<int64_t>()), value}}}};
    const auto start = std::chrono::steady_clock::now();
    const auto response = http.Post("/api/render", request.dump(), "application/json");
    if (!response || response->status != 200) {
      std::fprintf(stderr, "bench_serve: render failed (%s)\n", response ? response->body.c_str() : "no answer");
      std::exit(1);
    }
    const auto answer = json::parse(response->body);
    t.client_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    t.server_ms.push_back(answer["milliseconds"].get<double>());
  }
  return t;
}

void print(const std::string& what, const Timings& t) {
  std::printf("%-34s client median %6.1f ms  p95 %6.1f ms | server median %6.1f ms  p95 %6.1f ms  (%zu updates)\n",
              what.c_str(), percentile(t.client_ms, 0.5), percentile(t.client_ms, 0.95), percentile(t.server_ms, 0.5),
              percentile(t.server_ms, 0.95), t.client_ms.size());
}

}  // namespace

int main(int argc, char** argv) {
  int moves = 50, clients = 4;
  int64_t pairs_per_class = 500;
  std::string existing;
  RuntimeOptions runtime;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--device") runtime.device = value;
    else if (flag == "--threads") runtime.threads = std::stoi(value);
    else if (flag == "--moves") moves = std::stoi(value);
    else if (flag == "--clients") clients = std::stoi(value);
    else if (flag == "--pairs-per-class") pairs_per_class = std::stoll(value);
    else if (flag == "--study") existing = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  const auto device = configure_runtime(runtime);
  StudyConfig study;
  fs::path scratch;
  if (!existing.empty()) {
    study = load_study(existing);
  } else {
    const fs::path models = fs::path(LINKSTYLE_SOURCE_DIR) / "models" / "shapes";
    scratch = fs::temp_directory_path() / fmt::format("linkstyle-bench-serve-{}", ::getpid());
    fs::remove_all(scratch);
    study.folder = scratch;
    study.classifier = models / "classifier.pt";
    study.generator = models / "faithful_generator.pt";
    study.segmenter = models / "segmenter.pt";
    study.pairs.samples_per_class = pairs_per_class;
    study.pairs.psi = 1.0;
    study.sweep.samples_per_class = 2;
    fs::create_directories(scratch);
    write_study(study);
    const auto classifier = Classifier::load(study.classifier, device);
    const auto generator = Generator::load(study.generator, device);
    const auto manifest = generate_pairs(study, classifier, generator);
    auto fit = fit_from_pairs(manifest, FitOptions{}, study.pairs.holdout_fraction, false);
    fit.network.save(study.linking_file());
  }
  std::printf("bench_serve: %s, %d threads, study %s\n", device.str().c_str(), at::get_num_threads(), study.folder.string().c_str());
  Explorer explorer(study, device);
  std::atomic<int> port{0};
  std::atomic<bool> stop{false};
  ServeOptions options;
  options.port = 0;
  std::thread server([&] { serve_explorer(explorer, options, [&](int p) { port = p; }, [&] { return stop.load(); }); });
  while (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  httplib::Client http("127.0.0.1", port);
  const auto described = http.Get("/api/study");
  if (!described || described->status != 200) {
    std::fprintf(stderr, "bench_serve: /api/study failed\n");
    return 1;
  }
  const auto info = json::parse(described->body);
  slide(port, 5, 0, info);  // warm-up
  print(fmt::format("{} slider moves, one client", moves), slide(port, moves, 0, info));
  std::vector<Timings> per_client(static_cast<size_t>(clients));
  std::vector<std::thread> tabs;
  for (int c = 0; c < clients; ++c) tabs.emplace_back([&, c] { per_client[static_cast<size_t>(c)] = slide(port, moves, c + 1, info); });
  for (auto& t : tabs) t.join();
  Timings together;
  for (const auto& t : per_client) {
    together.client_ms.insert(together.client_ms.end(), t.client_ms.begin(), t.client_ms.end());
    together.server_ms.insert(together.server_ms.end(), t.server_ms.begin(), t.server_ms.end());
  }
  print(fmt::format("{} x {} moves, {} clients at once", clients, moves, clients), together);
  stop = true;
  server.join();
  if (!scratch.empty()) fs::remove_all(scratch);
  return 0;
}
