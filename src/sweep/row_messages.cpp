#include "sweep/row_messages.hpp"

#include <torch/torch.h>

#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace {

// Lists of lists as their sizes and one [total, fields] float64 table.
template <typename T, typename Row>
void put_nested(Message& message, const std::vector<std::vector<T>>& lists, int64_t fields, Row row) {
  std::vector<int64_t> sizes;
  std::vector<double> values;
  for (const auto& list : lists) {
    sizes.push_back(int64_t(list.size()));
    for (const auto& item : list) {
      const std::vector<double> v = row(item);
      values.insert(values.end(), v.begin(), v.end());
    }
  }
  message.put(sizes).put(torch::tensor(values, torch::kDouble).view({-1, fields}));
}

template <typename T, typename Item>
std::vector<std::vector<T>> take_nested(Message& message, int64_t fields, Item item) {
  const auto sizes = message.take_ints();
  const auto table = message.take_tensor();
  if (table.scalar_type() != torch::kDouble || table.dim() != 2 || table.size(1) != fields)
    throw Error("message", "a table of measures has the wrong shape");
  const double* v = table.data_ptr<double>();
  std::vector<std::vector<T>> lists(sizes.size());
  int64_t row = 0;
  for (size_t i = 0; i < sizes.size(); ++i)
    for (int64_t k = 0; k < sizes[i]; ++k, ++row) {
      if (row >= table.size(0)) throw Error("message", "a table of measures is short");
      lists[i].push_back(item(v + row * fields));
    }
  return lists;
}

constexpr int64_t kPartFields = 13, kMotionFields = 4;
static_assert(sizeof(PartMeasures) == 8 + 12 * sizeof(double), "a new field of PartMeasures must be sent too");

}  // namespace

void put_part_measures(Message& message, const std::vector<std::vector<PartMeasures>>& images) {
  put_nested(message, images, kPartFields, [](const PartMeasures& m) {
    return std::vector<double>{double(m.part), m.area,       m.luminance,     m.entropy,      m.centre_x,
                               m.centre_y,     m.major_axis, m.minor_axis,    m.angle_degrees, m.eccentricity,
                               m.hue_degrees,  m.saturation, m.texture};
  });
}

std::vector<std::vector<PartMeasures>> take_part_measures(Message& message) {
  return take_nested<PartMeasures>(message, kPartFields, [](const double* v) {
    PartMeasures m;
    m.part = int(v[0]);
    m.area = v[1], m.luminance = v[2], m.entropy = v[3], m.centre_x = v[4], m.centre_y = v[5];
    m.major_axis = v[6], m.minor_axis = v[7], m.angle_degrees = v[8], m.eccentricity = v[9];
    m.hue_degrees = v[10], m.saturation = v[11], m.texture = v[12];
    return m;
  });
}

void put_unit_rows(Message& message, const UnitChunkRows& rows) {
  std::vector<int64_t> units;
  std::vector<double> cycle;
  for (const auto& u : rows.units) {
    units.push_back(u.unit);
    cycle.insert(cycle.end(), {u.range_min, u.range_max, u.gain, u.correlation, u.off_unit_correlation_p99,
                               u.specificity, u.logit_change, u.class_flip_rate});
  }
  message.put(units).put(cycle).put(rows.samples).put(rows.steps);
  for (const auto& tensor : {rows.values, rows.activation, rows.other_change, rows.class_logit, rows.top_class,
                             rows.change_mean, rows.change_count})
    message.put(tensor);
  put_part_measures(message, *rows.parts);
  std::vector<std::vector<PartMotion>> motion;
  for (const auto& unit : rows.motion) motion.insert(motion.end(), unit.begin(), unit.end());
  put_nested(message, motion, kMotionFields,
             [](const PartMotion& m) { return std::vector<double>{double(m.part), m.dx, m.dy, m.area}; });
}

UnitChunkRows take_unit_rows(Message& message, std::vector<std::vector<PartMeasures>>& parts) {
  UnitChunkRows rows;
  const auto units = message.take_ints();
  const auto cycle = message.take_doubles();
  if (cycle.size() != units.size() * 8) throw Error("message", "unit rows of the wrong size");
  for (size_t i = 0; i < units.size(); ++i) {
    const double* v = cycle.data() + 8 * i;
    rows.units.push_back({units[i], v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]});
  }
  rows.samples = message.take_int();
  rows.steps = message.take_int();
  for (auto* tensor : {&rows.values, &rows.activation, &rows.other_change, &rows.class_logit, &rows.top_class,
                       &rows.change_mean, &rows.change_count})
    *tensor = message.take_tensor();
  parts = take_part_measures(message);
  rows.parts = &parts;
  const auto motion = take_nested<PartMotion>(message, kMotionFields, [](const double* v) {
    return PartMotion{int(v[0]), v[1], v[2], v[3]};
  });
  if (motion.size() != units.size() * size_t(rows.samples)) throw Error("message", "motion rows of the wrong size");
  rows.motion.resize(units.size());
  for (size_t u = 0; u < units.size(); ++u)
    rows.motion[u].assign(motion.begin() + std::ptrdiff_t(u * size_t(rows.samples)),
                          motion.begin() + std::ptrdiff_t((u + 1) * size_t(rows.samples)));
  return rows;
}

void put_null_rows(Message& message, const NullChunkRows& rows) {
  message.put(rows.directions).put(rows.bins).put(rows.norms).put(rows.change_mean).put(rows.change_count);
}

NullChunkRows take_null_rows(Message& message) {
  NullChunkRows rows;
  rows.directions = message.take_ints();
  rows.bins = message.take_ints();
  rows.norms = message.take_doubles();
  rows.change_mean = message.take_tensor();
  rows.change_count = message.take_tensor();
  return rows;
}

}  // namespace linkstyle
