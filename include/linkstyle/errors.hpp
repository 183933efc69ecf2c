// linkstyle/errors.hpp
//
// WHAT THIS REPRESENTS
//   The one error type the library throws for bad input: a missing or corrupt file, a contract
//   mismatch, a wrong shape, NaN in data, an unwritable path.
// ENSURES
//   what() is a single line "<subject>: <problem>", where subject names the file (or option) at
//   fault. The CLI prints it as "error: <what()>" and exits with status 2.
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

}  // namespace linkstyle
