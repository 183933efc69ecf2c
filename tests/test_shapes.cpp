#include "linkstyle/worlds/shapes.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "linkstyle/errors.hpp"
#include "test_support.hpp"

namespace {

using linkstyle::ShapesBatch;
using linkstyle::ShapesWorld;
using linkstyle::testing::ScratchDir;

int64_t class_count() { return static_cast<int64_t>(ShapesWorld::class_names().size()); }

int64_t part_index(const std::string& name) {
  const auto& names = ShapesWorld::part_names();
  const auto found = std::find(names.begin(), names.end(), name);
  return found == names.end() ? -1 : found - names.begin();
}

int64_t factor_index(const std::string& name) {
  const auto& names = ShapesWorld::factor_names();
  const auto found = std::find(names.begin(), names.end(), name);
  return found == names.end() ? -1 : found - names.begin();
}

void expect_same(const ShapesBatch& a, const ShapesBatch& b) {
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.parts, b.parts));
  EXPECT_TRUE(torch::equal(a.factors, b.factors));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
}

// Hue in [0, 1) of an RGB colour.
double hue_of(double r, double g, double b) {
  const double high = std::max({r, g, b}), low = std::min({r, g, b});
  const double range = high - low;
  if (range <= 0) return 0;
  double h = 0;
  if (high == r)
    h = (g - b) / range;
  else if (high == g)
    h = 2 + (b - r) / range;
  else
    h = 4 + (r - g) / range;
  h /= 6;
  return h < 0 ? h + 1 : h;
}

double correlation(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i] / n, my += y[i] / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

// ---------------------------------------------------------------------------------------------
// Names

TEST(ShapesNames, ClassesPartsAndFactors) {
  const auto& classes = ShapesWorld::class_names();
  for (const char* name : {"mushroom", "car", "bird", "house", "tree", "flower"})
    EXPECT_NE(std::find(classes.begin(), classes.end(), name), classes.end()) << name;

  const auto& parts = ShapesWorld::part_names();
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts[0], "background");
  EXPECT_EQ(std::set<std::string>(parts.begin(), parts.end()).size(), parts.size());

  const auto& factors = ShapesWorld::factor_names();
  EXPECT_EQ(std::set<std::string>(factors.begin(), factors.end()).size(), factors.size());
  for (const char* name :
       {"position_x", "position_y", "scale", "rotation", "proportion_a", "proportion_b", "main_hue", "main_saturation",
        "main_value", "secondary_hue", "secondary_value", "background_hue", "background_value", "background_gradient",
        "texture_amplitude", "texture_frequency", "light_direction"})
    EXPECT_GE(factor_index(name), 0) << name;
}

TEST(ShapesNames, PartsOfEachClass) {
  const std::vector<std::vector<std::string>> expected = {{"cap", "stem"},
                                                          {"car body", "wheel", "window"},
                                                          {"bird body", "head", "beak", "wing", "tail"},
                                                          {"wall", "roof", "door", "window"},
                                                          {"trunk", "crown"},
                                                          {"petal", "centre", "stem"}};
  const std::vector<std::string> main_parts = {"cap", "car body", "bird body", "wall", "crown", "petal"};
  const std::vector<std::string> secondary_parts = {"stem", "window", "beak", "roof", "trunk", "centre"};
  ASSERT_EQ(class_count(), 6);
  std::set<int64_t> used;
  for (int64_t label = 0; label < class_count(); ++label) {
    std::vector<int64_t> want;
    for (const auto& name : expected[static_cast<size_t>(label)]) want.push_back(part_index(name));
    EXPECT_EQ(ShapesWorld::parts_of_class(label), want) << ShapesWorld::class_names()[label];
    EXPECT_EQ(ShapesWorld::main_part_of_class(label), part_index(main_parts[static_cast<size_t>(label)]));
    EXPECT_EQ(ShapesWorld::secondary_part_of_class(label), part_index(secondary_parts[static_cast<size_t>(label)]));
    used.insert(want.begin(), want.end());
  }
  // Every part but the background belongs to some class; "window" and "stem" are shared.
  EXPECT_EQ(used.size() + 1, ShapesWorld::part_names().size());
  EXPECT_THROW(ShapesWorld::parts_of_class(6), linkstyle::Error);
  EXPECT_THROW(ShapesWorld::parts_of_class(-1), linkstyle::Error);
}

