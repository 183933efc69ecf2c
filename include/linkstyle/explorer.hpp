// linkstyle/explorer.hpp
//
// WHAT THIS REPRESENTS
//   The live explorer of a study (`linkstyle serve`, docs/report.md): a session over the study's
//   classifier, generator, linking network and segmenter that starts from a tuning sample or an
//   uploaded image, sets any units of r to chosen values, and answers with G(L(r')), the
//   classifier's top classes and the segmenter's parts; it also runs a counterfactual from there
//   and renders its path. explorer_server.hpp puts it behind an HTTP server.
// REQUIRES
//   A study with a fitted linking network.
// ENSURES
//   Requests and answers are JSON. A bad request (unknown unit or class, a value that is not a
//   finite number, an undecodable or oversized upload, a path outside the study) is an
//   ExplorerRequestError with an HTTP status (4xx) and a reason.
//   Model calls are serialised, so any number of threads may call at once. It reads only files
//   inside the study folder and writes none.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "linkstyle/study.hpp"

namespace c10 {
struct Device;
}

namespace linkstyle {

class ExplorerRequestError : public std::runtime_error {
 public:
  ExplorerRequestError(int status, const std::string& reason) : std::runtime_error(reason), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

class Explorer {
 public:
  Explorer(const StudyConfig& study, const c10::Device& device);
  ~Explorer();
  Explorer(const Explorer&) = delete;
  Explorer& operator=(const Explorer&) = delete;

  // {study, classes, units: [{unit, label, expressible, min, max}] (index = unit), samples:
  //  [{sample, class, name}], has_parts, resolution}
  nlohmann::json describe() const;
  // {sample | upload, units: {"<unit>": value | null}} -> {image, parts, top, base_values, milliseconds}
  // (images as PNG data URLs; null keeps the unit's own value and reports it in base_values).
  nlohmann::json render(const nlohmann::json& request);
  // An image file's bytes -> {upload, class, name}; uploads are kept in memory (the last 32).
  nlohmann::json upload(const std::string& bytes);
  // {sample | upload, units?, to, method?} -> {success, steps, method, realism, realism_threshold
  //  (null without the target's pairs), target, frames: [{alpha, image,
  //  target_probability, top_class, top_name}], units: [{unit, shift, label}]}
  // Starts from the sliders' r' when units are given. method "realistic" uses the study's pairs.
  nlohmann::json counterfactual(const nlohmann::json& request);
  // The counterfactual being optimised, for a page to show while it waits:
  // {running, step, max_steps} (another request may ask while one runs).
  nlohmann::json counterfactual_progress() const;
  // A file of the study by its path relative to the study folder: its bytes, or a 403 / 404
  // ExplorerRequestError for a path outside the study or a missing file.
  std::string study_file(const std::string& relative, std::string* content_type) const;

  static constexpr size_t max_upload_bytes = 16u << 20;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace linkstyle
