// The parts of a many-process job that need no launcher: the launchers' variables, the messages,
// and a job of ranks on threads of this process (the end-to-end runs under torchrun and srun are
// tests/distributed/jobs.sh).
#include <cstdlib>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {
namespace {

// Sets variables for one test and removes every launcher variable afterwards.
class LauncherVariables : public ::testing::Test {
 protected:
  static void set(const std::vector<std::pair<const char*, const char*>>& variables) {
    for (const auto& [name, value] : variables) setenv(name, value, 1);
  }
  void TearDown() override {
    for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                             "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT", "SLURM_NTASKS",
                             "SLURM_PROCID", "SLURM_LOCALID", "SLURM_TASKS_PER_NODE", "SLURM_JOB_NODELIST",
                             "LINKSTYLE_TIMEOUT"})
      unsetenv(name);
  }
};

TEST_F(LauncherVariables, NoneMeansOneProcess) {
  const auto e = LaunchEnvironment::from_environment();
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.launcher, "");
}

TEST_F(LauncherVariables, TorchrunVariables) {
  set({{"WORLD_SIZE", "8"},
       {"RANK", "5"},
       {"LOCAL_RANK", "1"},
       {"LOCAL_WORLD_SIZE", "4"},
       {"MASTER_ADDR", "node7"},
       {"MASTER_PORT", "29400"},
       {"TORCHELASTIC_USE_AGENT_STORE", "True"},
       {"TORCHELASTIC_RESTART_COUNT", "2"},
       {"LINKSTYLE_TIMEOUT", "45"}});
  const auto e = LaunchEnvironment::from_environment();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_address, "node7");
  EXPECT_EQ(e.master_port, 29400);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.attempt, "2");
  EXPECT_EQ(e.timeout, std::chrono::seconds(45));
}

TEST_F(LauncherVariables, SrunVariablesWhenTorchrunsAreAbsent) {
  set({{"SLURM_NTASKS", "16"},
       {"SLURM_PROCID", "9"},
       {"SLURM_LOCALID", "1"},
       {"SLURM_TASKS_PER_NODE", "8(x2)"},
       {"SLURM_JOB_NODELIST", "gpu[003-004]"}});
  const auto e = LaunchEnvironment::from_environment();
  EXPECT_EQ(e.launcher, "srun");
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.rank, 9);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 8);
  EXPECT_EQ(e.master_address, "gpu003");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_FALSE(e.agent_store);
}

TEST_F(LauncherVariables, MalformedVariablesAreNamed) {
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "4", 1);  // beyond the world
  try {
    LaunchEnvironment::from_environment();
    FAIL() << "a rank beyond the world size was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.subject(), "RANK");
  }
  setenv("RANK", "1", 1);
  setenv("MASTER_PORT", "http", 1);
  EXPECT_THROW(LaunchEnvironment::from_environment(), Error);
  unsetenv("MASTER_PORT");
  unsetenv("RANK");
  EXPECT_THROW(LaunchEnvironment::from_environment(), Error);  // WORLD_SIZE without RANK
}

TEST(NodeList, FirstHost) {
  EXPECT_EQ(first_host_of_node_list("localhost"), "localhost");
  EXPECT_EQ(first_host_of_node_list("gpu[07-12,15],login1"), "gpu07");
  EXPECT_EQ(first_host_of_node_list("a1,b[2-3]"), "a1");
  EXPECT_EQ(first_host_of_node_list("rack[2]-node[01-04]"), "rack2-node[01-04]");
  EXPECT_EQ(first_host_of_node_list("n[5,7]x"), "n5x");
  EXPECT_THROW(first_host_of_node_list("gpu[07-12"), Error);
}

TEST(Message, RoundTripKeepsEveryBit) {
  const auto floats = torch::randn({3, 4, 5});
  const auto bytes = torch::randint(0, 255, {2, 7}, torch::kUInt8);
  const auto empty = torch::zeros({0, 3}, torch::kLong);
  const std::string text("a\0b\nc", 5);
  Message m;
  m.put(int64_t(-7)).put(std::nan("")).put(text).put(floats).put(bytes.t()).put(empty);
  m.put(std::vector<double>{1.5, -0.0}).put(std::vector<int64_t>{});
  Message r(m.bytes());
  EXPECT_EQ(r.take_int(), -7);
  EXPECT_TRUE(std::isnan(r.take_double()));
  EXPECT_EQ(r.take_string(), text);
  EXPECT_TRUE(torch::equal(r.take_tensor(), floats));
  const auto t = r.take_tensor();
  EXPECT_EQ(t.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(t, bytes.t()));
  EXPECT_EQ(r.take_tensor().sizes(), empty.sizes());
  const auto d = r.take_doubles();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(std::signbit(d[1]));
  EXPECT_TRUE(r.take_ints().empty());
  EXPECT_TRUE(r.at_end());
}

TEST(Message, ReadingAnotherKindOrPastTheEndIsAnError) {
  Message m;
  m.put(int64_t(1));
  Message a(m.bytes());
  EXPECT_THROW(a.take_double(), Error);
  Message b(m.bytes());
  b.take_int();
  EXPECT_THROW(b.take_int(), Error);
  Message c(m.bytes().substr(0, 4));  // truncated
  EXPECT_THROW(c.take_int(), Error);
}

