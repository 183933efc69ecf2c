// The pairs' manifest.json: its reading, with every count and file name checked, and its
// writing (pairs.hpp).
#include "linkstyle/pairs.hpp"

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A count of the manifest: a whole number in [0, 2^63) (the JSON library would convert a
// fraction or a number beyond int64 with undefined behaviour).
int64_t count_at(const json& object, const char* key, const fs::path& file) {
  const json& value = object.at(key);
  if (!value.is_number_integer() || (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(INT64_MAX)) ||
      value.get<int64_t>() < 0)
    throw Error(file, fmt::format("corrupt manifest: '{}' must be a whole number >= 0", key));
  return value.get<int64_t>();
}

// A file name of the manifest: a plain name inside the pairs folder.
std::string file_name_at(const json& object, const char* key, const fs::path& file) {
  const std::string name = object.at(key).get<std::string>();
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos)
    throw Error(file, fmt::format("corrupt manifest: '{}' must be a file name inside the pairs folder", key));
  return name;
}

// A class index written as a JSON key: decimal digits, below 2^40.
int64_t class_key(const std::string& key, const fs::path& file) {
  if (key.empty() || key.size() > 12 || key.find_first_not_of("0123456789") != std::string::npos)
    throw Error(file, fmt::format("corrupt manifest: '{}' is not a class index", key));
  return std::stoll(key);
}

}  // namespace

PairsManifest PairsManifest::load(const fs::path& pairs_folder) {
  PairsManifest m;
  m.folder = pairs_folder;
  const fs::path file = m.file();
  json j;
  try {
    j = json::parse(read_file(file));
    if (j.at("format") != "linkstyle-pairs-1") throw Error(file, "not a linkstyle pairs manifest");
    m.models = j.at("models");
    m.settings = j.at("settings");
    const auto count = [&](const json& object, const char* key) { return count_at(object, key, file); };
    const auto name = [&](const json& object, const char* key) { return file_name_at(object, key, file); };
    m.feature_dim = count(j, "feature_dim");
    m.latent_dim = count(j, "latent_dim");
    m.total_rows = count(j, "total_rows");
    m.statistics = j.at("statistics").get<std::string>();
    if (!m.statistics.empty()) m.statistics = name(j, "statistics");
    m.statistics_holdout_fraction = j.at("statistics_holdout_fraction");
    m.complete = j.at("complete");
    for (const auto& s : j.at("shards"))
      m.shards.push_back({name(s, "features"), name(s, "latents"), name(s, "labels"), name(s, "latent_ids"),
                          count(s, "rows"), count(s, "first_row")});
    for (const auto& c : j.at("classes")) {
      ClassProgress progress{count(c, "generator_class"), count(c, "classifier_class"), c.at("name"),
                             count(c, "batches_drawn"), count(c, "drawn"), count(c, "accepted"), c.at("done"), {}};
      if (c.contains("rejected_predicted_as"))
        for (const auto& [predicted, times] : c.at("rejected_predicted_as").items())
          progress.rejected_predicted_as[class_key(predicted, file)] =
              count(c.at("rejected_predicted_as"), predicted.c_str());
      m.classes.push_back(std::move(progress));
    }
  } catch (const json::exception& error) {
    throw Error(file, std::string("corrupt manifest: ") + error.what());
  }
  return m;
}

void PairsManifest::save() const {
  json shards_json = json::array(), classes_json = json::array();
  for (const auto& s : shards)
    shards_json.push_back({{"features", s.features},
                           {"latents", s.latents},
                           {"labels", s.labels},
                           {"latent_ids", s.latent_ids},
                           {"rows", s.rows},
                           {"first_row", s.first_row}});
  for (const auto& c : classes) {
    json rejected = json::object();
    for (const auto& [predicted, times] : c.rejected_predicted_as) rejected[std::to_string(predicted)] = times;
    classes_json.push_back({{"generator_class", c.generator_class},
                            {"classifier_class", c.classifier_class},
                            {"name", c.name},
                            {"batches_drawn", c.batches_drawn},
                            {"drawn", c.drawn},
                            {"accepted", c.accepted},
                            {"done", c.done},
                            {"acceptance_rate", c.acceptance_rate()},
                            {"rejected_predicted_as", rejected}});
  }
  json j = {{"format", "linkstyle-pairs-1"}, {"models", models},
            {"settings", settings},          {"feature_dim", feature_dim},
            {"latent_dim", latent_dim},      {"total_rows", total_rows},
            {"statistics", statistics},      {"statistics_holdout_fraction", statistics_holdout_fraction},
            {"complete", complete},          {"shards", shards_json},
            {"classes", classes_json}};
  write_file_atomically(file(), j.dump(2) + "\n");
}

}  // namespace linkstyle
