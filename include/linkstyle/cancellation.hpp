// linkstyle/cancellation.hpp
//
// WHAT THIS REPRESENTS
//   A clean stop of a long stage (pairs, sweep) between two of its commits: the stage asks its
//   StopRequested after every commit (a pairs shard, a sweep chunk) and, when the answer is yes,
//   throws Cancelled. What was committed stays; the same command resumes from there.
// REQUIRES
//   Nothing; an empty StopRequested never stops.
// ENSURES
//   stop_on_interrupt_signals() makes SIGINT and SIGTERM set a flag that interrupt_requested()
//   reads (async-signal-safe); a second SIGINT ends the process at once, as usual.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

namespace linkstyle {

// Asked after each commit; true stops the stage.
using StopRequested = std::function<bool()>;

struct Cancelled : std::runtime_error {
  explicit Cancelled(const std::string& stage) : std::runtime_error(stage + " stopped; run it again to resume") {}
};

// Throws Cancelled(stage) when `stop` is set and asks to stop.
void stop_if_requested(const StopRequested& stop, const std::string& stage);

void stop_on_interrupt_signals();
bool interrupt_requested();

}  // namespace linkstyle
