#include "linkstyle/image_pipeline.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include <ATen/Parallel.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "sweep/background_thread.hpp"
#include "sweep/image_view.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

namespace {

// One batch's classifier outputs, part labels and 8-bit pixels; measure() fills result.parts.
struct EncodedBatch {
  torch::Tensor features, logits, pixels, labels;
  int64_t start = 0;

  void measure(MeasuredImages& result, int num_parts) const {
    const int64_t side = pixels.size(1);
    at::parallel_for(0, pixels.size(0), 4, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const cv::Mat rgb = image_view(side, CV_8UC3, pixels[i].data_ptr());
        const cv::Mat label = image_view(side, CV_32SC1, labels[i].data_ptr());
        result.parts[size_t(start + i)] = measure_parts(rgb, label, num_parts);
      }
    });
  }
};

// images [n, 3, side, side] in [0, 1] on any device; latents for sources that read them. All the
// device's work is queued before the first copy back, so that a GPU runs it without waiting.
EncodedBatch encode_batch(const Classifier& classifier, const PartSource& parts, const torch::Tensor& images,
                          const torch::Tensor& latents, const std::vector<torch::Tensor>& feature_maps, int64_t start,
                          const fs::path& source) {
  const auto r = classifier.features(images.to(classifier.device()));
  const auto logits = classifier.head(r);
  const auto labels =
      feature_maps.empty() ? parts.label(images, latents) : parts.label_feature_maps(images, feature_maps);
  // Quantised where the images are (a GPU copies a quarter of the bytes back).
  const auto pixels = images.mul(255).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1});
  EncodedBatch batch;
  batch.start = start;
  batch.features = r.to(torch::kCPU, torch::kFloat);
  batch.logits = logits.to(torch::kCPU, torch::kFloat);
  batch.labels = labels.contiguous().to(torch::kCPU, torch::kInt);
  batch.pixels = pixels.contiguous().to(torch::kCPU);
  const int64_t side = images.size(2);
  if (images.size(3) != side || batch.labels.size(1) != side || batch.labels.size(2) != side)
    throw Error(source, "images and part labels differ in size");
  return batch;
}

// A stream of `device` other than its current one, for the work that runs beside the generator's
// (none on a CPU, whose work has no streams).
std::optional<c10::Stream> side_stream(const c10::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
  return c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device);
}

// One group's results as its batches come in.
struct GroupInProgress {
  MeasuredImages result;
  std::vector<torch::Tensor> features, logits, images, labels;
  int64_t batches_left = 0;

  // Adds a batch; true when it was the group's last (result is then complete).
  bool add(const EncodedBatch& batch, bool keep_images) {
    features.push_back(batch.features);
    logits.push_back(batch.logits);
    if (keep_images) {
      images.push_back(batch.pixels);
      labels.push_back(batch.labels);
    }
    if (--batches_left > 0) return false;
    result.features = torch::cat(features);
    result.logits = torch::cat(logits);
    if (keep_images) {
      result.images = torch::cat(images);
      result.labels = torch::cat(labels);
    }
    return true;
  }
};

// One copy of a group's latents to the generator's device; to a GPU from pinned memory, so that
// it does not wait for the batches already queued there.
torch::Tensor latents_on_device(const torch::Tensor& latents, const c10::Device& device) {
  auto host_latents = latents.to(torch::kFloat);
  if (device.is_cuda() && host_latents.device().is_cpu()) host_latents = host_latents.pin_memory();
  return host_latents.to(device, torch::kFloat, /*non_blocking=*/true);
}

// On a device with streams: an event after the batch's synthesis for the encoding stream to wait
// on; the images and latents, made on the generator's stream, are marked as read on the other.
std::optional<c10::Event> hand_over(const c10::Device& device, const std::optional<c10::Stream>& encode_stream,
                                    const torch::Tensor& generated, const torch::Tensor& w) {
  if (!encode_stream) return std::nullopt;
  const c10::impl::VirtualGuardImpl guard(device.type());
  std::optional<c10::Event> rendered;
  rendered.emplace(device.type());
  rendered->record(guard.getStream(device));
  guard.recordDataPtrOnStream(generated.storage().data_ptr(), *encode_stream);
  guard.recordDataPtrOnStream(w.storage().data_ptr(), *encode_stream);
  return rendered;
}

}  // namespace

