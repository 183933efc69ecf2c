// The job's processes through c10d: a TCPStore for the rendezvous, ProcessGroupGloo for the
// messages (distributed.hpp).
#include <cstdlib>
#include <cstring>
#include <future>
#include <set>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace {

// What rank 0 sends: an item to compute, the end of the work, or the end of the job after an
// error. What a worker answers: a result, or its error.
enum Code : char { kItem = 'I', kFinish = 'F', kAbort = 'A', kResult = 'R', kFailed = 'E' };

// Tags of Gloo's point-to-point messages: a size, then the bytes.
constexpr int kSizeTag = 1, kBytesTag = 2;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

struct DistributedJob::Impl {
  LaunchEnvironment environment;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  bool finished = false;
  int64_t sent = 0, received = 0;
  double waiting = 0.0;    // seconds rank 0 waited for results
  double recording = 0.0;  // seconds rank 0 recorded results
  std::set<int> gone;         // ranks that failed or cannot be reached: rank 0 tells them nothing more
  std::set<int> outstanding;  // ranks computing an item rank 0 has not collected

  std::string describe(int rank) const {
    return rank == 0 && environment.world_size > 1 ? fmt::format("rank 0 of {} (the coordinator)", environment.world_size)
                                                   : fmt::format("rank {} of {}", rank, environment.world_size);
  }

  [[noreturn]] void fail(int peer, const char* doing, const std::exception& error) {
    gone.insert(peer);
    const std::string what = first_line(error.what());
    if (what.find("Timed out") != std::string::npos)
      throw Error(describe(peer), fmt::format("{} nothing within {} s (LINKSTYLE_TIMEOUT): it hangs, or one item takes "
                                              "longer than the timeout allows; what was committed stays, run the "
                                              "same command again to resume",
                                              doing, environment.timeout.count() / 1000));
    throw Error(describe(peer), fmt::format("is gone ({}); what was committed stays, run the same command again to "
                                            "resume",
                                            what));
  }

  // Starts sending `bytes` to rank `to` (their size, then them); the sends end when `to` receives.
  std::vector<c10::intrusive_ptr<c10d::Work>> start_sending(int to, const std::string& bytes) {
    std::vector<at::Tensor> size{torch::tensor({int64_t(bytes.size())}, torch::kLong)};
    std::vector<at::Tensor> data{torch::empty({int64_t(bytes.size())}, torch::kUInt8)};
    std::memcpy(data[0].data_ptr(), bytes.data(), bytes.size());
    return {group->send(size, to, kSizeTag), group->send(data, to, kBytesTag)};
  }

  void send(int to, const std::string& bytes) {
    try {
      for (auto& work : start_sending(to, bytes)) work->wait(environment.timeout);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& error) {
      fail(to, "received", error);
    }
    sent += int64_t(bytes.size()) + 8;
  }

  std::string receive(int from) {
    std::string bytes;
    try {
      std::vector<at::Tensor> size{torch::zeros({1}, torch::kLong)};
      group->recv(size, from, kSizeTag)->wait(environment.timeout);
      std::vector<at::Tensor> data{torch::empty({size[0].item<int64_t>()}, torch::kUInt8)};
      group->recv(data, from, kBytesTag)->wait(environment.timeout);
      bytes.assign(static_cast<const char*>(data[0].data_ptr()), size_t(data[0].numel()));
    } catch (const std::exception& error) {
      fail(from, "sent", error);
    }
    if (bytes.empty()) throw Error(describe(from), "sent an empty message");
    received += int64_t(bytes.size()) + 8;
    return bytes;
  }
};

std::unique_ptr<DistributedJob> DistributedJob::join(const LaunchEnvironment& environment,
                                                     const std::string& command) {
  if (!environment.distributed()) return nullptr;
  auto impl = std::make_unique<Impl>();
  impl->environment = environment;
  const std::string where = fmt::format("{}:{}", environment.master_address, environment.master_port);
  try {
    c10d::TCPStoreOptions options;
    options.port = uint16_t(environment.master_port);
    options.isServer = environment.rank == 0 && !environment.agent_store;
    options.numWorkers = environment.world_size;
    options.waitWorkers = false;
    options.timeout = environment.timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(environment.master_address, options);
    impl->store = environment.agent_store
                      ? c10::intrusive_ptr<c10d::Store>(
                            c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + environment.attempt, tcp))
                      : c10::intrusive_ptr<c10d::Store>(tcp);
    auto gloo = c10d::ProcessGroupGloo::Options::create(environment.timeout);
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    gloo->devices.push_back(interface && *interface ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                                    : c10d::ProcessGroupGloo::createDefaultDevice());
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("linkstyle", impl->store), environment.rank, environment.world_size,
        gloo);
  } catch (const std::exception& error) {
    throw Error(fmt::format("rank {} of {}", environment.rank, environment.world_size),
                fmt::format("could not join the job at {} ({}) within {} s: {}", where, environment.launcher,
                            environment.timeout.count() / 1000, first_line(error.what())));
  }
  std::unique_ptr<DistributedJob> job(new DistributedJob(std::move(impl)));
  // Every rank must run the same command, or their shares would not make one result.
  if (job->is_coordinator()) {
    for (int rank = 1; rank < job->size(); ++rank) {
      const std::string theirs = job->impl_->receive(rank);
      if (theirs != command)
        throw Error(job->describe(rank), fmt::format("runs `{}`, but rank 0 runs `{}`: every rank must run the same "
                                                     "command",
                                                     theirs, command));
    }
  } else {
    job->impl_->send(0, command);
  }
  return job;
}

