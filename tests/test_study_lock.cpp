// Tests of the study lock: one holder per study and stage, the holder named, released on exit
// (kill -9 included), and no lock file left between runs.
#include <csignal>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "linkstyle/errors.hpp"
#include "linkstyle/study_lock.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::ScratchDir;

TEST(StudyLock, OneHolderPerStageAndTheFileGoesWithIt) {
  ScratchDir dir("study-lock");
  {
    const StudyLock pairs(dir.path(), "pairs");
    EXPECT_TRUE(fs::exists(dir / ".lock-pairs"));
    // Another stage of the same study is free; the same stage is not, even in this process.
    const StudyLock sweeps(dir.path(), "sweeps");
    expect_error([&] { StudyLock again(dir.path(), "pairs"); },
                 {dir.path().string(), "in use by process " + std::to_string(::getpid()), "pairs"});
  }
  EXPECT_FALSE(fs::exists(dir / ".lock-pairs"));
  EXPECT_FALSE(fs::exists(dir / ".lock-sweeps"));
  const StudyLock again(dir.path(), "pairs");
}

TEST(StudyLock, AnotherProcessIsNamedAndKillNineReleasesIt) {
  ScratchDir dir("study-lock-process");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const StudyLock held(dir.path(), "sweeps");
    const char byte = 1;
    if (::write(ready[1], &byte, 1) != 1) ::_exit(3);
    ::pause();
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  expect_error([&] { StudyLock mine(dir.path(), "sweeps"); }, {"in use by process " + std::to_string(child)});
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // The kernel released the dead process's lock; its file is taken over, then removed.
  {
    const StudyLock mine(dir.path(), "sweeps");
  }
  EXPECT_FALSE(fs::exists(dir / ".lock-sweeps"));
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(StudyLock, UnwritableFolderIsAnError) {
  expect_error([] { StudyLock lock("/proc/no-such-study", "pairs"); }, {"/proc/no-such-study/.lock-pairs"});
}

}  // namespace
}  // namespace linkstyle