// ---------------------------------------------------------------------------------------------
// Arguments

TEST(ShapesArguments, ResolutionBelowSixteenThrows) {
  EXPECT_THROW(ShapesWorld(15), linkstyle::Error);
  EXPECT_THROW(ShapesWorld(0), linkstyle::Error);
  EXPECT_THROW(ShapesWorld(-64), linkstyle::Error);
  try {
    ShapesWorld world(8);
    ADD_FAILURE() << "no error";
  } catch (const linkstyle::Error& error) {
    EXPECT_NE(std::string(error.what()).find("resolution"), std::string::npos) << error.what();
  }
  EXPECT_EQ(ShapesWorld(16).resolution(), 16);
  EXPECT_EQ(ShapesWorld().resolution(), 64);
}

TEST(ShapesArguments, BadLabelsSeedsAndCountsThrow) {
  const ShapesWorld world(16);
  EXPECT_THROW(world.render({0, 1}, {1}), linkstyle::Error);
  EXPECT_THROW(world.render({6}, {1}), linkstyle::Error);
  EXPECT_THROW(world.render({-1}, {1}), linkstyle::Error);
  EXPECT_THROW(world.render_class_balanced(-1, 0), linkstyle::Error);
  const ShapesBatch empty = world.render({}, {});
  EXPECT_EQ(empty.images.sizes(), (std::vector<int64_t>{0, 3, 16, 16}));
  EXPECT_EQ(empty.labels.numel(), 0);
}

// ---------------------------------------------------------------------------------------------
// Output

TEST(ShapesOutput, ShapesDtypesAndRanges) {
  const ShapesWorld world(32);
  const ShapesBatch batch = world.render_class_balanced(24, 7);
  const int64_t factors = static_cast<int64_t>(ShapesWorld::factor_names().size());
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{24, 3, 32, 32}));
  EXPECT_EQ(batch.parts.sizes(), (std::vector<int64_t>{24, 32, 32}));
  EXPECT_EQ(batch.factors.sizes(), (std::vector<int64_t>{24, factors}));
  EXPECT_EQ(batch.labels.sizes(), (std::vector<int64_t>{24}));
  EXPECT_EQ(batch.images.scalar_type(), torch::kFloat);
  EXPECT_EQ(batch.parts.scalar_type(), torch::kLong);
  EXPECT_EQ(batch.factors.scalar_type(), torch::kFloat);
  EXPECT_EQ(batch.labels.scalar_type(), torch::kLong);
  EXPECT_GE(batch.images.min().item<float>(), 0.0f);
  EXPECT_LE(batch.images.max().item<float>(), 1.0f);
  EXPECT_GE(batch.factors.min().item<float>(), 0.0f);
  EXPECT_LE(batch.factors.max().item<float>(), 1.0f);
  EXPECT_GE(batch.parts.min().item<int64_t>(), 0);
  EXPECT_LT(batch.parts.max().item<int64_t>(), static_cast<int64_t>(ShapesWorld::part_names().size()));
  EXPECT_FALSE(torch::isnan(batch.images).any().item<bool>());
}

