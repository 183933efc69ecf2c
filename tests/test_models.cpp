// Tests for the model contract (models.hpp) and the tiny models (tiny_models.hpp).
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <string>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/models.hpp"
#include "linkstyle/tiny_models.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

std::string bytes_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Expects `action` to throw linkstyle::Error whose message names `file` and contains `part`.
void expect_error(const std::function<void()>& action, const fs::path& file, const std::string& part) {
  linkstyle::testing::expect_error(action, {file.filename().string(), part});
}

void save_module(const torch::jit::Module& module, const fs::path& file) {
  AtomicFile out(file);
  module.save(out.stream());
  out.commit();
}

// A generator built from TorchScript source, with the given int attributes.
torch::jit::Module scripted_generator(const std::vector<std::pair<std::string, int64_t>>& ints,
                                      const std::string& source) {
  torch::jit::Module m("TestGenerator");
  for (const auto& [name, value] : ints) m.register_attribute(name, c10::IntType::get(), value);
  m.define(source);
  return m;
}

const char* const kGoodGeneratorSource = R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.zeros([z.size(0), self.w_dim]) + psi
def synthesis(self, w: Tensor) -> Tensor:
    return torch.zeros([w.size(0), 3, self.resolution, self.resolution])
)";

const std::vector<std::pair<std::string, int64_t>> kGoodAttributes = {
    {"z_dim", 4}, {"w_dim", 5}, {"num_classes", 2}, {"resolution", 8}};

class TinyModelsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    folder_ = new ScratchDir("models");
    paths_ = write_tiny_models(folder_->path());
  }
  static void TearDownTestSuite() {
    delete folder_;
    folder_ = nullptr;
  }
  static ScratchDir* folder_;
  static TinyModelPaths paths_;
};
ScratchDir* TinyModelsTest::folder_ = nullptr;
TinyModelPaths TinyModelsTest::paths_;

TEST_F(TinyModelsTest, SavedFilesLoadWithSpecDimensions) {
  const TinyModelSpec spec;
  EXPECT_EQ(paths_.classifier, folder_->path() / "tiny_classifier.pt");
  EXPECT_EQ(paths_.generator, folder_->path() / "tiny_generator.pt");
  const auto generator = Generator::load(paths_.generator, torch::kCPU);
  EXPECT_EQ(generator.z_dim(), spec.z_dim);
  EXPECT_EQ(generator.w_dim(), spec.w_dim);
  EXPECT_EQ(generator.num_classes(), spec.num_classes);
  EXPECT_EQ(generator.resolution(), spec.resolution);
  EXPECT_EQ(generator.class_names().size(), static_cast<size_t>(spec.num_classes));
  EXPECT_TRUE(generator.has_synthesis_features());
  EXPECT_EQ(generator.file(), paths_.generator);

  const auto classifier = Classifier::load(paths_.classifier, torch::kCPU);
  EXPECT_EQ(classifier.feature_dim(), spec.feature_dim);
  EXPECT_EQ(classifier.num_classes(), spec.num_classes);
  EXPECT_EQ(classifier.class_names().size(), static_cast<size_t>(spec.num_classes));
  EXPECT_EQ(classifier.class_name(1), classifier.class_names()[1]);
  EXPECT_EQ(classifier.class_name(7), "class 7");

  // No temporary files left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(folder_->path())) ++entries;
  EXPECT_EQ(entries, 2);
}

