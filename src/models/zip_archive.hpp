// linkstyle/src/models/zip_archive.hpp (private to the library)
//
// WHAT THIS REPRESENTS
//   The integrity check a model file passes before it is loaded: TorchScript .pt files are ZIP
//   archives (entries usually stored, method 0; ZIP64 records where files are large), and a file
//   damaged on disk or cut short by an interrupted copy must be named as such, not crash the loader.
// REQUIRES
//   `file` names a regular file. Only single-disk archives whose entries are stored (0) or
//   deflated (8), unencrypted, are accepted.
// ENSURES
//   verify_zip_archive reads the file through a read-only mapping (nothing is copied whole), walks
//   the central directory (ZIP64 end record and extra fields included) and, for every entry, its
//   local header and data: the data's CRC-32 and size must match what the central directory
//   records. Every offset and size is checked against the file size before it is read, whatever
//   the input. It returns the number of entries checked (0 for an empty archive) or throws
//   linkstyle::Error(file, problem), a one-line message naming the entry at fault where there is one.
#pragma once

#include <cstdint>
#include <filesystem>

namespace linkstyle {

// Checks that `file` is a whole ZIP archive whose every entry's data matches the CRC-32 and size
// its central directory records. Throws linkstyle::Error(file, problem) naming the entry at fault
// (e.g. "archive entry 'archive/data/3' fails its CRC check (the file is corrupt)") for: no end of
// central directory record (not a zip / truncated), a central directory or local header out of
// bounds, bad signatures, an unsupported compression method, a size or CRC mismatch. Returns the
// number of entries checked.
int64_t verify_zip_archive(const std::filesystem::path& file);

}  // namespace linkstyle