TEST(ShapesOutput, MasksUseOnlyTheClassParts) {
  const ShapesWorld world(48);
  const ShapesBatch batch = world.render_class_balanced(120, 3);
  for (int64_t i = 0; i < batch.labels.size(0); ++i) {
    const int64_t label = batch.labels[i].item<int64_t>();
    std::vector<int64_t> allowed = ShapesWorld::parts_of_class(label);
    allowed.push_back(0);
    const torch::Tensor used = std::get<0>(torch::_unique(batch.parts[i]));
    for (int64_t k = 0; k < used.numel(); ++k)
      EXPECT_NE(std::find(allowed.begin(), allowed.end(), used[k].item<int64_t>()), allowed.end())
          << "image " << i << " (" << ShapesWorld::class_names()[label] << ") uses part "
          << ShapesWorld::part_names()[used[k].item<int64_t>()];
    // The object is there, does not fill the frame, and stays clear of its edges.
    const torch::Tensor object = batch.parts[i] > 0;
    const double share = object.to(torch::kDouble).mean().item<double>();
    EXPECT_GT(share, 0.03) << "image " << i;
    EXPECT_LT(share, 0.6) << "image " << i;
    const int64_t last = world.resolution() - 1;
    EXPECT_FALSE(
        (object[0].any() | object[last].any() | object.select(1, 0).any() | object.select(1, last).any()).item<bool>())
        << "image " << i << " touches the frame";
  }
}

// >= 95% of the images of each class show every part of the class with >= 10 px at 64x64.
TEST(ShapesOutput, EveryPartIsVisible) {
  const ShapesWorld world(64);
  const int64_t per_class = 200;
  for (int64_t label = 0; label < class_count(); ++label) {
    std::vector<int64_t> labels(per_class, label);
    std::vector<uint64_t> seeds;
    for (int64_t i = 0; i < per_class; ++i) seeds.push_back(1000 + static_cast<uint64_t>(i));
    const ShapesBatch batch = world.render(labels, seeds);
    const int64_t part_count = static_cast<int64_t>(ShapesWorld::part_names().size());
    const torch::Tensor offsets = torch::arange(per_class, torch::kLong).reshape({per_class, 1, 1}) * part_count;
    const torch::Tensor counts =
        torch::bincount((batch.parts + offsets).flatten(), {}, per_class * part_count).reshape({per_class, part_count});
    int64_t complete = 0;
    for (int64_t i = 0; i < per_class; ++i) {
      bool all = true;
      for (const int64_t part : ShapesWorld::parts_of_class(label)) all = all && counts[i][part].item<int64_t>() >= 10;
      complete += all ? 1 : 0;
    }
    EXPECT_GE(complete, per_class * 95 / 100)
        << ShapesWorld::class_names()[label] << ": " << complete << " of " << per_class;
  }
}

// ---------------------------------------------------------------------------------------------
// Determinism

TEST(ShapesDeterminism, SameSeedsSameTensors) {
  const ShapesWorld world(32);
  expect_same(world.render_class_balanced(30, 11), world.render_class_balanced(30, 11));
  const ShapesBatch other = world.render_class_balanced(30, 12);
  EXPECT_FALSE(torch::equal(world.render_class_balanced(30, 11).factors, other.factors));
}

TEST(ShapesDeterminism, AnImageAloneEqualsItInABatch) {
  const ShapesWorld world(40);
  const std::vector<int64_t> labels = {3, 0, 5, 1, 1, 2, 4, 0, 3, 5, 2, 2, 4, 1, 0, 5, 3, 4, 2, 0};
  std::vector<uint64_t> seeds;
  for (size_t i = 0; i < labels.size(); ++i) seeds.push_back(0xABCDEF + 977 * i);
  const ShapesBatch batch = world.render(labels, seeds);
  for (const size_t i : {size_t(0), size_t(7), size_t(19)}) {
    const ShapesBatch alone = world.render({labels[i]}, {seeds[i]});
    const auto row = static_cast<int64_t>(i);
    EXPECT_TRUE(torch::equal(alone.images[0], batch.images[row])) << i;
    EXPECT_TRUE(torch::equal(alone.parts[0], batch.parts[row])) << i;
    EXPECT_TRUE(torch::equal(alone.factors[0], batch.factors[row])) << i;
  }
  // Reordering the batch moves the images with their (label, seed).
  std::vector<int64_t> reversed_labels(labels.rbegin(), labels.rend());
  std::vector<uint64_t> reversed_seeds(seeds.rbegin(), seeds.rend());
  const ShapesBatch reversed = world.render(reversed_labels, reversed_seeds);
  EXPECT_TRUE(torch::equal(reversed.images.flip({0}), batch.images));
  EXPECT_TRUE(torch::equal(reversed.parts.flip({0}), batch.parts));
}

