// linkstyle/sweep.hpp
//
// WHAT THIS REPRESENTS
//   A study's unit sweeps and their measures (method steps 3 and 4, docs/sweeps.md): for each
//   classifier unit and tuning sample (tuning_set.hpp), the unit is set to `steps` values over its
//   range and the images G(L(r)) are re-encoded, segmented and measured (image_pipeline.hpp);
//   concept changes (concept_changes.hpp) are tested against random directions of the same norm
//   (selectivity.hpp) and everything goes to the study's results database (results_database.hpp).
// REQUIRES
//   A study with a linking network fitted for its classifier and generator; sweep settings from
//   study.toml ([sweep]); units within [0, D).
// ENSURES
//   run_sweep() works in chunks of units_per_chunk units (and of null directions), each written
//   in one transaction, so a killed or stopped run resumes where it stopped and ends with exactly
//   the rows of an uninterrupted run (same values for a seed, batch size and thread count). A
//   database made with other settings, models or linking network is an error naming it. Images
//   are only kept as strip PNGs (sweeps/strips/unit-UUUUU-sample-SSS.png) for the top
//   strip_units units and any asked for; sweeps/summary.json holds the run's summary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "linkstyle/cancellation.hpp"
#include "linkstyle/image_pipeline.hpp"
#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/study.hpp"

namespace linkstyle {

class DistributedJob;  // distributed.hpp

struct SweepRunOptions {
  std::vector<int64_t> strip_units;  // strips for these units too
  // Asked after each chunk is committed: true stops the run (Cancelled); it resumes later.
  StopRequested stop_requested;
  bool progress = true;
  // With overlap, a chunk's flow, statistics and rows are computed and written on another thread
  // while the next chunk is rendered and measured; chunks still commit in order, one transaction
  // each.
  Overlap overlap = Overlap::automatic;
  // A job of many processes: the chunks go round the ranks, a chunk per rank at a time, and
  // rank 0 records them in order and writes everything (the database holds the rows of one
  // process); the other ranks measure what they are handed and return an empty summary.
  DistributedJob* job = nullptr;
};

struct SweepSummary {
  std::filesystem::path database;
  std::string part_source;
  int64_t units = 0, units_resumed = 0, expressible = 0, labelled = 0;
  int64_t images = 0;  // rendered and measured in this run (strips excluded)
  double seconds = 0, images_per_second = 0;
  int64_t batch_size = 0;              // images per call: sweep.batch_size, or fewer to fit the memory budget
  double batch_memory_per_image = 0;   // bytes one more image in a batch takes (measured; 0: unknown)
  std::vector<std::filesystem::path> strips;
  std::vector<std::string> warnings;  // what makes the results weaker than asked for, with the reason
  nlohmann::json to_json() const;
};

SweepSummary run_sweep(const StudyConfig& study, const Classifier& classifier, const Generator& generator,
                       const LinkingNetwork& network, const SweepRunOptions& options = {});

}  // namespace linkstyle
