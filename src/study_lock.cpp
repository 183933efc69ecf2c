#include "linkstyle/study_lock.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// The process id a lock file names, or "another process" while its owner is still writing it.
std::string owner_of(int descriptor) {
  char text[32] = {};
  const ssize_t count = ::pread(descriptor, text, sizeof(text) - 1, 0);
  const std::string pid = count > 0 ? std::string(text, size_t(count)) : std::string();
  return pid.empty() ? std::string("another process") : "process " + pid;
}

// Whether the descriptor still refers to the file at `path` (the owner removes it on release).
bool still_linked(int descriptor, const fs::path& path) {
  struct stat open_file {}, named_file {};
  return ::fstat(descriptor, &open_file) == 0 && ::stat(path.c_str(), &named_file) == 0 &&
         open_file.st_dev == named_file.st_dev && open_file.st_ino == named_file.st_ino;
}

}  // namespace

StudyLock::StudyLock(const fs::path& study_folder, const std::string& stage)
    : file_(study_folder / (".lock-" + stage)) {
  for (;;) {
    descriptor_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (descriptor_ < 0) throw Error(file_, std::string("cannot create the study's lock file: ") + std::strerror(errno));
    if (::flock(descriptor_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      const std::string owner = error == EWOULDBLOCK ? owner_of(descriptor_) : std::string();
      ::close(descriptor_);
      descriptor_ = -1;
      if (error != EWOULDBLOCK) throw Error(file_, std::string("cannot lock: ") + std::strerror(error));
      throw Error(study_folder, fmt::format("study is in use by {} (writing its {}); wait for it to finish or stop it",
                                            owner, stage));
    }
    // The previous owner may have removed the file between our open and our lock: lock the new one.
    if (still_linked(descriptor_, file_)) break;
    ::close(descriptor_);
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(descriptor_, 0) != 0 || ::pwrite(descriptor_, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    const int error = errno;
    ::unlink(file_.c_str());
    ::close(descriptor_);
    throw Error(file_, std::string("cannot write the study's lock file: ") + std::strerror(error));
  }
}

StudyLock::~StudyLock() {
  // Removed while still held, so that no one locks a file that is about to go.
  ::unlink(file_.c_str());
  ::close(descriptor_);
}

}  // namespace linkstyle