TEST(ShapesDeterminism, ThreadCountDoesNotMatter) {
  const ShapesWorld world(32);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const ShapesBatch one = world.render_class_balanced(64, 5);
  at::set_num_threads(4);
  const ShapesBatch four = world.render_class_balanced(64, 5);
  at::set_num_threads(threads);
  expect_same(one, four);
}

TEST(ShapesDeterminism, ClassBalance) {
  const ShapesWorld world(16);
  const ShapesBatch batch = world.render_class_balanced(63, 9);
  const torch::Tensor counts = torch::bincount(batch.labels, {}, class_count());
  EXPECT_EQ(counts.max().item<int64_t>() - counts.min().item<int64_t>(), 1);
  EXPECT_EQ(counts.sum().item<int64_t>(), 63);
  for (int64_t i = 0; i < 63; ++i) EXPECT_EQ(batch.labels[i].item<int64_t>(), i % class_count());
  // Same class, different seed: different factors.
  EXPECT_FALSE(torch::equal(batch.factors[0], batch.factors[6]));
}

// ---------------------------------------------------------------------------------------------
// Factors drive the image

TEST(ShapesFactors, DifferentSeedsGiveDifferentFactorsAndImages) {
  const ShapesWorld world(32);
  const ShapesBatch batch = world.render({2, 2, 2, 2}, {1, 2, 3, 4});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = i + 1; j < 4; ++j) {
      EXPECT_FALSE(torch::equal(batch.factors[i], batch.factors[j]));
      EXPECT_GT((batch.images[i] - batch.images[j]).abs().mean().item<float>(), 0.01f);
    }
  // Factors spread over [0, 1]: the uniform ones have a standard deviation near 1/sqrt(12) = 0.29;
  // hues come from class ranges, narrower for the secondary colour.
  const ShapesBatch many = world.render_class_balanced(600, 1);
  const torch::Tensor spread = many.factors.std(0);
  for (int64_t k = 0; k < spread.numel(); ++k) {
    const std::string& name = ShapesWorld::factor_names()[k];
    EXPECT_GT(spread[k].item<float>(), name == "secondary_hue" ? 0.1f : 0.25f) << name;
  }
}

// Per image where `part_of_class(label)` is visible: the hue factor `factor_name` and the hue of
// that part's mean pixel colour; `hidden` counts the images where the part is not visible.
struct PartHues {
  std::vector<double> factor, measured;
  int64_t hidden = 0;
};

PartHues part_hues(const ShapesBatch& batch, const std::string& factor_name, int64_t (*part_of_class)(int64_t)) {
  const int64_t hue_column = factor_index(factor_name);
  PartHues hues;
  for (int64_t i = 0; i < batch.labels.size(0); ++i) {
    const torch::Tensor where = batch.parts[i] == part_of_class(batch.labels[i].item<int64_t>());
    if (where.sum().item<int64_t>() == 0) {
      ++hues.hidden;
      continue;
    }
    const torch::Tensor mean = batch.images[i].permute({1, 2, 0}).index({where}).to(torch::kDouble).mean(0);
    hues.factor.push_back(batch.factors[i][hue_column].item<double>());
    hues.measured.push_back(hue_of(mean[0].item<double>(), mean[1].item<double>(), mean[2].item<double>()));
  }
  return hues;
}

