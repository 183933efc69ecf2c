#include "cli_support.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace linkstyle::testing {

namespace fs = std::filesystem;
using nlohmann::json;

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
    if (it == before.end())
      text += "  new: " + name + "\n";
    else if (it->second != content)
      text += "  changed: " + name + "\n";
  }
  for (const auto& [name, content] : before)
    if (!after.count(name)) text += "  removed: " + name + "\n";
  return text;
}

// Runs a command that must fail: exit status != 0, output one line "error: ..." naming
// `names`, and `watched` (a folder) unchanged, without temporary files.
namespace {

// With LINKSTYLE_VERDICTS=<file>, each bad input's outcome is appended to the file as one line
// "<test>\t<verdict>\t<seconds>\tlinkstyle <arguments>": clear (exit 2, one line naming the file
// or setting, nothing written), silent (exit 0), crash (a signal), hang (more than 60 s), or
// unclear (any other exit status, message or leftover).
void record_verdict(const std::string& arguments, const std::string& names, const CommandResult& result,
                    std::chrono::steady_clock::duration took, bool unchanged) {
  const char* file = std::getenv("LINKSTYLE_VERDICTS");
  if (file == nullptr || *file == '\0') return;
  const double seconds = std::chrono::duration<double>(took).count();
  const bool one_line = !result.output.empty() && result.output.find('\n') == result.output.size() - 1;
  std::string verdict = "unclear";
  if (seconds > 60.0)
    verdict = "hang";
  else if (result.exit_code >= 128)
    verdict = "crash";
  else if (result.exit_code == 0)
    verdict = "silent";
  else if (result.exit_code == 2 && one_line && result.output.rfind("error: ", 0) == 0 &&
           result.output.find(names) != std::string::npos && unchanged)
    verdict = "clear";
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::ofstream(file, std::ios::app) << (test ? std::string(test->test_suite_name()) + "." + test->name() : "?")
                                     << '\t' << verdict << '\t' << seconds << "\tlinkstyle " << arguments << '\n';
}

}  // namespace

std::string expect_cli_error(const std::string& arguments, const std::string& names, const fs::path& watched) {
  SCOPED_TRACE("linkstyle " + arguments);
  const auto before = snapshot(watched);
  const auto started = std::chrono::steady_clock::now();
  const CommandResult result = run_cli(arguments);
  record_verdict(arguments, names, result, std::chrono::steady_clock::now() - started,
                 before == snapshot(watched));
  EXPECT_EQ(result.exit_code, 2) << (result.exit_code >= 128 ? "crashed: " : "") << result.output;
  EXPECT_EQ(result.output.rfind("error: ", 0), 0u) << result.output;
  if (result.output.empty()) {
    ADD_FAILURE() << "no output";
    return result.output;
  }
  EXPECT_EQ(result.output.back(), '\n') << result.output;
  EXPECT_EQ(result.output.find('\n'), result.output.size() - 1) << "more than one line:\n" << result.output;
  EXPECT_NE(result.output.find(names), std::string::npos) << "'" << names << "' not in: " << result.output;
  const auto after = snapshot(watched);
  EXPECT_TRUE(before == after) << "files changed:\n" << describe_changes(before, after);
  for (const auto& [name, content] : after)
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << "temporary file left: " << name;
  return result.output;
}

}  // namespace linkstyle::testing
