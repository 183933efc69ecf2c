// Tests for models/zip_archive.hpp: whole archives pass, and any damage (a flipped byte, a cut,
// garbage, a bad offset) is a one-line linkstyle::Error naming the file, and the entry at fault.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zlib.h>

#include "linkstyle/errors.hpp"
#include "models/zip_archive.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::ScratchDir;

// ---------------------------------------------------------------------------------------------
// A tiny ZIP writer (PKWARE APPNOTE layout), enough to build the archives the checks meet.

struct ZipEntry {
  std::string name;
  std::string data;
  bool deflate = false;
};

struct ZipOptions {
  bool zip64 = false;            // ZIP64 end records, and sizes and offsets in ZIP64 extra fields
  bool data_descriptor = false;  // flag bit 3: zero CRC and sizes in the local header, a descriptor after the data
  bool local_padding = true;     // an extra field in the local header only, as torch.save aligns the data
};

struct BuiltZip {
  std::string bytes;
  std::vector<uint64_t> data_offsets;  // where each entry's (possibly compressed) data starts
  uint64_t central_directory_offset = 0;
  uint64_t end_record_offset = 0;
};

void put(std::string& out, uint64_t value, int count) {
  for (int i = 0; i < count; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

void patch(std::string& bytes, uint64_t offset, uint64_t value, int count) {
  for (int i = 0; i < count; ++i) bytes[offset + i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

uint32_t crc_of(const std::string& data) {
  return static_cast<uint32_t>(
      crc32(crc32(0, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

std::string raw_deflate(const std::string& data) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

BuiltZip build_zip(const std::vector<ZipEntry>& entries, const ZipOptions& options = {}) {
  constexpr uint32_t kMissing32 = 0xFFFFFFFF;
  BuiltZip zip;
  std::string central;
  const uint16_t flags = options.data_descriptor ? 0x0808 : 0x0800;  // bit 11: UTF-8 names
  for (const ZipEntry& entry : entries) {
    const std::string stored = entry.deflate ? raw_deflate(entry.data) : entry.data;
    const uint32_t crc = crc_of(entry.data);
    const uint16_t method = entry.deflate ? 8 : 0;
    const uint64_t header_offset = zip.bytes.size();

    std::string local_extra;
    if (options.zip64 && !options.data_descriptor) {
      put(local_extra, 0x0001, 2);
      put(local_extra, 16, 2);
      put(local_extra, entry.data.size(), 8);
      put(local_extra, stored.size(), 8);
    }
    if (options.local_padding) {
      put(local_extra, 0x4246, 2);  // "FB", torch.save's alignment padding
      put(local_extra, 6, 2);
      local_extra += std::string(6, 'Z');
    }
    std::string& out = zip.bytes;
    put(out, 0x04034b50, 4);
    put(out, options.zip64 ? 45 : 20, 2);
    put(out, flags, 2);
    put(out, method, 2);
    put(out, 0, 4);  // time and date
    put(out, options.data_descriptor ? 0 : crc, 4);
    const uint64_t local_size = options.data_descriptor ? 0 : options.zip64 ? kMissing32 : stored.size();
    const uint64_t local_uncompressed = options.data_descriptor ? 0 : options.zip64 ? kMissing32 : entry.data.size();
    put(out, local_size, 4);
    put(out, local_uncompressed, 4);
    put(out, entry.name.size(), 2);
    put(out, local_extra.size(), 2);
    out += entry.name;
    out += local_extra;
    zip.data_offsets.push_back(out.size());
    out += stored;
    if (options.data_descriptor) {
      put(out, 0x08074b50, 4);
      put(out, crc, 4);
      put(out, stored.size(), options.zip64 ? 8 : 4);
      put(out, entry.data.size(), options.zip64 ? 8 : 4);
    }

    std::string central_extra;
    if (options.zip64) {
      put(central_extra, 0x0001, 2);
      put(central_extra, 24, 2);
      put(central_extra, entry.data.size(), 8);
      put(central_extra, stored.size(), 8);
      put(central_extra, header_offset, 8);
    }
    put(central, 0x02014b50, 4);
    put(central, options.zip64 ? 45 : 20, 2);  // made by
    put(central, options.zip64 ? 45 : 20, 2);  // needed
    put(central, flags, 2);
    put(central, method, 2);
    put(central, 0, 4);
    put(central, crc, 4);
    put(central, options.zip64 ? kMissing32 : stored.size(), 4);
    put(central, options.zip64 ? kMissing32 : entry.data.size(), 4);
    put(central, entry.name.size(), 2);
    put(central, central_extra.size(), 2);
    put(central, 0, 2);  // comment
    put(central, 0, 2);  // disk
    put(central, 0, 2);  // internal attributes
    put(central, 0, 4);  // external attributes
    put(central, options.zip64 ? kMissing32 : header_offset, 4);
    central += entry.name;
    central += central_extra;
  }
  std::string& out = zip.bytes;
  zip.central_directory_offset = out.size();
  out += central;
  if (options.zip64) {
    const uint64_t record_offset = out.size();
    put(out, 0x06064b50, 4);
    put(out, 44, 8);
    put(out, 45, 2);
    put(out, 45, 2);
    put(out, 0, 4);
    put(out, 0, 4);
    put(out, entries.size(), 8);
    put(out, entries.size(), 8);
    put(out, central.size(), 8);
    put(out, zip.central_directory_offset, 8);
    put(out, 0x07064b50, 4);
    put(out, 0, 4);
    put(out, record_offset, 8);
    put(out, 1, 4);
  }
  zip.end_record_offset = out.size();
  put(out, 0x06054b50, 4);
  put(out, 0, 2);
  put(out, 0, 2);
  put(out, options.zip64 ? 0xFFFF : entries.size(), 2);
  put(out, options.zip64 ? 0xFFFF : entries.size(), 2);
  put(out, options.zip64 ? kMissing32 : central.size(), 4);
  put(out, options.zip64 ? kMissing32 : zip.central_directory_offset, 4);
  put(out, 0, 2);
  return zip;
}

fs::path write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string pseudo_random_bytes(size_t count, uint32_t seed) {
  std::mt19937 generator(seed);
  std::string bytes(count, '\0');
  for (char& byte : bytes) byte = static_cast<char>(generator() & 0xFF);
  return bytes;
}

// An archive shaped like a TorchScript file: data entries, a pickle, a deflated code file.
std::vector<ZipEntry> model_like_entries() {
  std::vector<ZipEntry> entries;
  for (int i = 0; i < 4; ++i)
    entries.push_back({"archive/data/" + std::to_string(i), pseudo_random_bytes(size_t(300 + 700 * i), i + 1)});
  entries.push_back({"archive/data.pkl", std::string("\x80\x02}q\x00.", 6)});
  std::string code;
  for (int line = 0; line < 200; ++line)
    code += "def forward(self, x):\n  return self.layer" + std::to_string(line) + "(x)\n";
  entries.push_back({"archive/code/__torch__.py", code, /*deflate=*/true});
  entries.push_back({"archive/empty", ""});
  entries.push_back({"archive/version", "3\n"});
  return entries;
}

// ---------------------------------------------------------------------------------------------

TEST(ZipArchive, AWholeArchivePassesAndCountsItsEntries) {
  ScratchDir dir("zip-whole");
  const auto entries = model_like_entries();
  EXPECT_EQ(verify_zip_archive(write_bytes(dir / "model.pt", build_zip(entries).bytes)), int64_t(entries.size()));
  ZipOptions no_padding;
  no_padding.local_padding = false;
  EXPECT_EQ(verify_zip_archive(write_bytes(dir / "plain.zip", build_zip(entries, no_padding).bytes)),
            int64_t(entries.size()));
}

TEST(ZipArchive, AnArchiveWithDataDescriptorsPasses) {
  // torch.save sets flag bit 3: the local headers hold zero CRC and sizes.
  ScratchDir dir("zip-descriptor");
  ZipOptions options;
  options.data_descriptor = true;
  const auto entries = model_like_entries();
  EXPECT_EQ(verify_zip_archive(write_bytes(dir / "model.pt", build_zip(entries, options).bytes)),
            int64_t(entries.size()));
}

TEST(ZipArchive, AnEmptyArchiveIsAccepted) {
  ScratchDir dir("zip-empty");
  EXPECT_EQ(verify_zip_archive(write_bytes(dir / "empty.zip", build_zip({}).bytes)), 0);
  ZipOptions zip64;
  zip64.zip64 = true;
  EXPECT_EQ(verify_zip_archive(write_bytes(dir / "empty64.zip", build_zip({}, zip64).bytes)), 0);
}

TEST(ZipArchive, AZip64ArchivePasses) {
  ScratchDir dir("zip-64");
  const auto entries = model_like_entries();
  for (const bool descriptor : {false, true}) {
    ZipOptions options;
    options.zip64 = true;
    options.data_descriptor = descriptor;
    const fs::path file = write_bytes(dir / "model.pt", build_zip(entries, options).bytes);
    EXPECT_EQ(verify_zip_archive(file), int64_t(entries.size())) << "data descriptor: " << descriptor;
  }
}

TEST(ZipArchive, AFlippedByteInAnEntrysDataFailsNamingThatEntry) {
  ScratchDir dir("zip-flip");
  for (const bool zip64 : {false, true}) {
    ZipOptions options;
    options.zip64 = zip64;
    BuiltZip zip = build_zip(model_like_entries(), options);
    zip.bytes[zip.data_offsets[3] + 1000] ^= 0x01;
    const fs::path file = write_bytes(dir / "model.pt", zip.bytes);
    expect_error([&] { verify_zip_archive(file); }, {file.string(), "'archive/data/3'", "CRC", "corrupt"});
  }
}

TEST(ZipArchive, ADeflatedEntryPassesAndACorruptOneFails) {
  ScratchDir dir("zip-deflate");
  const std::string text(100000, 'a');
  std::vector<ZipEntry> entries{{"archive/code/a.py", text + pseudo_random_bytes(5000, 7), true},
                                {"archive/code/b.py", text, true}};
  ZipOptions options;
  options.data_descriptor = true;  // the central directory alone records the sizes
  BuiltZip zip = build_zip(entries, options);
  EXPECT_EQ(verify_zip_archive(write_bytes(dir / "model.pt", zip.bytes)), 2);

  // Whether zlib notices the damage or only the CRC does, the entry is named.
  const uint64_t a_compressed = zip.data_offsets[1] - zip.data_offsets[0] - 16 - 30 - entries[1].name.size() - 10;
  for (const uint64_t at : {uint64_t(0), uint64_t(10), a_compressed / 2, a_compressed - 5}) {
    std::string damaged = zip.bytes;
    damaged[zip.data_offsets[0] + at] ^= 0x20;
    const fs::path file = write_bytes(dir / "damaged.pt", damaged);
    expect_error([&] { verify_zip_archive(file); }, {file.string(), "'archive/code/a.py'", "corrupt"});
  }

  // A deflate stream whose recorded size is wrong, either way.
  std::string wrong_size = zip.bytes;
  const uint64_t b_central = zip.central_directory_offset + 46 + entries[0].name.size();
  patch(wrong_size, b_central + 24, text.size() - 1, 4);
  const fs::path smaller = write_bytes(dir / "smaller.pt", wrong_size);
  expect_error([&] { verify_zip_archive(smaller); }, {smaller.string(), "'archive/code/b.py'", "more than"});
}

TEST(ZipArchive, ATruncatedArchiveFails) {
  ScratchDir dir("zip-truncated");
  for (const bool zip64 : {false, true}) {
    ZipOptions options;
    options.zip64 = zip64;
    const BuiltZip zip = build_zip(model_like_entries(), options);
    const uint64_t size = zip.bytes.size();
    for (const uint64_t kept :
         {size - 1, size - 10, size - 22, zip.end_record_offset - 1, zip.central_directory_offset + 50,
          zip.central_directory_offset, size / 2, uint64_t(100), uint64_t(30), uint64_t(1)}) {
      const fs::path file = write_bytes(dir / "cut.pt", zip.bytes.substr(0, kept));
      expect_error([&] { verify_zip_archive(file); }, {file.string()});
    }
    const fs::path file = write_bytes(dir / "cut.pt", zip.bytes.substr(0, size / 2));
    expect_error([&] { verify_zip_archive(file); }, {file.string(), "not a zip archive, or truncated"});
  }
}

TEST(ZipArchive, GarbageEmptyAndMissingFilesFail) {
  ScratchDir dir("zip-garbage");
  const fs::path empty = write_bytes(dir / "empty.pt", "");
  expect_error([&] { verify_zip_archive(empty); }, {empty.string(), "empty"});
  const fs::path garbage = write_bytes(dir / "garbage.pt", pseudo_random_bytes(100000, 11));
  expect_error([&] { verify_zip_archive(garbage); }, {garbage.string(), "not a zip archive"});
  const fs::path tiny = write_bytes(dir / "tiny.pt", "PK\x05\x06");
  expect_error([&] { verify_zip_archive(tiny); }, {tiny.string(), "not a zip archive"});
  const fs::path text = write_bytes(dir / "model.txt", "this is not a model\n");
  expect_error([&] { verify_zip_archive(text); }, {text.string(), "not a zip archive"});
  expect_error([&] { verify_zip_archive(dir / "missing.pt"); }, {(dir / "missing.pt").string(), "not found"});
  expect_error([&] { verify_zip_archive(dir.path()); }, {dir.path().string(), "folder"});
}

TEST(ZipArchive, ACentralDirectoryBeyondTheFileFails) {
  ScratchDir dir("zip-offset");
  BuiltZip zip = build_zip(model_like_entries());
  patch(zip.bytes, zip.end_record_offset + 16, zip.bytes.size() + 100, 4);
  const fs::path file = write_bytes(dir / "model.pt", zip.bytes);
  expect_error([&] { verify_zip_archive(file); }, {file.string(), "central directory", "outside the file"});

  ZipOptions options;
  options.zip64 = true;
  BuiltZip zip64 = build_zip(model_like_entries(), options);
  const uint64_t record = zip64.end_record_offset - 20 - 56;
  patch(zip64.bytes, record + 48, uint64_t(1) << 62, 8);
  const fs::path file64 = write_bytes(dir / "model64.pt", zip64.bytes);
  expect_error([&] { verify_zip_archive(file64); }, {file64.string(), "central directory", "outside the file"});

  BuiltZip far_size = build_zip(model_like_entries(), options);
  patch(far_size.bytes, record + 40, ~uint64_t(0), 8);  // offset + size overflows 64 bits
  const fs::path overflow = write_bytes(dir / "overflow.pt", far_size.bytes);
  expect_error([&] { verify_zip_archive(overflow); }, {overflow.string(), "central directory"});
}

TEST(ZipArchive, DamagedHeadersFailNamingTheEntry) {
  ScratchDir dir("zip-headers");
  const auto entries = model_like_entries();
  ZipOptions options;
  options.data_descriptor = true;  // the central directory alone records the sizes
  const BuiltZip zip = build_zip(entries, options);
  const uint64_t second_central = zip.central_directory_offset + 46 + entries[0].name.size();

  std::string bad_signature = zip.bytes;
  bad_signature[zip.data_offsets[2] - 10 - entries[2].name.size() - 30] ^= 0x01;  // local header of data/2
  const fs::path signature = write_bytes(dir / "signature.pt", bad_signature);
  expect_error([&] { verify_zip_archive(signature); }, {signature.string(), "'archive/data/2'", "local header"});

  std::string far_header = zip.bytes;
  patch(far_header, second_central + 42, zip.bytes.size() + 5, 4);
  const fs::path header = write_bytes(dir / "header.pt", far_header);
  expect_error([&] { verify_zip_archive(header); }, {header.string(), "'archive/data/1'", "out of bounds"});

  std::string huge_size = zip.bytes;
  patch(huge_size, second_central + 20, 0xFFFFFFF0, 4);
  patch(huge_size, second_central + 24, 0xFFFFFFF0, 4);
  const fs::path size = write_bytes(dir / "size.pt", huge_size);
  expect_error([&] { verify_zip_archive(size); }, {size.string(), "'archive/data/1'", "running past"});

  std::string method = zip.bytes;
  patch(method, second_central + 10, 12, 2);  // bzip2
  const fs::path bzip2 = write_bytes(dir / "method.pt", method);
  expect_error([&] { verify_zip_archive(bzip2); }, {bzip2.string(), "'archive/data/1'", "method 12"});

  std::string count = zip.bytes;
  patch(count, zip.end_record_offset + 8, 5000, 2);
  patch(count, zip.end_record_offset + 10, 5000, 2);
  const fs::path counted = write_bytes(dir / "count.pt", count);
  expect_error([&] { verify_zip_archive(counted); }, {counted.string(), "5000 entries"});

  std::string central_signature = zip.bytes;
  central_signature[second_central] ^= 0x01;
  const fs::path central = write_bytes(dir / "central.pt", central_signature);
  expect_error([&] { verify_zip_archive(central); }, {central.string(), "entry #2", "bad signature"});
}

TEST(ZipArchive, HostileNamesStayOnOneLine) {
  ScratchDir dir("zip-names");
  BuiltZip zip = build_zip({{"bad\nname\x01'", "payload"}});
  zip.bytes[zip.data_offsets[0]] ^= 0x01;
  const fs::path file = write_bytes(dir / "model.pt", zip.bytes);
  expect_error([&] { verify_zip_archive(file); }, {file.string(), "bad\\x0Aname\\x01\\x27", "CRC"});
}

TEST(ZipArchive, AnyDamageIsAnErrorOrHarmless) {
  // Random byte damage and every possible cut: never a crash or a read out of bounds (run under
  // AddressSanitizer), only success or linkstyle::Error.
  ScratchDir dir("zip-fuzz");
  const fs::path file = dir / "model.pt";
  std::mt19937 generator(2024);
  for (const bool zip64 : {false, true}) {
    ZipOptions options;
    options.zip64 = zip64;
    options.data_descriptor = zip64;
    const std::string bytes = build_zip(model_like_entries(), options).bytes;
    const uint64_t metadata_start = build_zip(model_like_entries(), options).central_directory_offset;
    for (uint64_t kept = 0; kept < bytes.size(); kept += 1 + kept / 64) {
      write_bytes(file, bytes.substr(0, kept));
      EXPECT_THROW(verify_zip_archive(file), Error) << "kept " << kept << " bytes";
    }
    for (int trial = 0; trial < 400; ++trial) {
      std::string damaged = bytes;
      const int flips = 1 + static_cast<int>(generator() % 4);
      for (int i = 0; i < flips; ++i) {
        // Half the damage hits the central directory and end records, where the offsets are.
        const uint64_t from = trial % 2 == 0 ? metadata_start : 0;
        damaged[from + generator() % (damaged.size() - from)] = static_cast<char>(generator() & 0xFF);
      }
      write_bytes(file, damaged);
      try {
        verify_zip_archive(file);
      } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos) << error.what();
      }
    }
  }
}

}  // namespace
}  // namespace linkstyle