TEST_F(TinyModelsTest, MethodsProduceContractShapes) {
  const auto generator = Generator::load(paths_.generator, torch::kCPU);
  const auto classifier = Classifier::load(paths_.classifier, torch::kCPU);
  torch::NoGradGuard no_grad;
  auto rng = at::detail::createCPUGenerator(7);
  const auto z = torch::randn({5, generator.z_dim()}, rng, torch::kFloat);
  const auto c = torch::tensor({0, 1, 2, 0, 1}, torch::kLong);
  const auto w = generator.mapping(z, c, 0.7);
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{5, generator.w_dim()}));
  const auto images = generator.synthesis(w);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{5, 3, 16, 16}));
  EXPECT_LE(images.max().item<float>(), 1.0f);
  EXPECT_GE(images.min().item<float>(), -1.0f);
  const auto maps = generator.synthesis_features(w);
  ASSERT_FALSE(maps.empty());
  for (const auto& map : maps) EXPECT_EQ(map.size(0), 5);

  // psi = 0 gives the class mean of w.
  const auto w0 = generator.mapping(z, c, 0.0);
  EXPECT_TRUE(torch::allclose(w0[0], w0[3]));
  EXPECT_FALSE(torch::allclose(w0[0], w0[1]));

  const auto x = generator_to_classifier_range(images);
  const auto r = classifier.features(x);
  EXPECT_EQ(r.sizes(), (std::vector<int64_t>{5, classifier.feature_dim()}));
  EXPECT_GE(r.min().item<float>(), 0.0f);
  // Any input size is accepted (the classifier resizes).
  const auto big = classifier.features(torch::rand({2, 3, 40, 40}, rng, torch::kFloat));
  EXPECT_EQ(big.sizes(), (std::vector<int64_t>{2, classifier.feature_dim()}));
  const auto logits = classifier.head(r);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{5, classifier.num_classes()}));
}

TEST_F(TinyModelsTest, GeneratedSamplesAreMostlyAccepted) {
  const auto generator = Generator::load(paths_.generator, torch::kCPU);
  const auto classifier = Classifier::load(paths_.classifier, torch::kCPU);
  torch::NoGradGuard no_grad;
  auto rng = at::detail::createCPUGenerator(12345);
  const int64_t per_class = 300;
  int64_t accepted = 0, total = 0;
  for (int64_t k = 0; k < generator.num_classes(); ++k) {
    const auto z = torch::randn({per_class, generator.z_dim()}, rng, torch::kFloat);
    const auto c = torch::full({per_class}, k, torch::kLong);
    const auto images = generator.synthesis(generator.mapping(z, c, 0.7));
    const auto predicted = classifier.head(classifier.features(generator_to_classifier_range(images))).argmax(1);
    const int64_t hits = (predicted == k).sum().item<int64_t>();
    std::cout << "[ info     ] class " << k << " acceptance " << static_cast<double>(hits) / per_class << "\n";
    accepted += hits;
    total += per_class;
  }
  const double rate = static_cast<double>(accepted) / static_cast<double>(total);
  std::cout << "[ info     ] acceptance rate at psi 0.7: " << rate << "\n";
  EXPECT_GT(rate, 0.6);
}

TEST_F(TinyModelsTest, HeadIsDifferentiable) {
  const auto classifier = Classifier::load(paths_.classifier, torch::kCPU);
  torch::Tensor r;
  {
    torch::NoGradGuard no_grad;
    r = classifier.features(torch::full({3, 3, 16, 16}, 0.3));
  }
  r = r.clone().requires_grad_(true);
  const auto logits = classifier.head(r);
  ASSERT_TRUE(logits.requires_grad());
  logits.select(1, 1).sum().backward();
  ASSERT_TRUE(r.grad().defined());
  EXPECT_EQ(r.grad().sizes(), r.sizes());
  EXPECT_GT(r.grad().abs().sum().item<float>(), 0.0f);
}

TEST_F(TinyModelsTest, CallsWithoutGradInputsBuildNoGraph) {
  const auto generator = Generator::load(paths_.generator, torch::kCPU);
  const auto w = generator.mapping(torch::zeros({2, generator.z_dim()}), torch::zeros({2}, torch::kLong), 0.5);
  EXPECT_FALSE(w.requires_grad());
}

TEST_F(TinyModelsTest, WrongInputsAreContractErrors) {
  const auto generator = Generator::load(paths_.generator, torch::kCPU);
  const auto classifier = Classifier::load(paths_.classifier, torch::kCPU);
  const auto& gfile = paths_.generator;
  const auto& cfile = paths_.classifier;
  const auto c2 = torch::zeros({2}, torch::kLong);
  expect_error(
      [&] {
        generator.mapping(torch::zeros({2, generator.z_dim() + 1}), c2, 0.7);
      },
      gfile, "z has shape [2,17]");
  expect_error(
      [&] {
        generator.mapping(torch::zeros({2, generator.z_dim()}), c2.to(torch::kInt), 0.7);
      },
      gfile, "int64");
  expect_error(
      [&] {
        generator.mapping(torch::zeros({2, generator.z_dim()}), torch::tensor({0, 3}, torch::kLong), 0.7);
      },
      gfile, "out of range");
  expect_error(
      [&] {
        generator.mapping(torch::zeros({2, generator.z_dim()}), torch::zeros({3}, torch::kLong), 0.7);
      },
      gfile, "classes has shape");
  expect_error([&] { generator.synthesis(torch::zeros({2, generator.w_dim() - 1})); }, gfile, "synthesis");
  expect_error([&] { classifier.features(torch::zeros({2, 1, 16, 16})); }, cfile, "features");
  expect_error([&] { classifier.features(torch::zeros({3, 16, 16})); }, cfile, "features");
  expect_error([&] { classifier.head(torch::zeros({2, classifier.feature_dim() + 2})); }, cfile, "head");
}

