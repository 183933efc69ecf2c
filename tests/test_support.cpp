#include "test_support.hpp"

#include <array>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "linkstyle/errors.hpp"

namespace linkstyle::testing {

ScratchDir::ScratchDir(const std::string& name) {
  std::random_device device;
  path_ = std::filesystem::temp_directory_path() /
          ("linkstyle-test-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(device()));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

CommandResult run_command(const std::string& command_line) {
  CommandResult result;
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

void expect_error(const std::function<void()>& action, const std::vector<std::string>& fragments) {
  try {
    action();
    ADD_FAILURE() << "no linkstyle::Error thrown; expected one mentioning '" << fragments.front() << "'";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const auto& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "multi-line message: " << message;
  } catch (const std::exception& other) {
    ADD_FAILURE() << "expected linkstyle::Error, got another exception: " << other.what();
  }
}

CommandResult run_cli(const std::string& arguments) {
  // LINKSTYLE_TEST_CLI runs the tests against another build of the command line (to measure an
  // older one on the bad-input corpus).
  const char* other = std::getenv("LINKSTYLE_TEST_CLI");
  // While verdicts are recorded (tests/cli_support.hpp), a hang is cut short after 90 s.
  const char* verdicts = std::getenv("LINKSTYLE_VERDICTS");
  const std::string limit = verdicts && *verdicts ? "timeout -s KILL 90 " : "";
  return run_command(limit + std::string(other && *other ? other : LINKSTYLE_CLI) + " " + arguments);
}

std::function<bool()> stop_after(int64_t commits) {
  if (commits < 0) return {};
  return [commits, count = int64_t(0)]() mutable { return ++count >= commits; };
}

}  // namespace linkstyle::testing
