// Shared helpers for the tests: scratch folders and running the CLI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace linkstyle::testing {

// A fresh, empty folder under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name);
  ~ScratchDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& child) const { return path_ / child; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and captures its output.
CommandResult run_command(const std::string& command_line);

// Expects `action` to throw linkstyle::Error (not another exception) whose message is one line
// and contains every fragment.
void expect_error(const std::function<void()>& action, const std::vector<std::string>& fragments);

// A stop request that says yes after `commits` commits (never when commits < 0): a run stopped
// part-way, as Ctrl-C stops it.
std::function<bool()> stop_after(int64_t commits);

// Runs the linkstyle CLI with the given arguments (already shell-quoted where needed).
CommandResult run_cli(const std::string& arguments);

}  // namespace linkstyle::testing
