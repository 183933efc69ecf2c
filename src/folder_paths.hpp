// A path given relative to a folder (as the results database or a request names it), resolved
// only when it stays inside that folder: "../", absolute paths and symbolic links out of it give
// nothing.
#pragma once

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>

namespace linkstyle {

inline std::optional<std::filesystem::path> path_inside_folder(const std::filesystem::path& folder,
                                                               const std::string& relative) {
  if (relative.empty() || std::filesystem::path(relative).is_absolute()) return std::nullopt;
  std::error_code error;
  const auto root = std::filesystem::weakly_canonical(folder, error);
  if (error) return std::nullopt;
  const auto path = std::filesystem::weakly_canonical(folder / relative, error);
  if (error || std::mismatch(root.begin(), root.end(), path.begin(), path.end()).first != root.end())
    return std::nullopt;
  return path;
}

}  // namespace linkstyle
