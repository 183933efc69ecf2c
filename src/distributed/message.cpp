#include <cstring>

#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/distributed.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

// Each value is a kind byte, then its bytes: 'i' int64, 'd' double, 's' size + text,
// 't' dtype + dimensions + sizes + data.
void Message::append(char kind, const void* data, size_t size) {
  bytes_.push_back(kind);
  bytes_.append(static_cast<const char*>(data), size);
}

const char* Message::consume(char kind, size_t size) {
  if (read_ >= bytes_.size() || bytes_[read_] != kind || bytes_.size() - read_ - 1 < size)
    throw Error("message", fmt::format("expected a value of kind '{}' at byte {} of {}: the sender and receiver "
                                       "disagree (do all ranks run the same linkstyle?)",
                                       kind, read_, bytes_.size()));
  const char* data = bytes_.data() + read_ + 1;
  read_ += 1 + size;
  return data;
}

Message& Message::put(int64_t value) {
  append('i', &value, sizeof value);
  return *this;
}

Message& Message::put(double value) {
  append('d', &value, sizeof value);
  return *this;
}

Message& Message::put(const std::string& text) {
  const int64_t size = int64_t(text.size());
  append('s', &size, sizeof size);
  bytes_ += text;
  return *this;
}

Message& Message::put(const torch::Tensor& tensor) {
  const auto contiguous = tensor.to(torch::kCPU).contiguous();
  const int64_t header[2] = {int64_t(contiguous.scalar_type()), contiguous.dim()};
  append('t', header, sizeof header);
  for (const int64_t size : contiguous.sizes()) bytes_.append(reinterpret_cast<const char*>(&size), sizeof size);
  bytes_.append(static_cast<const char*>(contiguous.data_ptr()), contiguous.nbytes());
  return *this;
}

Message& Message::put(const std::vector<double>& values) {
  return put(torch::tensor(values, torch::kDouble));
}

Message& Message::put(const std::vector<int64_t>& values) {
  return put(torch::tensor(values, torch::kLong));
}

int64_t Message::take_int() {
  int64_t value;
  std::memcpy(&value, consume('i', sizeof value), sizeof value);
  return value;
}

double Message::take_double() {
  double value;
  std::memcpy(&value, consume('d', sizeof value), sizeof value);
  return value;
}

std::string Message::take_string() {
  int64_t size;
  std::memcpy(&size, consume('s', sizeof size), sizeof size);
  if (size < 0 || uint64_t(size) > bytes_.size() - read_) throw Error("message", "a text runs past its end");
  std::string text = bytes_.substr(read_, size_t(size));
  read_ += size_t(size);
  return text;
}

torch::Tensor Message::take_tensor() {
  int64_t header[2];
  std::memcpy(header, consume('t', sizeof header), sizeof header);
  if (header[0] < 0 || header[0] >= int64_t(c10::ScalarType::NumOptions) || header[1] < 0 || header[1] > 16 ||
      bytes_.size() - read_ < size_t(header[1]) * sizeof(int64_t))
    throw Error("message", "a tensor's header is corrupt");
  std::vector<int64_t> sizes(static_cast<size_t>(header[1]));
  std::memcpy(sizes.data(), bytes_.data() + read_, sizes.size() * sizeof(int64_t));
  read_ += sizes.size() * sizeof(int64_t);
  auto tensor = torch::empty(sizes, torch::TensorOptions(c10::ScalarType(header[0])));
  if (bytes_.size() - read_ < tensor.nbytes()) throw Error("message", "a tensor runs past its end");
  std::memcpy(tensor.data_ptr(), bytes_.data() + read_, tensor.nbytes());
  read_ += tensor.nbytes();
  return tensor;
}

std::vector<double> Message::take_doubles() {
  const auto tensor = take_tensor().to(torch::kDouble);
  return {tensor.data_ptr<double>(), tensor.data_ptr<double>() + tensor.numel()};
}

std::vector<int64_t> Message::take_ints() {
  const auto tensor = take_tensor().to(torch::kLong);
  return {tensor.data_ptr<int64_t>(), tensor.data_ptr<int64_t>() + tensor.numel()};
}

}  // namespace linkstyle
