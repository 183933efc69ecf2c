// Helpers shared by the trainers (see training_common.hpp).
#include "train/training_common.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle::training {

namespace fs = std::filesystem;

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

fs::path with_suffix(const fs::path& file, const std::string& suffix) { return fs::path(file.string() + suffix); }

torch::Tensor module_bytes(const torch::jit::Module& module) {
  std::ostringstream out;
  module.save(out);
  const std::string bytes = out.str();
  auto tensor = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kByte);
  std::memcpy(tensor.data_ptr(), bytes.data(), bytes.size());
  return tensor;
}

torch::jit::Module module_from_bytes(const torch::Tensor& bytes) {
  const auto contiguous = bytes.contiguous();
  std::istringstream in(
      std::string(static_cast<const char*>(contiguous.data_ptr()), static_cast<size_t>(contiguous.numel())));
  return torch::jit::load(in);
}

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

double cosine_learning_rate(double base, int64_t step, int64_t steps) {
  constexpr double kPi = 3.14159265358979323846;
  const double progress = static_cast<double>(step - 1) / static_cast<double>(steps);
  return base * 0.5 * (1.0 + std::cos(kPi * progress));
}

void save_module_atomically(const torch::jit::Module& module, const fs::path& file) {
  AtomicFile out(file);
  try {
    module.save(out.stream());
  } catch (const c10::Error& e) {
    throw Error(file, std::string("cannot serialise the model: ") + e.what_without_backtrace());
  }
  out.commit();
}

std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!bytes.empty() && bytes.back() == '\0') bytes.pop_back();
  for (char& c : bytes)
    if (c == '\0') c = ' ';
  return bytes;
}

}  // namespace linkstyle::training