TEST(TinyModels, SameSeedGivesIdenticalFiles) {
  ScratchDir a("models-a"), b("models-b"), c("models-c");
  TinyModelSpec spec;
  spec.seed = 3;
  spec.num_classes = 2;
  spec.resolution = 8;
  const auto pa = write_tiny_models(a.path(), spec);
  const auto pb = write_tiny_models(b.path(), spec);
  EXPECT_EQ(bytes_of(pa.generator), bytes_of(pb.generator));
  EXPECT_EQ(bytes_of(pa.classifier), bytes_of(pb.classifier));
  EXPECT_EQ(file_fingerprint(pa.generator), file_fingerprint(pb.generator));
  spec.seed = 4;
  const auto pc = write_tiny_models(c.path(), spec);
  EXPECT_NE(file_fingerprint(pa.generator), file_fingerprint(pc.generator));
  EXPECT_NE(file_fingerprint(pa.classifier), file_fingerprint(pc.classifier));
}

TEST(TinyModels, OtherSpecsWork) {
  ScratchDir folder("models-spec");
  TinyModelSpec spec;
  spec.z_dim = 3;
  spec.w_dim = 5;
  spec.num_classes = 4;
  spec.resolution = 12;
  spec.feature_dim = 7;
  const auto paths = write_tiny_models(folder.path(), spec);
  const auto generator = Generator::load(paths.generator, torch::kCPU);
  const auto classifier = Classifier::load(paths.classifier, torch::kCPU);
  EXPECT_EQ(generator.resolution(), 12);
  EXPECT_EQ(generator.num_classes(), 4);
  EXPECT_EQ(classifier.feature_dim(), 7);
  EXPECT_EQ(classifier.num_classes(), 4);
}

TEST(TinyModels, BadSpecIsAnError) {
  ScratchDir folder("models-bad-spec");
  TinyModelSpec spec;
  spec.resolution = 10;
  EXPECT_THROW(write_tiny_models(folder.path(), spec), Error);
  spec.resolution = 16;
  spec.z_dim = 0;
  EXPECT_THROW(write_tiny_models(folder.path(), spec), Error);
}

TEST(ModelContract, MissingFile) {
  ScratchDir folder("models-missing");
  const auto file = folder / "nothing_here.pt";
  expect_error([&] { Classifier::load(file, torch::kCPU); }, file, "file not found");
  expect_error([&] { Generator::load(file, torch::kCPU); }, file, "file not found");
  expect_error([&] { file_fingerprint(file); }, file, "file not found");
}

TEST(ModelContract, GarbageFile) {
  ScratchDir folder("models-garbage");
  const auto file = folder / "garbage_model.pt";
  write_file_atomically(file, "this is not a zip archive\n");
  expect_error([&] { Classifier::load(file, torch::kCPU); }, file, "not a TorchScript archive");
  expect_error([&] { Generator::load(file, torch::kCPU); }, file, "not a TorchScript archive");
}

TEST(ModelContract, ClassifierMissingHead) {
  ScratchDir folder("models-nohead");
  const auto file = folder / "headless_classifier.pt";
  torch::jit::Module m("Headless");
  m.define(R"(
def features(self, x: Tensor) -> Tensor:
    return x.mean([2, 3])
)");
  save_module(m, file);
  expect_error([&] { Classifier::load(file, torch::kCPU); }, file, "missing method 'head'");
}

