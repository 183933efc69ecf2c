// linkstyle/atomic_file.hpp
//
// WHAT THIS REPRESENTS
//   A file that appears under its final name only when completely written: bytes go to a
//   temporary sibling ("<name>.tmp-<pid>") and commit() renames it into place.
// REQUIRES
//   The target's parent folder exists (or can be created) and is writable.
// ENSURES
//   Either the target holds the new content in full, or it is untouched and no temporary file is
//   left (the destructor removes an uncommitted one). commit() syncs the file to disk before the
//   rename and the folder after it, so a committed file survives a power loss. Failures throw
//   linkstyle::Error naming the target path.
#pragma once

#include <filesystem>
#include <fstream>
#include <string_view>

namespace linkstyle {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  std::ofstream& stream() { return stream_; }
  void write(std::string_view bytes);
  const std::filesystem::path& temporary_path() const { return temporary_; }
  // Flushes, checks the stream and renames into place.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  std::ofstream stream_;
  bool committed_ = false;
};

void write_file_atomically(const std::filesystem::path& target, std::string_view bytes);

// Reads a whole file; throws Error("<path>", "cannot read ...") when missing or unreadable.
std::string read_file(const std::filesystem::path& path);

// Throws Error naming the folder when it cannot be created or written to.
void ensure_writable_directory(const std::filesystem::path& folder);

}  // namespace linkstyle
