// safetensors files: the JSON header, the tensors tiling the buffer exactly, reading and writing.
#include "linkstyle/tensor_io.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "tensor_io/tensor_bytes.hpp"

namespace linkstyle {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace tensor_bytes;

namespace {

constexpr std::string_view kSupportedSafetensors = "F32 F64 I64 I32 U8 BOOL I8";

// A name as a JSON string literal, so odd characters cannot break the one-line error message.
std::string quoted(const std::string& name) { return json(name).dump(-1, ' ', false, json::error_handler_t::replace); }

struct SafetensorsEntry {
  std::string name;
  c10::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

SafetensorsEntry parse_entry(const fs::path& path, const std::string& name, const json& value) {
  const std::string where = "tensor " + quoted(name);
  auto fail = [&](const std::string& why) { return Error(path, "safetensors " + where + ": " + why); };
  if (!value.is_object()) throw fail("entry is not a JSON object");
  const auto dtype = value.find("dtype");
  const auto shape = value.find("shape");
  const auto offsets = value.find("data_offsets");
  if (dtype == value.end() || shape == value.end() || offsets == value.end())
    throw fail("entry needs \"dtype\", \"shape\" and \"data_offsets\"");

  SafetensorsEntry entry{name, c10::kFloat, {}, 0, 0};
  const auto names = std::find_if(kDtypes.begin(), kDtypes.end(), [&](const DtypeNames& n) {
    return dtype->is_string() && n.safetensors == dtype->get_ref<const std::string&>();
  });
  if (names == kDtypes.end())
    throw fail("unsupported dtype " + dtype->dump() + " (supported: " + std::string(kSupportedSafetensors) + ")");
  entry.dtype = names->type;

  constexpr uint64_t kMaxDim = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (!shape->is_array()) throw fail("shape is not a list");
  for (const json& dim : *shape) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > kMaxDim)
      throw fail("shape holds " + dim.dump() + ", expected non-negative integers");
    entry.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
  }

  if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned())
    throw fail("data_offsets must be [begin, end] with non-negative integers");
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.end < entry.begin) throw fail("data_offsets end before they begin");

  const std::optional<uint64_t> needed = byte_size(entry.shape, entry.dtype);
  if (!needed) throw fail("shape is too large");
  if (entry.end - entry.begin != *needed)
    throw fail("data_offsets span " + std::to_string(entry.end - entry.begin) + " bytes but the shape needs " +
               std::to_string(*needed));
  return entry;
}

}  // namespace

void write_safetensors(const fs::path& path, const TensorMap& tensors, const MetadataMap& metadata) {
  json header = json::object();
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  // TensorMap is sorted, so the buffer holds the tensors in name order.
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw Error(path, "\"__metadata__\" is reserved and cannot name a tensor");
    data.push_back(storable(tensor, path.string() + ": tensor " + quoted(name)));
    const torch::Tensor& stored = data.back();
    const uint64_t end = offset + stored.nbytes();
    header[name] = {{"dtype", names_of(stored.scalar_type())->safetensors},
                    {"shape", stored.sizes().vec()},
                    {"data_offsets", json::array({offset, end})}};
    offset = end;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw Error(path, std::string("cannot encode the safetensors header: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the buffer 8-byte aligned

  AtomicFile file(path);
  std::string length;
  append_le(length, text.size(), 8);
  file.write(length);
  file.write(text);
  for (const torch::Tensor& tensor : data) file.write(bytes_of(tensor));
  file.commit();
}

SafetensorsContent read_safetensors(const fs::path& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < 8) throw Error(path, "not a safetensors file (shorter than its 8-byte header length)");
  const uint64_t header_size = read_le(bytes.data(), 8);
  if (header_size > bytes.size() - 8)
    throw Error(path, "safetensors header length " + std::to_string(header_size) + " exceeds the file size " +
                          std::to_string(bytes.size()) + " (truncated or not a safetensors file)");

  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
  } catch (const json::exception& e) {
    throw Error(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw Error(path, "safetensors header is not a JSON object");

  SafetensorsContent content;
  std::vector<SafetensorsEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name != "__metadata__") {
      entries.push_back(parse_entry(path, name, value));
      continue;
    }
    if (!value.is_object()) throw Error(path, "safetensors \"__metadata__\" is not a JSON object");
    for (const auto& [key, text] : value.items()) {
      if (!text.is_string()) throw Error(path, "safetensors metadata " + quoted(key) + " is not a string");
      content.metadata[key] = text.get<std::string>();
    }
  }

  // The spec requires the tensors to tile the buffer exactly: no overlaps, no holes, no tail.
  const std::string_view buffer = std::string_view(bytes).substr(8 + header_size);
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t covered = 0;
  for (const SafetensorsEntry& entry : entries) {
    const std::string where = "safetensors tensor " + quoted(entry.name) + ": ";
    if (entry.end > buffer.size())
      throw Error(path, where + "data_offsets end at " + std::to_string(entry.end) + ", past the " +
                            std::to_string(buffer.size()) + "-byte buffer (truncated file?)");
    if (entry.begin < covered) throw Error(path, where + "data overlaps another tensor");
    if (entry.begin > covered) throw Error(path, where + "unused bytes before its data");
    covered = entry.end;
  }
  if (covered != buffer.size())
    throw Error(path,
                std::to_string(buffer.size() - covered) + " unexpected trailing bytes after the safetensors data");

  for (const SafetensorsEntry& entry : entries)
    content.tensors[entry.name] =
        copy_tensor(path, entry.dtype, entry.shape, buffer.substr(entry.begin, entry.end - entry.begin));
  return content;
}

}  // namespace linkstyle