TEST(ModelContract, ClassifierWrongFeatureRank) {
  ScratchDir folder("models-rank");
  const auto file = folder / "rank_classifier.pt";
  torch::jit::Module m("RankClassifier");
  m.register_attribute("input_size", c10::IntType::get(), 8);
  m.define(R"(
def features(self, x: Tensor) -> Tensor:
    return x
def head(self, r: Tensor) -> Tensor:
    return r
)");
  save_module(m, file);
  expect_error([&] { Classifier::load(file, torch::kCPU); }, file, "features returned shape [2,3,8,8], expected [2,?]");
}

TEST(ModelContract, ClassifierClassNamesMismatch) {
  ScratchDir folder("models-names");
  const auto file = folder / "names_classifier.pt";
  torch::jit::Module m("NamesClassifier");
  c10::List<std::string> names({"a", "b", "c"});
  m.register_attribute("class_names", c10::ListType::ofStrings(), names);
  m.define(R"(
def features(self, x: Tensor) -> Tensor:
    return x.mean([2, 3])
def head(self, r: Tensor) -> Tensor:
    return r[:, 0:2]
)");
  save_module(m, file);
  expect_error([&] { Classifier::load(file, torch::kCPU); }, file, "class_names");
}

TEST(ModelContract, GoodScriptedGeneratorLoads) {
  ScratchDir folder("models-good");
  const auto file = folder / "good_generator.pt";
  save_module(scripted_generator(kGoodAttributes, kGoodGeneratorSource), file);
  const auto generator = Generator::load(file, torch::kCPU);
  EXPECT_EQ(generator.w_dim(), 5);
  EXPECT_FALSE(generator.has_synthesis_features());
  EXPECT_TRUE(generator.class_names().empty());
  EXPECT_EQ(generator.class_name(1), "class 1");
  expect_error([&] { generator.synthesis_features(torch::zeros({1, 5})); }, file, "synthesis_features");
}

TEST(ModelContract, GeneratorWrongResolution) {
  ScratchDir folder("models-res");
  const auto file = folder / "wrong_res_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.zeros([z.size(0), self.w_dim])
def synthesis(self, w: Tensor) -> Tensor:
    return torch.zeros([w.size(0), 3, 4, 4])
)"),
              file);
  expect_error([&] { Generator::load(file, torch::kCPU); }, file,
               "synthesis returned shape [2,3,4,4], expected [2,3,8,8]");
}

TEST(ModelContract, GeneratorWrongWDim) {
  ScratchDir folder("models-wdim");
  const auto file = folder / "wrong_w_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.zeros([z.size(0), 3])
def synthesis(self, w: Tensor) -> Tensor:
    return torch.zeros([w.size(0), 3, self.resolution, self.resolution])
)"),
              file);
  expect_error([&] { Generator::load(file, torch::kCPU); }, file, "mapping returned shape [2,3], expected [2,5]");
}

TEST(ModelContract, GeneratorMissingAttribute) {
  ScratchDir folder("models-attr");
  const auto file = folder / "no_attr_generator.pt";
  save_module(scripted_generator({{"z_dim", 4}, {"w_dim", 5}, {"num_classes", 2}}, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.zeros([z.size(0), self.w_dim])
def synthesis(self, w: Tensor) -> Tensor:
    return torch.zeros([w.size(0), 3, 8, 8])
)"),
              file);
  expect_error([&] { Generator::load(file, torch::kCPU); }, file, "missing attribute 'resolution'");
}

TEST(ModelContract, GeneratorBadAttributeValue) {
  ScratchDir folder("models-attr-value");
  const auto file = folder / "zero_attr_generator.pt";
  save_module(
      scripted_generator({{"z_dim", 0}, {"w_dim", 5}, {"num_classes", 2}, {"resolution", 8}}, kGoodGeneratorSource),
      file);
  expect_error([&] { Generator::load(file, torch::kCPU); }, file, "'z_dim' must be > 0");
}

TEST(ModelContract, GeneratorFailingMethodIsOneLineError) {
  ScratchDir folder("models-fail");
  const auto file = folder / "failing_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.matmul(z, torch.zeros([3, 5]))
def synthesis(self, w: Tensor) -> Tensor:
    return torch.zeros([w.size(0), 3, self.resolution, self.resolution])
)"),
              file);
  expect_error([&] { Generator::load(file, torch::kCPU); }, file, "mapping failed");
}

