// Fuzzes the IDX reader (read_idx in src/worlds/idx_reader.cpp): the input is the file's bytes, read
// as is (plain, or gzip when it starts with 1f 8b), and, when it is not gzip already, also
// gzip-compressed here so that the decoder path sees the same IDX content. linkstyle::Error is the
// expected outcome for bad input. Findings: a crash or sanitizer report, any other exception, a
// hang or a huge allocation, and the plain and compressed reads disagreeing.
#include <cstring>
#include <string>

#include <torch/types.h>
#include <zlib.h>

#include "fuzz_support.hpp"
#include "linkstyle/worlds/fashion.hpp"

using namespace linkstyle;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::initialise();
  return 0;
}

namespace {

std::string gzip(std::string_view bytes) {
  z_stream stream{};
  if (deflateInit2(&stream, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fuzz::finding("deflateInit2 failed");
  std::string out(deflateBound(&stream, bytes.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) fuzz::finding("deflate failed");
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  torch::Tensor plain;
  const bool plain_ok = fuzz::accepts([&] { plain = read_idx(fuzz::write_input("input.idx", bytes)); });
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;

  torch::Tensor unzipped;
  const bool gzip_ok = fuzz::accepts([&] { unzipped = read_idx(fuzz::write_input("input.idx.gz", gzip(bytes))); });
  if (plain_ok != gzip_ok) fuzz::finding("read_idx accepts the plain and the gzip file differently");
  if (plain_ok && !fuzz::same_tensor(plain, unzipped))
    fuzz::finding("read_idx reads the plain and the gzip file differently");
  return 0;
}
