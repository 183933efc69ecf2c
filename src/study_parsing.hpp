// study_parsing.hpp (private)
//
// WHAT THIS REPRESENTS
//   The reading of a study.toml's text into a StudyConfig, shared by load_study (which reads the
//   file) and write_study (which parses the text it is about to write).
// REQUIRES
//   `text` is the whole content of `folder`/study.toml.
// ENSURES
//   parse_study rejects text beyond ASCII, TOML syntax errors, unknown tables and keys, wrong types
//   and out-of-range values (check_study_settings) with a one-line linkstyle::Error naming
//   `folder`/study.toml and the key. Model paths are resolved relative to `folder`.
#pragma once

#include <filesystem>
#include <string>

#include "linkstyle/study.hpp"

namespace linkstyle {

StudyConfig parse_study(const std::filesystem::path& folder, const std::string& text);

}  // namespace linkstyle
