// Tests for atomic_file.hpp: a file appears only when complete, and failures name the path.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

TEST(AtomicFile, TheTargetAppearsOnlyOnCommit) {
  ScratchDir dir("atomic-commit");
  const fs::path target = dir / "out.txt";
  {
    AtomicFile file(target);
    file.write("first ");
    file.stream() << "second";
    EXPECT_FALSE(fs::exists(target));
    EXPECT_TRUE(fs::exists(file.temporary_path()));
    file.commit();
  }
  EXPECT_EQ(read_file(target), "first second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AtomicFile, AnUncommittedFileLeavesTheOldContentAndNoTemporary) {
  ScratchDir dir("atomic-abandon");
  const fs::path target = dir / "out.txt";
  write_file_atomically(target, "old");
  fs::path temporary;
  {
    AtomicFile file(target);
    file.write("new, never committed");
    temporary = file.temporary_path();
  }
  EXPECT_EQ(read_file(target), "old");
  EXPECT_FALSE(fs::exists(temporary));
}

TEST(AtomicFile, FailuresNameThePath) {
  ScratchDir dir("atomic-errors");
  testing::expect_error([&] { read_file(dir / "missing.txt"); }, {"missing.txt"});
  write_file_atomically(dir / "a-file", "x");
  // A file where its folder should be: the error names the file in the way.
  testing::expect_error([&] { write_file_atomically(dir / "a-file" / "inside.txt", "y"); }, {"a-file", "not a folder"});
  testing::expect_error([&] { ensure_writable_directory(dir / "a-file" / "sub"); }, {"sub"});
  ensure_writable_directory(dir / "new" / "folder");
  EXPECT_TRUE(fs::is_directory(dir / "new" / "folder"));
}

}  // namespace
}  // namespace linkstyle
