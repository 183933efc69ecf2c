// A batch of counterfactuals as a Message: explained on any rank of a job, written by rank 0
// (counterfactual/counterfactual_run.hpp).
#include <utility>

#include "counterfactual/counterfactual_run.hpp"
#include "linkstyle/errors.hpp"
#include "sweep/row_messages.hpp"

namespace linkstyle::counterfactual_run {

// A batch as a Message, for rank 0 to write (every value as its bytes).
Message batch_message(const ExplainedBatch& batch) {
  Message m;
  m.put(int64_t(batch.records.size()));
  for (const auto& r : batch.records) {
    m.put(r.sample).put(r.source_class).put(r.latent_id).put(r.origin).put(int64_t(r.success)).put(r.steps);
    m.put(r.units_90).put(r.counterfactual_class).put(r.judge_class);
    m.put(std::vector<double>{r.shift_l1, r.shift_l2, r.pixel_distance, r.feature_distance,
                              r.relative_feature_distance, r.source_probability, r.target_probability,
                              r.crossing_alpha, r.realism, r.margin, r.judge_target_probability, r.judge_realism,
                              r.exact_shift_cosine});
    m.put(r.image).put(r.path_image).put(r.tensors).put(r.path_probability).put(r.path_class);
    std::vector<int64_t> units;
    std::vector<double> shifts;
    for (const auto& [unit, shift] : r.top_units) units.push_back(unit), shifts.push_back(shift);
    m.put(units).put(shifts);
    put_part_measures(m, {r.original_parts, r.counterfactual_parts, r.round_trip_parts, r.exact_parts});
  }
  m.put(int64_t(batch.images.size()));
  for (const auto& [name, png] : batch.images) m.put(name).put(png);
  m.put(batch.tensors_file).put(int64_t(batch.tensors.size()));
  for (const auto& [name, tensor] : batch.tensors) m.put(name).put(tensor);
  m.put(batch.optimisation.checks).put(batch.optimisation.seconds).put(batch.optimisation.check_seconds);
  return m;
}

ExplainedBatch take_batch(Message& m) {
  ExplainedBatch batch;
  for (int64_t i = m.take_int(); i > 0; --i) {
    CounterfactualRecord r;
    r.sample = m.take_int(), r.source_class = m.take_int(), r.latent_id = m.take_int();
    r.origin = m.take_string();
    r.success = m.take_int() != 0;
    r.steps = m.take_int(), r.units_90 = m.take_int(), r.counterfactual_class = m.take_int();
    r.judge_class = m.take_int();
    const auto v = m.take_doubles();
    if (v.size() != 13) throw Error("message", "a counterfactual's measures are of the wrong size");
    r.shift_l1 = v[0], r.shift_l2 = v[1], r.pixel_distance = v[2], r.feature_distance = v[3];
    r.relative_feature_distance = v[4], r.source_probability = v[5], r.target_probability = v[6];
    r.crossing_alpha = v[7], r.realism = v[8], r.margin = v[9], r.judge_target_probability = v[10];
    r.judge_realism = v[11], r.exact_shift_cosine = v[12];
    r.image = m.take_string(), r.path_image = m.take_string(), r.tensors = m.take_string();
    r.path_probability = m.take_doubles();
    r.path_class = m.take_ints();
    const auto units = m.take_ints();
    const auto shifts = m.take_doubles();
    for (size_t k = 0; k < units.size() && k < shifts.size(); ++k) r.top_units.emplace_back(units[k], shifts[k]);
    auto parts = take_part_measures(m);
    if (parts.size() != 4) throw Error("message", "a counterfactual's parts are of the wrong size");
    r.original_parts = std::move(parts[0]), r.counterfactual_parts = std::move(parts[1]);
    r.round_trip_parts = std::move(parts[2]), r.exact_parts = std::move(parts[3]);
    batch.records.push_back(std::move(r));
  }
  for (int64_t i = m.take_int(); i > 0; --i) {
    std::string name = m.take_string();
    batch.images.emplace_back(std::move(name), m.take_string());
  }
  batch.tensors_file = m.take_string();
  for (int64_t i = m.take_int(); i > 0; --i) {
    std::string name = m.take_string();
    batch.tensors[name] = m.take_tensor();
  }
  batch.optimisation.checks = m.take_int();
  batch.optimisation.seconds = m.take_double();
  batch.optimisation.check_seconds = m.take_double();
  return batch;
}

}  // namespace linkstyle::counterfactual_run