TEST(ShapesFactors, RenderingTheFactorsOfASeedRedrawsItsImage) {
  const ShapesWorld world(32);
  const std::vector<int64_t> labels = {0, 1, 2, 3, 4, 5, 1, 4};
  const std::vector<uint64_t> seeds = {3, 14, 15, 92, 65, 35, 89, 79};
  const auto seeded = world.render(labels, seeds);
  const auto redrawn = world.render_factors(labels, seeded.factors);
  EXPECT_TRUE(torch::equal(redrawn.factors, seeded.factors));
  EXPECT_TRUE(torch::equal(redrawn.labels, seeded.labels));
  // The float32 factors move an edge by far less than a pixel.
  EXPECT_LT((redrawn.images - seeded.images).abs().max().item<float>(), 0.02f);
  EXPECT_GT((redrawn.parts == seeded.parts).to(torch::kDouble).mean().item<double>(), 0.999);
  // Other factors, other images.
  const auto other = world.render_factors(labels, seeded.factors.flip(0));
  EXPECT_GT((other.images - seeded.images).abs().mean().item<float>(), 0.05f);
  // Bad factors are refused.
  linkstyle::testing::expect_error([&] { world.render_factors(labels, seeded.factors.narrow(1, 0, 16)); },
                        {"ShapesWorld", "factors [8, 17]"});
  linkstyle::testing::expect_error([&] { world.render_factors(labels, seeded.factors + 1.5); }, {"ShapesWorld", "[0, 1]"});
  auto with_nan = seeded.factors.clone();
  with_nan[2][5] = std::nanf("");
  linkstyle::testing::expect_error([&] { world.render_factors(labels, with_nan); }, {"ShapesWorld", "finite"});
}

TEST(ShapesFactors, QuantilesMapToTheRenderersDistribution) {
  // Every factor is its quantile except the hues, which span the class's range: the seeded
  // factors of each class lie within factors_of_quantiles(0) .. factors_of_quantiles(1).
  const auto batch = ShapesWorld(16).render_class_balanced(600, 4);
  const auto low = ShapesWorld::factors_of_quantiles(batch.labels, torch::zeros({600, 17}));
  const auto high = ShapesWorld::factors_of_quantiles(batch.labels, torch::ones({600, 17}));
  EXPECT_TRUE((batch.factors >= low - 1e-6).all().item<bool>());
  EXPECT_TRUE((batch.factors <= high + 1e-6).all().item<bool>());
  const auto span = high - low;
  const int64_t main_hue = 6;
  EXPECT_LT(span.select(1, main_hue).max().item<float>(), 0.3f);
  EXPECT_TRUE(torch::equal(span.select(1, 0), torch::ones({600})));
  // The quantiles of the seeded factors are uniform: mean near 0.5 in every column.
  const auto quantiles = (batch.factors - low) / span;
  EXPECT_LT((quantiles.mean(0) - 0.5).abs().max().item<float>(), 0.05f);
}

TEST(ShapesFactors, MainHueMatchesTheMainPartPixels) {
  const auto hues =
      part_hues(ShapesWorld(64).render_class_balanced(200, 21), "main_hue", &ShapesWorld::main_part_of_class);
  ASSERT_EQ(hues.hidden, 0);
  const double r = correlation(hues.factor, hues.measured);
  EXPECT_GT(r, 0.8);
  RecordProperty("main_hue_correlation", std::to_string(r));
  std::printf("main hue vs measured hue of the main part: r = %.4f\n", r);
}

TEST(ShapesFactors, SecondaryHueMatchesTheSecondaryPartPixels) {
  const auto hues =
      part_hues(ShapesWorld(64).render_class_balanced(300, 22), "secondary_hue", &ShapesWorld::secondary_part_of_class);
  EXPECT_GT(hues.factor.size(), 250u);
  const double r = correlation(hues.factor, hues.measured);
  EXPECT_GT(r, 0.8);
  std::printf("secondary hue vs measured hue of the secondary part: r = %.4f\n", r);
}

