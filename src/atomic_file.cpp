#include "linkstyle/atomic_file.hpp"

#include <cerrno>
#include <cstring>
#include <sstream>
#include <fcntl.h>
#include <unistd.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// fsync of a file or folder; false (with errno set) on failure.
bool sync_to_disk(const fs::path& path) {
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0) return false;
  const bool synced = ::fsync(descriptor) == 0;
  const int saved = errno;
  ::close(descriptor);
  errno = saved;
  return synced;
}

}  // namespace

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  if (target_.has_parent_path()) ensure_writable_directory(target_.parent_path());
  temporary_ = target_;
  temporary_ += ".tmp-" + std::to_string(::getpid());
  stream_.open(temporary_, std::ios::binary | std::ios::trunc);
  if (!stream_) throw Error(target_, std::string("cannot open for writing: ") + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    stream_.close();
    std::error_code ignored;
    fs::remove(temporary_, ignored);
  }
}

void AtomicFile::write(std::string_view bytes) {
  stream_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void AtomicFile::commit() {
  stream_.flush();
  const bool ok = static_cast<bool>(stream_);
  stream_.close();
  if (!ok || stream_.fail()) throw Error(target_, "write failed (disk full or unwritable?)");
  if (!sync_to_disk(temporary_)) throw Error(target_, std::string("cannot sync to disk: ") + std::strerror(errno));
  std::error_code error;
  fs::rename(temporary_, target_, error);
  if (error) throw Error(target_, "cannot move into place: " + error.message());
  committed_ = true;
  // The rename itself survives a power loss once the folder is synced.
  const fs::path folder = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  if (!sync_to_disk(folder)) throw Error(folder, std::string("cannot sync to disk: ") + std::strerror(errno));
}

void write_file_atomically(const fs::path& target, std::string_view bytes) {
  AtomicFile file(target);
  file.write(bytes);
  file.commit();
}

std::string read_file(const fs::path& path) {
  std::error_code error;
  if (!fs::exists(path, error)) throw Error(path, "file not found");
  if (fs::is_directory(path, error)) throw Error(path, "is a folder, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, std::string("cannot read: ") + std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw Error(path, "read failed");
  return content.str();
}

void ensure_writable_directory(const fs::path& folder) {
  std::error_code error;
  if (fs::exists(folder, error) && !fs::is_directory(folder, error)) throw Error(folder, "exists and is not a folder");
  fs::create_directories(folder, error);
  if (error) throw Error(folder, "cannot create folder: " + error.message());
  if (::access(folder.c_str(), W_OK) != 0) throw Error(folder, "folder is not writable");
}

}  // namespace linkstyle
