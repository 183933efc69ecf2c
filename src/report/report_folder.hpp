// report/report_folder.hpp
//
// WHAT THIS REPRESENTS
//   The report's files while they are written: a staging folder beside the study's report/
//   (report.tmp-<pid>) that replaces report/ in one move once every page is written.
// REQUIRES
//   A study folder that can be written.
// ENSURES
//   Until commit() the previous report stays as it was; destroyed without commit(), the staging
//   folder is removed, so a failed run leaves the previous report (or none), never half of one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "linkstyle/study.hpp"

namespace linkstyle::report {

class ReportFolder {
 public:
  // Creates the staging folder with its subfolders (assets, units, images/...).
  explicit ReportFolder(const StudyConfig& study);
  ReportFolder(const ReportFolder&) = delete;
  ReportFolder& operator=(const ReportFolder&) = delete;
  ~ReportFolder();

  // Writes `bytes` as the file `relative` of the report; throws Error when it cannot.
  void write(const std::filesystem::path& relative, std::string_view bytes);

  // Copies a file of the study (a path relative to the study folder, as the database stores it)
  // into the report; false when it is missing or lies outside the study folder.
  bool copy_from_study(const std::string& study_relative, const std::filesystem::path& relative);

  // Moves the staging folder into place (the old report goes only once the new one is whole).
  void commit();

  int64_t bytes() const;  // of the report in place (after commit())
  const std::filesystem::path& folder() const { return final_; }
  int64_t pages() const { return pages_; }
  int64_t files() const { return files_; }

 private:
  const StudyConfig& study_;
  std::filesystem::path final_, staging_;
  bool committed_ = false;
  int64_t pages_ = 0, files_ = 0;
};

}  // namespace linkstyle::report
