// Helpers for tests that run the linkstyle CLI as a separate process: quoting, file bytes,
// folder snapshots, and the checks every failing command must pass.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace linkstyle::testing {

// Single-quotes a path for the shell.
std::string q(const std::filesystem::path& path);

std::string bytes_of(const std::filesystem::path& file);
void write_bytes(const std::filesystem::path& file, const std::string& bytes);

// Runs the CLI and expects exit 0; returns the output.
std::string cli_ok(const std::string& arguments);

// Runs the CLI with --json and parses its output.
nlohmann::json cli_json(const std::string& arguments);

// Every file and folder under `folder` with its content ("<dir>" for folders).
std::map<std::string, std::string> snapshot(const std::filesystem::path& folder);
std::string describe_changes(const std::map<std::string, std::string>& before,
                             const std::map<std::string, std::string>& after);

// Runs a command that must fail: exit status 2 (a documented error, not a crash or a library's
// exit 1), output one line "error: ..." containing `names`, and `watched` (a folder) unchanged,
// without temporary files. Returns the output.
std::string expect_cli_error(const std::string& arguments, const std::string& names,
                             const std::filesystem::path& watched);

}  // namespace linkstyle::testing