// A job of `ranks` ranks on threads of this process, on a port of its own.
std::vector<std::unique_ptr<DistributedJob>> join_on_threads(int ranks, int port, int timeout_seconds,
                                                             const std::vector<std::string>& commands = {}) {
  std::vector<std::future<std::unique_ptr<DistributedJob>>> joining;
  for (int rank = 0; rank < ranks; ++rank)
    joining.push_back(std::async(std::launch::async, [=] {
      LaunchEnvironment e;
      e.launcher = "test";
      e.rank = rank, e.world_size = ranks, e.master_port = port;
      e.timeout = std::chrono::seconds(timeout_seconds);
      return DistributedJob::join(e, commands.empty() ? "same" : commands[size_t(rank)]);
    }));
  std::vector<std::unique_ptr<DistributedJob>> jobs;
  for (auto& j : joining) jobs.push_back(j.get());
  return jobs;
}

Message square(Message& item) {
  const int64_t x = item.take_int();
  Message result;
  result.put(x * x);
  return result;
}

TEST(DistributedJob, ItemsComeBackInOrderFromEveryRank) {
  auto jobs = join_on_threads(3, 29651, 60);
  std::vector<std::thread> workers;
  std::vector<int64_t> served(3, 0);
  for (int rank = 1; rank < 3; ++rank)
    workers.emplace_back([&, rank] {
      jobs[size_t(rank)]->serve([&](Message& item) {
        served[size_t(rank)] += 1;
        return square(item);
      });
    });
  std::vector<int64_t> squares;
  run_items_in_order(
      jobs[0].get(), 7, [](int64_t i) { return Message().put(i); }, square,
      [&](int64_t i, Message& result) {
        EXPECT_EQ(int64_t(squares.size()), i);
        squares.push_back(result.take_int());
      });
  jobs[0]->finish();
  for (auto& w : workers) w.join();
  EXPECT_EQ(squares, (std::vector<int64_t>{0, 1, 4, 9, 16, 25, 36}));
  EXPECT_EQ(served[1], 2);  // items 1 and 4
  EXPECT_EQ(served[2], 2);  // items 2 and 5
  EXPECT_GT(jobs[0]->bytes_received(), 0);
}

TEST(DistributedJob, AWorkersFailureIsNamedAndStopsTheJob) {
  auto jobs = join_on_threads(3, 29652, 60);
  std::promise<std::string> worker_errors[2];
  std::vector<std::thread> workers;
  for (int rank = 1; rank < 3; ++rank)
    workers.emplace_back([&, rank] {
      try {
        jobs[size_t(rank)]->serve([&](Message& item) {
          if (rank == 2) throw Error("unit 5", "NaN in the features");
          return square(item);
        });
        worker_errors[rank - 1].set_value("");
      } catch (const std::exception& error) {
        worker_errors[rank - 1].set_value(error.what());
      }
    });
  try {
    jobs[0]->run_round({Message().put(int64_t(0)), Message().put(int64_t(1)), Message().put(int64_t(2))}, square);
    FAIL() << "the failure of rank 2 was not reported";
  } catch (const Error& error) {
    EXPECT_EQ(error.subject(), "rank 2 of 3");
    EXPECT_NE(std::string(error.what()).find("NaN in the features"), std::string::npos);
  }
  jobs[0].reset();  // rank 0 stops: the workers are told
  for (auto& w : workers) w.join();
  EXPECT_NE(worker_errors[0].get_future().get().find("rank 1 of 3: stopped"), std::string::npos);
  EXPECT_NE(worker_errors[1].get_future().get().find("NaN in the features"), std::string::npos);
}

TEST(DistributedJob, ASilentRankTimesOut) {
  auto jobs = join_on_threads(2, 29653, 2);
  std::promise<void> release;
  std::thread worker([&] {
    // Never serves: rank 0's round must end with the timeout, naming rank 1.
    release.get_future().wait();
  });
  const auto started = std::chrono::steady_clock::now();
  try {
    jobs[0]->run_round({Message().put(int64_t(0)), Message().put(int64_t(1))}, square);
    FAIL() << "a silent rank was not noticed";
  } catch (const Error& error) {
    EXPECT_EQ(error.subject(), "rank 1 of 2");
    EXPECT_NE(std::string(error.what()).find("LINKSTYLE_TIMEOUT"), std::string::npos) << error.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  release.set_value();
  worker.join();
}

TEST(DistributedJob, RanksRunningAnotherCommandAreRefused) {
  std::vector<std::future<std::string>> joining;
  const std::vector<std::string> commands = {"sweep --study a", "sweep --study b"};
  for (int rank = 0; rank < 2; ++rank)
    joining.push_back(std::async(std::launch::async, [&, rank]() -> std::string {
      LaunchEnvironment e;
      e.rank = rank, e.world_size = 2, e.master_port = 29654;
      e.timeout = std::chrono::seconds(20);
      try {
        auto job = DistributedJob::join(e, commands[size_t(rank)]);
        if (rank == 1) job->serve(square);
        return "";
      } catch (const std::exception& error) {
        return error.what();
      }
    }));
  const std::string coordinator = joining[0].get();
  EXPECT_NE(coordinator.find("rank 1 of 2: runs `sweep --study b`"), std::string::npos) << coordinator;
  EXPECT_NE(joining[1].get(), "");  // the worker learns the job stopped
}

}  // namespace
}  // namespace linkstyle