TEST(ShapesFactors, BrightnessFactorsReachThePixels) {
  const ShapesWorld world(64);
  const ShapesBatch batch = world.render_class_balanced(300, 4);
  const int64_t value_column = factor_index("background_value");
  std::vector<double> factor, measured;
  for (int64_t i = 0; i < 300; ++i) {
    const torch::Tensor where = batch.parts[i] == 0;
    // The top rows, above the gradient's reach.
    const torch::Tensor top = batch.images[i].narrow(1, 0, 4).amax(0);  // value = max channel
    const torch::Tensor top_where = where.narrow(0, 0, 4);
    if (top_where.sum().item<int64_t>() == 0) continue;
    factor.push_back(batch.factors[i][value_column].item<double>());
    measured.push_back(top.index({top_where}).mean().item<double>());
  }
  ASSERT_GT(factor.size(), 200u);
  EXPECT_GT(correlation(factor, measured), 0.9);
}

// ---------------------------------------------------------------------------------------------
// A picture to look at: every class, several seeds, image and coloured mask side by side.
// Written to $LINKSTYLE_SHAPES_GRID when set (e.g. /tmp/shapes_grid.png), else to a scratch folder.

TEST(ShapesGrid, WritesAReadableSampleGrid) {
  const int64_t resolution = 64, seeds = 6, zoom = 2;
  const ShapesWorld world(resolution);
  std::vector<int64_t> labels;
  std::vector<uint64_t> seed_list;
  for (int64_t label = 0; label < class_count(); ++label)
    for (int64_t s = 0; s < seeds; ++s) labels.push_back(label), seed_list.push_back(static_cast<uint64_t>(s));
  const ShapesBatch batch = world.render(labels, seed_list);

  const int cell = static_cast<int>(resolution * zoom), gap = 4;
  const int width = static_cast<int>(seeds) * (2 * cell + 3 * gap),
            height = static_cast<int>(class_count()) * (cell + gap);
  cv::Mat grid(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int64_t part_count = static_cast<int64_t>(ShapesWorld::part_names().size());
  std::vector<cv::Vec3b> palette(static_cast<size_t>(part_count), cv::Vec3b(0, 0, 0));
  for (int64_t p = 1; p < part_count; ++p) {
    cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(std::fmod(p * 0.618034, 1.0) * 180, 210, p % 2 ? 255 : 190));
    cv::Mat bgr;
    cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
    palette[static_cast<size_t>(p)] = bgr.at<cv::Vec3b>(0, 0);
  }
  const torch::Tensor bytes =
      (batch.images * 255).round().to(torch::kByte).permute({0, 2, 3, 1}).flip({3}).contiguous();  // BGR
  for (int64_t i = 0; i < batch.labels.size(0); ++i) {
    const int row = static_cast<int>(i / seeds), column = static_cast<int>(i % seeds);
    cv::Mat image(static_cast<int>(resolution), static_cast<int>(resolution), CV_8UC3, bytes[i].data_ptr<uint8_t>());
    cv::Mat mask(static_cast<int>(resolution), static_cast<int>(resolution), CV_8UC3);
    const torch::Tensor parts = batch.parts[i].contiguous();
    const int64_t* p = parts.data_ptr<int64_t>();
    for (int y = 0; y < resolution; ++y)
      for (int x = 0; x < resolution; ++x)
        mask.at<cv::Vec3b>(y, x) = palette[static_cast<size_t>(p[y * resolution + x])];
    const int left = column * (2 * cell + 3 * gap), top = row * (cell + gap);
    cv::resize(image, grid(cv::Rect(left, top, cell, cell)), cv::Size(cell, cell), 0, 0, cv::INTER_NEAREST);
    cv::resize(mask, grid(cv::Rect(left + cell + gap, top, cell, cell)), cv::Size(cell, cell), 0, 0, cv::INTER_NEAREST);
  }
  ScratchDir dir("shapes-grid");
  const char* requested = std::getenv("LINKSTYLE_SHAPES_GRID");
  const std::string path = requested != nullptr && *requested ? requested : (dir / "grid.png").string();
  ASSERT_TRUE(cv::imwrite(path, grid)) << path;
  const cv::Mat read = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_FALSE(read.empty()) << path;
  EXPECT_EQ(read.rows, height);
  EXPECT_EQ(read.cols, width);
  EXPECT_EQ(cv::norm(read, grid, cv::NORM_INF), 0.0);
}

}  // namespace