// A generator traced at one batch size: fails at another.
TEST(ModelContract, GeneratorTracedWithFixedBatchSizeIsNamed) {
  ScratchDir folder("models-fixed-batch");
  for (const int traced : {1, 2}) {
    const auto file = folder / ("fixed_batch_" + std::to_string(traced) + "_generator.pt");
    save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.cat([z, z[:, :1]], 1)
def synthesis(self, w: Tensor) -> Tensor:
    n = )" + std::to_string(traced) + R"(
    return torch.tanh(w.reshape([n, 5]).sum(1)).reshape([n, 1, 1, 1]).expand([n, 3, self.resolution, self.resolution])
)"),
                file);
    expect_error([&] { Generator::load(file, torch::kCPU); }, file,
                 traced == 1 ? "synthesis works at batch size 1 but not at batch size 2 (traced with a fixed batch size?)"
                             : "synthesis works at batch size 2 but fails at batch size 1 (traced with a fixed batch "
                               "size?)");
  }
}

TEST(ModelContract, GeneratorMixingTheSamplesOfABatchIsNamed) {
  ScratchDir folder("models-mixing");
  const auto file = folder / "mixing_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.cat([z, z[:, :1]], 1)
def synthesis(self, w: Tensor) -> Tensor:
    return torch.zeros([w.size(0), 3, self.resolution, self.resolution]) + torch.tanh(w.mean())
)"),
              file);
  expect_error([&] { Generator::load(file, torch::kCPU); }, file,
               "synthesis gives other results for the same inputs at batch sizes 2 and 1");
}

TEST(ModelContract, GeneratorPixelRange) {
  ScratchDir folder("models-range");
  const auto bytes_file = folder / "bytes_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.cat([z, z[:, :1]], 1)
def synthesis(self, w: Tensor) -> Tensor:
    return 127.5 + 127.5 * torch.tanh(w[:, 0]).reshape([-1, 1, 1, 1]).expand([w.size(0), 3, self.resolution, self.resolution])
)"),
              bytes_file);
  expect_error([&] { Generator::load(bytes_file, torch::kCPU); }, bytes_file, "the contract wants images in [-1, 1]");

  const auto unit_file = folder / "unit_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.cat([z, z[:, :1]], 1)
def synthesis(self, w: Tensor) -> Tensor:
    return torch.sigmoid(4.0 * w[:, 0]).reshape([-1, 1, 1, 1]).expand([w.size(0), 3, self.resolution, self.resolution])
)"),
              unit_file);
  const auto unit = Generator::load(unit_file, torch::kCPU);
  ASSERT_EQ(unit.load_warnings().size(), 1u);
  EXPECT_NE(unit.load_warnings()[0].find("output in [0, 1]?"), std::string::npos) << unit.load_warnings()[0];

  const auto good_file = folder / "good_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.cat([z, z[:, :1]], 1)
def synthesis(self, w: Tensor) -> Tensor:
    return torch.tanh(w[:, 0]).reshape([-1, 1, 1, 1]).expand([w.size(0), 3, self.resolution, self.resolution])
)"),
              good_file);
  EXPECT_TRUE(Generator::load(good_file, torch::kCPU).load_warnings().empty());
}

TEST(ModelContract, MappingFailureStatesTheClassConvention) {
  ScratchDir folder("models-one-hot");
  const auto file = folder / "one_hot_generator.pt";
  save_module(scripted_generator(kGoodAttributes, R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.cat([z, torch.matmul(c, torch.zeros([2, 1]))], 1)
def synthesis(self, w: Tensor) -> Tensor:
    return torch.zeros([w.size(0), 3, self.resolution, self.resolution])
)"),
              file);
  expect_error([&] { Generator::load(file, torch::kCPU); }, file, "c [2] int64 class indices");
}

TEST(ModelContract, ClassifierProbeFailureNamesInputSize) {
  ScratchDir folder("models-input-size");
  const auto file = folder / "fixed_size_classifier.pt";
  torch::jit::Module m("FixedSize");
  m.define(R"(
def features(self, x: Tensor) -> Tensor:
    return x.reshape([x.size(0), 3 * 32 * 32])
def head(self, r: Tensor) -> Tensor:
    return r[:, :4]
)");
  save_module(m, file);
  expect_error([&] { Classifier::load(file, torch::kCPU); }, file, "the attribute 'input_size' is not set");
  m.register_attribute("input_size", c10::IntType::get(), 32);
  save_module(m, file);
  EXPECT_EQ(Classifier::load(file, torch::kCPU).feature_dim(), 3 * 32 * 32);
}

