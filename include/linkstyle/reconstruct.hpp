// linkstyle/reconstruct.hpp
//
// WHAT THIS REPRESENTS
//   How the classifier "sees" an image (method idea (1)): image -> r = features(x) -> w = L(r) ->
//   G(w), with the classifier's verdict on both and how well r survives the round trip.
// REQUIRES
//   A linking network fitted for this classifier and generator (checked by dimensions and by
//   the model fingerprints stored in its metadata). Images readable by OpenCV, at least 8x8.
// ENSURES
//   For each image: <output>/<stem>.png (original | reconstruction, side by side) and
//   <output>/<stem>.json (top-1 class of both, cosine(r, r of the reconstruction)), written
//   atomically. All images are read and checked before anything is written.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/linking.hpp"
#include "linkstyle/models.hpp"

namespace linkstyle {

// Throws Error naming the linking file when it does not fit these models.
void check_linking_network_matches(const LinkingNetwork& network, const std::filesystem::path& network_file,
                                   const Classifier& classifier, const Generator& generator);

struct ReconstructionOptions {
  std::filesystem::path output_folder;
  int display_side = 256;  // pixels per panel in the PNG
};

// Throws SettingError("reconstruct.side") for a display side < 1.
void check_reconstruction_options(const ReconstructionOptions& options);

// Returns the per-image results (also written to disk) as a JSON array.
nlohmann::json reconstruct_images(const Classifier& classifier, const Generator& generator,
                                  const LinkingNetwork& network, const std::vector<std::filesystem::path>& images,
                                  const ReconstructionOptions& options);

}  // namespace linkstyle
