// linkstyle/errors.hpp
//
// WHAT THIS REPRESENTS
//   The one error type the library throws for bad input: a missing or corrupt file, a contract
//   mismatch, a wrong shape, NaN in data, an unwritable path.
// ENSURES
//   what() is a single line "<subject>: <problem>", where subject names the file (or option) at
//   fault. The CLI prints it as "error: <what()>" and exits with status 2. SettingError names a
//   setting; the CLI replaces it with the flag that set it.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace linkstyle {

class Error : public std::runtime_error {
 public:
  Error(const std::string& subject, const std::string& problem)
      : std::runtime_error(subject + ": " + problem), subject_(subject) {}
  Error(const char* subject, const std::string& problem) : Error(std::string(subject), problem) {}
  Error(const std::filesystem::path& file, const std::string& problem) : Error(file.string(), problem) {}

  const std::string& subject() const { return subject_; }

 private:
  std::string subject_;
};

// A setting with a bad value, named as in study.toml ("sweep.steps") or as "<stage>.<setting>"
// for a stage's own settings ("probe.images"); with the file the value came from, what() is
// "<file>: '<setting>' <problem>". The CLI names its flag instead when the flag set it.
class SettingError : public Error {
 public:
  SettingError(const std::string& setting, const std::string& problem, const std::filesystem::path& file = {})
      : Error(file.empty() ? setting : file.string(), file.empty() ? problem : "'" + setting + "' " + problem),
        setting_(setting),
        problem_(problem) {}
  const std::string& setting() const { return setting_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string setting_, problem_;
};

}  // namespace linkstyle
