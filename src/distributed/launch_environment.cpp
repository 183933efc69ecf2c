#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace {

const char* variable(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

// A whole number in [low, high] from the variable `name`.
int number_from(const char* name, const char* text, int low, int high) {
  try {
    size_t used = 0;
    const long value = std::stol(text, &used);
    if (used == std::string(text).size() && value >= low && value <= high) return int(value);
  } catch (const std::exception&) {
  }
  throw Error(name, fmt::format("'{}' is not a whole number in [{}, {}]", text, low, high));
}

constexpr int kMost = 1 << 20;

// The world size, rank and local rank from a launcher's variables (the first one is set).
void read_ranks(LaunchEnvironment& e, const char* world_variable, const char* rank_variable,
                const char* local_variable) {
  e.world_size = number_from(world_variable, variable(world_variable), 1, kMost);
  const char* rank = variable(rank_variable);
  if (!rank)
    throw Error(rank_variable, fmt::format("is not set, but {} is (launch with {})", world_variable, e.launcher));
  e.rank = number_from(rank_variable, rank, 0, e.world_size - 1);
  if (const char* local = variable(local_variable)) e.local_rank = number_from(local_variable, local, 0, kMost);
}

// Slurm's tasks per node, "4(x2),3": the first node's count.
int first_node_tasks(const char* text) {
  const std::string value(text);
  const std::string first = value.substr(0, value.find_first_of("(,"));
  return number_from("SLURM_TASKS_PER_NODE", first.c_str(), 1, 1 << 20);
}

}  // namespace

std::string first_host_of_node_list(const std::string& node_list) {
  // The first entry at bracket depth 0: "gpu[07-12,15]" of "gpu[07-12,15],login1".
  size_t end = 0;
  for (int depth = 0; end < node_list.size(); ++end) {
    if (node_list[end] == '[') ++depth;
    if (node_list[end] == ']') --depth;
    if (node_list[end] == ',' && depth == 0) break;
  }
  const std::string entry = node_list.substr(0, end);
  const size_t open = entry.find('[');
  if (open == std::string::npos) return entry;
  const size_t close = entry.find(']', open);
  if (close == std::string::npos) throw Error("SLURM_JOB_NODELIST", "'" + node_list + "' has an unclosed '['");
  // The first number of the range keeps its zero padding: "07-12" -> "07".
  const std::string range = entry.substr(open + 1, close - open - 1);
  const std::string first = range.substr(0, range.find_first_of("-,"));
  if (first.empty()) throw Error("SLURM_JOB_NODELIST", "'" + node_list + "' has an empty range");
  return entry.substr(0, open) + first + entry.substr(close + 1);
}

LaunchEnvironment LaunchEnvironment::from_environment() {
  LaunchEnvironment e;
  if (variable("WORLD_SIZE")) {
    e.launcher = "torchrun";
    read_ranks(e, "WORLD_SIZE", "RANK", "LOCAL_RANK");
    if (const char* local = variable("LOCAL_WORLD_SIZE"))
      e.local_world_size = number_from("LOCAL_WORLD_SIZE", local, 1, kMost);
    if (const char* address = variable("MASTER_ADDR")) e.master_address = address;
    e.agent_store = variable("TORCHELASTIC_USE_AGENT_STORE") &&
                    std::string(variable("TORCHELASTIC_USE_AGENT_STORE")) == "True";
    if (const char* attempt = variable("TORCHELASTIC_RESTART_COUNT")) e.attempt = attempt;
  } else if (variable("SLURM_NTASKS")) {
    e.launcher = "srun";
    read_ranks(e, "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID");
    if (const char* per_node = variable("SLURM_TASKS_PER_NODE")) e.local_world_size = first_node_tasks(per_node);
    if (const char* address = variable("MASTER_ADDR"))
      e.master_address = address;
    else if (const char* nodes = variable("SLURM_JOB_NODELIST"))
      e.master_address = first_host_of_node_list(nodes);
    else if (const char* nodes = variable("SLURM_NODELIST"))
      e.master_address = first_host_of_node_list(nodes);
  }
  if (const char* port = variable("MASTER_PORT")) e.master_port = number_from("MASTER_PORT", port, 1, 65535);
  if (const char* seconds = variable("LINKSTYLE_TIMEOUT"))
    e.timeout = std::chrono::seconds(number_from("LINKSTYLE_TIMEOUT", seconds, 1, 7 * 24 * 3600));
  return e;
}

}  // namespace linkstyle
