// Tests for cancellation.hpp: a stop between commits.
#include <csignal>

#include <gtest/gtest.h>

#include "linkstyle/cancellation.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

TEST(Cancellation, AStopIsAskedAfterEachCommitAndThrowsCancelled) {
  EXPECT_NO_THROW(stop_if_requested({}, "pairs"));  // no question: never stops
  const auto stop = testing::stop_after(2);
  EXPECT_NO_THROW(stop_if_requested(stop, "sweep"));
  try {
    stop_if_requested(stop, "sweep");
    ADD_FAILURE() << "not stopped after the second commit";
  } catch (const Cancelled& cancelled) {
    EXPECT_EQ(std::string(cancelled.what()), "sweep stopped; run it again to resume");
  }
}

TEST(Cancellation, AnInterruptSignalIsNotedNotFatal) {
  stop_on_interrupt_signals();
  EXPECT_FALSE(interrupt_requested());
  std::raise(SIGTERM);  // would end the process without the handler
  EXPECT_TRUE(interrupt_requested());
  EXPECT_THROW(stop_if_requested(interrupt_requested, "pairs"), Cancelled);
}

}  // namespace
}  // namespace linkstyle