DistributedJob::DistributedJob(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DistributedJob::~DistributedJob() {
  if (!is_coordinator() || impl_->finished) return;
  // Rank 0 stops early (an error, a stop request): the workers must not wait for it. A worker
  // still computing an item is answered when it returns it (its send waits for rank 0's receive);
  // the others are told at once.
  const std::string order = std::string(1, kAbort) + "rank 0 stopped the job (its output says why)";
  std::vector<c10::intrusive_ptr<c10d::Work>> sending;
  const auto tell = [&](int rank) {
    try {
      for (auto& work : impl_->start_sending(rank, order)) sending.push_back(std::move(work));
    } catch (const std::exception&) {
      // That rank is gone already.
    }
  };
  for (int rank = 1; rank < size(); ++rank)
    if (!impl_->gone.count(rank) && !impl_->outstanding.count(rank)) tell(rank);
  for (const int rank : impl_->outstanding) {
    if (impl_->gone.count(rank)) continue;
    try {
      impl_->receive(rank);  // its result, dropped
      tell(rank);
    } catch (const std::exception&) {
    }
  }
  for (auto& work : sending) {
    try {
      work->wait(impl_->environment.timeout);
    } catch (const std::exception&) {
    }
  }
}

int DistributedJob::rank() const { return impl_->environment.rank; }
int DistributedJob::size() const { return impl_->environment.world_size; }
std::string DistributedJob::describe(int rank) const { return impl_->describe(rank); }
int64_t DistributedJob::bytes_sent() const { return impl_->sent; }
int64_t DistributedJob::bytes_received() const { return impl_->received; }
double DistributedJob::seconds_waiting() const { return impl_->waiting; }
double DistributedJob::seconds_recording() const { return impl_->recording; }
void DistributedJob::add_seconds_recording(double seconds) { impl_->recording += seconds; }

void DistributedJob::hand_out(const std::vector<Message>& items) {
  if (!is_coordinator()) throw Error(describe(rank()), "only rank 0 hands out work");
  if (items.empty() || items.size() > size_t(size()))
    throw Error(describe(rank()), fmt::format("a round of {} items for {} ranks", items.size(), size()));
  for (size_t k = 1; k < items.size(); ++k) {
    impl_->send(int(k), std::string(1, kItem) + items[k].bytes());
    impl_->outstanding.insert(int(k));
  }
}

std::vector<Message> DistributedJob::collect(size_t count, Message own) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<Message> results(count);
  results[0] = std::move(own);
  for (size_t k = 1; k < count; ++k) {
    std::string reply = impl_->receive(int(k));
    impl_->outstanding.erase(int(k));
    if (reply[0] == kFailed) {
      impl_->gone.insert(int(k));
      throw Error(describe(int(k)), reply.substr(1));
    }
    if (reply[0] != kResult) throw Error(describe(int(k)), "sent something other than a result");
    results[k] = Message(reply.substr(1));
  }
  impl_->waiting += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return results;
}

std::vector<Message> DistributedJob::run_round(std::vector<Message> items, const Compute& compute) {
  hand_out(items);
  Message own = compute(items[0]);
  return collect(items.size(), std::move(own));
}

void DistributedJob::finish() {
  if (!is_coordinator() || impl_->finished) return;
  for (int rank = 1; rank < size(); ++rank) impl_->send(rank, std::string(1, kFinish));
  impl_->finished = true;
}

void DistributedJob::serve(const Compute& compute) {
  for (;;) {
    const std::string order = impl_->receive(0);
    if (order[0] == kFinish) return;
    if (order[0] == kAbort) throw Error(describe(rank()), "stopped: " + order.substr(1));
    if (order[0] != kItem) throw Error(describe(0), "sent something other than an item");
    Message item(order.substr(1)), result;
    try {
      result = compute(item);
    } catch (const std::exception& error) {
      // Rank 0 reports it and stops the job; this rank stops too.
      try {
        impl_->send(0, std::string(1, kFailed) + first_line(error.what()));
      } catch (const std::exception&) {
      }
      throw;
    }
    impl_->send(0, std::string(1, kResult) + result.bytes());
  }
}

void run_items_in_order(DistributedJob* job, int64_t count, const std::function<Message(int64_t)>& make_item,
                        const DistributedJob::Compute& compute,
                        const std::function<void(int64_t, Message&)>& consume) {
  if (!job) {
    for (int64_t i = 0; i < count; ++i) {
      Message item = make_item(i);
      Message result = compute(item);
      consume(i, result);
    }
    return;
  }
  const int64_t ranks = job->size();
  const auto round_from = [&](int64_t first) {
    std::vector<Message> items;
    for (int64_t i = first; i < std::min(count, first + ranks); ++i) items.push_back(make_item(i));
    return items;
  };
  // The workers get their next items as soon as they return a round; rank 0 consumes that round
  // on another thread while it computes its own next item.
  std::future<void> consuming;
  std::vector<Message> items = count > 0 ? round_from(0) : std::vector<Message>{};
  if (!items.empty()) job->hand_out(items);
  for (int64_t first = 0; first < count; first += ranks) {
    Message own = compute(items[0]);
    auto results = std::make_shared<std::vector<Message>>(job->collect(items.size(), std::move(own)));
    if (first + ranks < count) {
      items = round_from(first + ranks);
      job->hand_out(items);
    }
    if (consuming.valid()) consuming.get();
    consuming = std::async(std::launch::async, [&consume, job, results, first] {
      const auto started = std::chrono::steady_clock::now();
      for (size_t k = 0; k < results->size(); ++k) consume(first + int64_t(k), (*results)[k]);
      job->add_seconds_recording(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    });
  }
  if (consuming.valid()) consuming.get();
}

}  // namespace linkstyle
