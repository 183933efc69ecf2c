// linkstyle/distributed.hpp
//
// WHAT THIS REPRESENTS
//   One job over many processes, launched by torchrun or srun (docs/distributed.md): where this
//   process stands in it (LaunchEnvironment), the bytes the processes exchange (Message) and the
//   job itself (DistributedJob). Rank 0 coordinates: it plans the work, computes its own share and
//   writes every file of the study; the other ranks (workers) compute the items it hands them and
//   send the results back. Rendezvous goes through c10d's TCPStore, the messages through c10d's
//   ProcessGroupGloo (point to point, so that every failure names the rank it came from).
// REQUIRES
//   torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
//   MASTER_PORT) or, where they are absent, srun's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
//   SLURM_TASKS_PER_NODE, SLURM_JOB_NODELIST; MASTER_PORT if set, else 29500).
//   LINKSTYLE_TIMEOUT (seconds, default 600) bounds every wait.
// ENSURES
//   run_round() hands item k to rank k and returns the results in item order, so that the work
//   each item does, and the order in which rank 0 records it, do not depend on the number of
//   processes. Every send and receive ends within the timeout: a rank that dies, hangs or fails
//   is named in the Error rank 0 throws, and rank 0 then stops the workers, which throw an Error
//   naming why; a rank 0 that dies stops the workers the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace linkstyle {

struct LaunchEnvironment {
  std::string launcher;  // "torchrun", "srun" or "" (one process)
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_address = "127.0.0.1";
  int master_port = 29500;
  // torchrun's agent already serves the store (TORCHELASTIC_USE_AGENT_STORE): every rank is a
  // client, under the prefix of the agent's restart attempt.
  bool agent_store = false;
  std::string attempt = "0";
  std::chrono::milliseconds timeout{600'000};

  // Reads the launcher's variables; an Error names a variable that is malformed.
  static LaunchEnvironment from_environment();
  bool distributed() const { return world_size > 1; }
};

// The first host of a Slurm node list: "gpu[07-12,15],login1" -> "gpu07".
std::string first_host_of_node_list(const std::string& node_list);

// Bytes written and read in order: whole numbers, reals, strings and tensors (any dtype and
// shape; sent as their CPU contiguous bytes). Reading past the end, or a value of another kind
// than was written, is an Error naming the message.
class Message {
 public:
  Message() = default;
  explicit Message(std::string bytes) : bytes_(std::move(bytes)) {}

  Message& put(int64_t value);
  Message& put(double value);
  Message& put(const std::string& text);
  Message& put(const torch::Tensor& tensor);
  Message& put(const std::vector<double>& values);
  Message& put(const std::vector<int64_t>& values);

  int64_t take_int();
  double take_double();
  std::string take_string();
  torch::Tensor take_tensor();
  std::vector<double> take_doubles();
  std::vector<int64_t> take_ints();

  const std::string& bytes() const { return bytes_; }
  bool at_end() const { return read_ == bytes_.size(); }

 private:
  void append(char kind, const void* data, size_t size);
  const char* consume(char kind, size_t size);
  std::string bytes_;
  size_t read_ = 0;
};

class DistributedJob {
 public:
  // Computes one item on any rank.
  using Compute = std::function<Message(Message& item)>;

  // Joins the job of `environment` (its rendezvous waits up to the timeout for every rank);
  // nullptr when it is one process. `command` (the command line) must be the same on every rank:
  // rank 0 refuses a job whose ranks run different ones.
  static std::unique_ptr<DistributedJob> join(const LaunchEnvironment& environment, const std::string& command);
  ~DistributedJob();
  DistributedJob(const DistributedJob&) = delete;
  DistributedJob& operator=(const DistributedJob&) = delete;

  int rank() const;
  int size() const;
  bool is_coordinator() const { return rank() == 0; }
  // "rank 2 of 4": for messages.
  std::string describe(int rank) const;

  // Rank 0: item k (at most size() of them) goes to rank k, item 0 is computed here; returns the
  // results in item order. A worker's failure is rethrown here as an Error naming it.
  std::vector<Message> run_round(std::vector<Message> items, const Compute& compute);
  // run_round in two halves, for rank 0 to do other work between them: hand_out sends items 1..
  // to ranks 1..; collect returns `own` (item 0's result) and the other ranks' results.
  void hand_out(const std::vector<Message>& items);
  std::vector<Message> collect(size_t count, Message own);
  // Rank 0: the workers' serve() returns; after it, rank 0 goes on alone.
  void finish();
  // Workers: computes the items rank 0 hands out until it finishes. An Error if rank 0 stops the
  // job or cannot be reached within the timeout; a failure of compute is sent to rank 0, then
  // rethrown.
  void serve(const Compute& compute);

  // Bytes sent and received by this process so far (messages and their headers).
  int64_t bytes_sent() const;
  int64_t bytes_received() const;
  // Seconds rank 0 waited in collect() for the workers' results.
  double seconds_waiting() const;
  // Seconds rank 0 spent recording results (what the stage reports through add_seconds_recording):
  // with the seconds waiting, where a job's time goes on rank 0.
  double seconds_recording() const;
  void add_seconds_recording(double seconds);

 private:
  struct Impl;
  explicit DistributedJob(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs items 0..count-1 over the job (or here, when job is null) in rounds: make_item(i) on rank
// 0, compute on the rank that takes it, consume(i, result) on rank 0 in the order of i. Over a
// job, the workers get the next round before rank 0 consumes the last one, and consume runs on
// another thread (one call at a time, in order) while rank 0 computes its own next item: a stop
// that consume throws (Cancelled) leaves the round computed after it uncommitted. Workers call
// job->serve(compute) instead.
void run_items_in_order(DistributedJob* job, int64_t count, const std::function<Message(int64_t)>& make_item,
                        const DistributedJob::Compute& compute,
                        const std::function<void(int64_t, Message&)>& consume);

}  // namespace linkstyle
