#include "linkstyle/cancellation.hpp"

#include <atomic>
#include <csignal>

namespace linkstyle {

namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt_signal(int signal_number) {
  if (signal_number == SIGINT && interrupted.load()) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  interrupted.store(true);
}

}  // namespace

void stop_if_requested(const StopRequested& stop, const std::string& stage) {
  if (stop && stop()) throw Cancelled(stage);
}

void stop_on_interrupt_signals() {
  std::signal(SIGINT, on_interrupt_signal);
  std::signal(SIGTERM, on_interrupt_signal);
}

bool interrupt_requested() { return interrupted.load(); }

}  // namespace linkstyle
