#include "report_folder.hpp"

#include <fstream>

#include <unistd.h>

#include <fmt/format.h>

#include "../folder_paths.hpp"
#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle::report {
namespace fs = std::filesystem;

ReportFolder::ReportFolder(const StudyConfig& study) : study_(study) {
  final_ = study.folder / "report";
  staging_ = study.folder / fmt::format("report.tmp-{}", ::getpid());
  fs::remove_all(staging_);
  ensure_writable_directory(staging_);
  for (const char* sub : {"assets", "units", "images/strips", "images/reconstructions", "images/counterfactuals"})
    fs::create_directories(staging_ / sub);
}

ReportFolder::~ReportFolder() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove_all(staging_, ignored);
  }
}

void ReportFolder::write(const fs::path& relative, std::string_view bytes) {
  const auto file = staging_ / relative;
  std::ofstream out(file, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Error(file, "cannot write (disk full or not writable?)");
  ++files_;
  if (relative.extension() == ".html") ++pages_;
}

bool ReportFolder::copy_from_study(const std::string& study_relative, const fs::path& relative) {
  const auto source = path_inside_folder(study_.folder, study_relative);
  if (!source || !fs::is_regular_file(*source)) return false;
  fs::create_directories((staging_ / relative).parent_path());
  std::error_code error;
  fs::copy_file(*source, staging_ / relative, fs::copy_options::overwrite_existing, error);
  if (error) throw Error(staging_ / relative, "cannot copy " + source->string() + ": " + error.message());
  ++files_;
  return true;
}

void ReportFolder::commit() {
  const auto old = study_.folder / fmt::format("report.old-{}", ::getpid());
  std::error_code ignored;
  fs::remove_all(old, ignored);
  if (fs::exists(final_)) fs::rename(final_, old);
  fs::rename(staging_, final_);
  committed_ = true;
  fs::remove_all(old, ignored);
}

int64_t ReportFolder::bytes() const {
  int64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(final_))
    if (entry.is_regular_file()) total += static_cast<int64_t>(entry.file_size());
  return total;
}

}  // namespace linkstyle::report