const char* const kMapsSource = R"(
def mapping(self, z: Tensor, c: Tensor, psi: float) -> Tensor:
    return torch.cat([z, z[:, :1]], 1)
def synthesis(self, w: Tensor) -> Tensor:
    return torch.tanh(w[:, 0]).reshape([-1, 1, 1, 1]).expand([w.size(0), 3, self.resolution, self.resolution])
def synthesis_features(self, w: Tensor) -> List[Tensor]:
    return [w.reshape([w.size(0), 5, 1, 1]).expand([w.size(0), 5, 4, 4])]
)";

TEST(ModelContract, SynthesisWithFeaturesGivesImagesAndMapsInOneCall) {
  ScratchDir folder("models-with-features");
  const auto file = folder / "both_generator.pt";
  save_module(scripted_generator(kGoodAttributes, std::string(kMapsSource) + R"(
def synthesis_with_features(self, w: Tensor) -> Tuple[Tensor, List[Tensor]]:
    return self.synthesis(w), self.synthesis_features(w)
)"),
              file);
  const auto generator = Generator::load(file, torch::kCPU);
  ASSERT_TRUE(generator.has_synthesis_with_features());
  const auto w = torch::randn({4, 5});
  const auto [images, maps] = generator.synthesis_with_features(w);
  EXPECT_TRUE(torch::equal(images, generator.synthesis(w)));
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_TRUE(torch::equal(maps[0], generator.synthesis_features(w)[0]));

  // Without the method, the same comes from two calls.
  const auto two_calls_file = folder / "two_calls_generator.pt";
  save_module(scripted_generator(kGoodAttributes, kMapsSource), two_calls_file);
  const auto two_calls = Generator::load(two_calls_file, torch::kCPU);
  EXPECT_FALSE(two_calls.has_synthesis_with_features());
  const auto [images2, maps2] = two_calls.synthesis_with_features(w);
  EXPECT_TRUE(torch::equal(images2, images));
  EXPECT_TRUE(torch::equal(maps2[0], maps[0]));

  // A method whose images differ from synthesis' is refused at load.
  const auto other_file = folder / "other_generator.pt";
  save_module(scripted_generator(kGoodAttributes, std::string(kMapsSource) + R"(
def synthesis_with_features(self, w: Tensor) -> Tuple[Tensor, List[Tensor]]:
    return -self.synthesis(w), self.synthesis_features(w)
)"),
              other_file);
  expect_error([&] { Generator::load(other_file, torch::kCPU); }, other_file,
               "synthesis_with_features gives other results");
}

TEST(ModelRange, GeneratorToClassifierRange) {
  const auto x = torch::tensor({-2.0f, -1.0f, 0.0f, 1.0f, 3.0f});
  const auto y = generator_to_classifier_range(x);
  EXPECT_TRUE(torch::allclose(y, torch::tensor({0.0f, 0.0f, 0.5f, 1.0f, 1.0f})));
}

TEST(Fingerprint, KnownValues) {
  ScratchDir folder("models-fingerprint");
  write_file_atomically(folder / "empty.bin", "");
  write_file_atomically(folder / "a.bin", "a");
  EXPECT_EQ(file_fingerprint(folder / "empty.bin"), "0-cbf29ce484222325");
  EXPECT_EQ(file_fingerprint(folder / "a.bin"), "1-af63dc4c8601ec8c");
  // Larger than one read chunk.
  std::string big(200000, 'x');
  write_file_atomically(folder / "big1.bin", big);
  big[150000] = 'y';
  write_file_atomically(folder / "big2.bin", big);
  const auto f1 = file_fingerprint(folder / "big1.bin");
  const auto f2 = file_fingerprint(folder / "big2.bin");
  EXPECT_EQ(f1.substr(0, 7), "200000-");
  EXPECT_EQ(f1.size(), 7u + 16u);
  EXPECT_NE(f1, f2);
}

}  // namespace
}  // namespace linkstyle