void measure_latent_groups(const SweepModels& models, int64_t groups,
                           const std::function<torch::Tensor(int64_t group)>& latents_of,
                           const std::function<void(int64_t group, MeasuredImages&& measured)>& on_measured,
                           int64_t batch_size, bool keep_images, bool overlap) {
  const torch::NoGradGuard no_grad;
  if (batch_size < 1) throw Error("measure latents", "the batch size must be >= 1");
  const int64_t side = models.generator.resolution();
  const int num_parts = int(models.parts.part_names().size());
  std::map<int64_t, GroupInProgress> in_progress;  // node-based: workers hold references into it
  const auto keep = [&](int64_t group, const EncodedBatch& batch) {
    auto& g = in_progress.at(group);
    if (!g.add(batch, keep_images)) return;
    auto measured = std::move(g.result);
    in_progress.erase(group);
    on_measured(group, std::move(measured));
  };
  const auto encode_and_measure = [&models, num_parts](MeasuredImages& result, const torch::Tensor& images,
                                                       const torch::Tensor& w, const std::vector<torch::Tensor>& maps,
                                                       int64_t start) {
    auto batch = encode_batch(models.classifier, models.parts, images, w, maps, start, models.generator.file());
    batch.measure(result, num_parts);
    return batch;
  };
  // With overlap, batch k is encoded, segmented and measured on another thread (on a GPU, in a
  // stream of its own that waits for batch k's synthesis) while batch k + 1 is rendered, across
  // the groups' boundaries too. Declared after in_progress: an exception waits for the worker
  // before the results it writes to go away.
  std::future<EncodedBatch> encoding;
  int64_t encoding_group = -1;
  std::optional<c10::Stream> encode_stream;
  const c10::Device device = models.generator.device();
  const bool maps_with_images = models.parts.labels_feature_maps() && models.generator.has_synthesis_with_features();
  for (int64_t group = 0; group < groups; ++group) {
    const auto latents = latents_on_device(latents_of(group), device);
    const int64_t n = latents.size(0);
    if (n < 1) throw Error("measure latents", fmt::format("group {} has no latents", group));
    auto& current = in_progress[group];
    current.result.parts.resize(size_t(n));
    current.batches_left = (n + batch_size - 1) / batch_size;
    for (int64_t start = 0; start < n; start += batch_size) {
      const auto w = latents.slice(0, start, std::min(n, start + batch_size));
      // Parts from the generator's feature maps take them from the same call when it can.
      torch::Tensor raw;
      std::vector<torch::Tensor> maps;
      if (maps_with_images)
        std::tie(raw, maps) = models.generator.synthesis_with_features(w);
      else
        raw = models.generator.synthesis(w);
      const auto generated = generator_to_classifier_range(raw);
      if (generated.size(2) != side)
        throw Error(models.generator.file(), "synthesis returned images of another size than its resolution");
      if (encoding.valid()) keep(encoding_group, encoding.get());
      if (!overlap) {
        keep(group, encode_and_measure(current.result, generated, w, maps, start));
        continue;
      }
      if (!encode_stream) encode_stream = side_stream(device);
      auto rendered = hand_over(device, encode_stream, generated, w);
      encoding_group = group;
      encoding = on_another_thread([&encode_and_measure, &result = current.result, generated, w, maps, start,
                                    stream = encode_stream, rendered = std::move(rendered)]() {
        std::optional<c10::StreamGuard> on_stream;
        if (stream) {
          on_stream.emplace(*stream);
          rendered->block(*stream);
        }
        return encode_and_measure(result, generated, w, maps, start);
      });
    }
  }
  if (encoding.valid()) keep(encoding_group, encoding.get());
}

MeasuredImages measure_latents(const SweepModels& models, const torch::Tensor& latents, int64_t batch_size,
                               bool keep_images, bool overlap) {
  MeasuredImages result;
  measure_latent_groups(
      models, 1, [&](int64_t) { return latents; },
      [&](int64_t, MeasuredImages&& measured) { result = std::move(measured); }, batch_size, keep_images, overlap);
  return result;
}

MeasuredImages measure_images(const Classifier& classifier, const PartSource& parts, const torch::Tensor& images,
                              int64_t batch_size) {
  const torch::NoGradGuard no_grad;
  if (parts.needs_latents()) throw Error("measure images", "the " + parts.kind() + " parts need generator latents");
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != images.size(3))
    throw Error("measure images", "expects images [N, 3, R, R]");
  const int64_t n = images.size(0);
  const int num_parts = int(parts.part_names().size());
  MeasuredImages result;
  result.parts.resize(size_t(n));
  std::vector<torch::Tensor> features, logits;
  for (int64_t start = 0; start < n; start += batch_size) {
    const auto batch = encode_batch(classifier, parts, images.slice(0, start, std::min(n, start + batch_size)),
                                    torch::Tensor(), {}, start, classifier.file());
    features.push_back(batch.features);
    logits.push_back(batch.logits);
    batch.measure(result, num_parts);
  }
  result.features = torch::cat(features);
  result.logits = torch::cat(logits);
  return result;
}

}  // namespace linkstyle
