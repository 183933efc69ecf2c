// linkstyle/study_lock.hpp
//
// WHAT THIS REPRESENTS
//   The right to write one stage's outputs of one study ("pairs", "linking", "sweeps", ...): an
//   advisory lock (flock) on "<study>/.lock-<stage>", which holds the owner's process id.
// REQUIRES
//   The study folder exists and is writable.
// ENSURES
//   Construction takes the lock at once or throws linkstyle::Error naming the study: "in use by
//   process P (...)". Two processes never hold the lock of one stage together. The lock goes when
//   the object dies (or the process: the kernel releases a flock on exit, kill -9 included), and
//   its file goes with it, so a study holds no lock files between runs.
#pragma once

#include <filesystem>
#include <string>

namespace linkstyle {

class StudyLock {
 public:
  StudyLock(const std::filesystem::path& study_folder, const std::string& stage);
  ~StudyLock();
  StudyLock(const StudyLock&) = delete;
  StudyLock& operator=(const StudyLock&) = delete;

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  int descriptor_ = -1;
};

}  // namespace linkstyle
