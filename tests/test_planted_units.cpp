// Tests for planted ground truth (planted_units.hpp, planted_unit_scoring.hpp): the planted units' names and targets, the
// attribute a classifier carries, and the scoring of a sweep against them on a hand-made case.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "linkstyle/models.hpp"
#include "linkstyle/planted_unit_scoring.hpp"
#include "linkstyle/planted_units.hpp"
#include "linkstyle/train/classifier_training.hpp"
#include "linkstyle/worlds/shapes.hpp"
#include "test_support.hpp"

namespace linkstyle {
namespace {

using testing::ScratchDir;

int64_t factor_column(const std::string& name) {
  const auto& names = ShapesWorld::factor_names();
  return std::find(names.begin(), names.end(), name) - names.begin();
}

TEST(PlantedUnits, EveryVisibleFactorIsPlantedOnceAndTheCircularOnesTwice) {
  const auto units = default_planted_units();
  ASSERT_EQ(units.size(), ShapesWorld::factor_names().size() - 1 + 2);  // no texture frequency
  for (const auto& unit : units) EXPECT_NE(unit.factor, "texture_frequency");
  for (size_t k = 0; k < units.size(); ++k) EXPECT_EQ(units[k].unit, int64_t(k));
  EXPECT_EQ(units[0].name(), "position_x");
  EXPECT_EQ(units[11].name(), "background_hue:cos");
  EXPECT_EQ(units[12].name(), "background_hue:sin");
  EXPECT_EQ(units[17].name(), "light_direction:sin");
  const auto attribute = planted_attribute(units, 256);
  ASSERT_EQ(attribute.size(), 256u);
  EXPECT_EQ(attribute[200], "");
  const auto parsed = parse_planted_attribute(attribute, "c.pt");
  ASSERT_EQ(parsed.size(), units.size());
  for (size_t k = 0; k < units.size(); ++k) EXPECT_EQ(parsed[k].name(), units[k].name());
  testing::expect_error([] { parse_planted_attribute({"", "size"}, "c.pt"); }, {"c.pt", "planted_factors[1]", "size"});
  testing::expect_error([] { parse_planted_attribute({"scale:tan"}, "c.pt"); }, {"c.pt", "tan"});
  testing::expect_error([&] { planted_attribute(units, 10); }, {"unit 10"});
}

TEST(PlantedUnits, TargetsAreTheDocumentedFunctionsOfTheFactors) {
  const auto units = default_planted_units();
  auto factors = torch::full({2, int64_t(ShapesWorld::factor_names().size())}, 0.5f);
  factors[0][factor_column("position_x")] = 0.3f;
  factors[0][factor_column("main_hue")] = 0.07f;  // a mushroom's cap: hues 0.02 - 0.12
  factors[1][factor_column("main_hue")] = 0.25f;  // a tree's crown: 0.22 - 0.42
  factors[0][factor_column("background_hue")] = 0.25f;
  const auto labels = torch::tensor({0, 4}, torch::kLong);
  const auto targets = planted_targets(units, factors, labels);
  ASSERT_EQ(targets.sizes(), (std::vector<int64_t>{2, int64_t(units.size())}));
  const auto at = [&](int64_t row, const std::string& name) {
    for (size_t k = 0; k < units.size(); ++k)
      if (units[k].name() == name) return targets[row][int64_t(k)].item<double>();
    ADD_FAILURE() << name;
    return 0.0;
  };
  // Every target is offset by 0.5 (quantile units) or centred on 1 (cos and sin units).
  EXPECT_NEAR(at(0, "position_x"), 0.8, 1e-6);
  EXPECT_NEAR(at(0, "main_hue"), 1.0, 1e-5);
  EXPECT_NEAR(at(1, "main_hue"), 0.65, 1e-5);
  EXPECT_NEAR(at(0, "background_hue:cos"), 1.0, 1e-6);
  EXPECT_NEAR(at(0, "background_hue:sin"), 1.5, 1e-6);
  EXPECT_NEAR(at(1, "light_direction:cos"), 0.5, 1e-6);  // 0.5 turns: from the left
}

TEST(PlantedUnits, AClassifierCarriesItsPlantedUnits) {
  ScratchDir scratch("planted_units");
  const auto file = scratch.path() / "planted.pt";
  build_resnet_classifier(ShapesWorld::class_names(), 3, 32, default_planted_units()).save(file.string());
  const auto classifier = Classifier::load(file, c10::Device(c10::kCPU));
  ASSERT_EQ(classifier.planted_units().size(), default_planted_units().size());
  EXPECT_EQ(classifier.planted_units()[2].factor, "scale");
  // An untrained network's units do not track their targets.
  const auto check = check_planted_units(classifier, 60, 5);
  ASSERT_EQ(check.correlation.size(), default_planted_units().size());
  for (double r : check.correlation) EXPECT_LT(std::fabs(r), 0.95);
  const auto plain = scratch.path() / "plain.pt";
  build_resnet_classifier(ShapesWorld::class_names(), 3).save(plain.string());
  const auto without = Classifier::load(plain, c10::Device(c10::kCPU));
  EXPECT_TRUE(without.planted_units().empty());
  testing::expect_error([&] { check_planted_units(without, 60, 5); }, {"plain.pt", "no planted units"});
  auto wrong = torch::jit::load(file.string());
  c10::List<std::string> short_list({"scale"});
  wrong.setattr("planted_factors", short_list);
  wrong.save((scratch.path() / "wrong.pt").string());
  testing::expect_error([&] { Classifier::load(scratch.path() / "wrong.pt", c10::Device(c10::kCPU)); },
                        {"wrong.pt", "planted_factors", "1 entries", "256 units"});
}

ConceptScore concept(int64_t part, const std::string& measure, double z, bool significant) {
  ConceptScore c;
  c.part = part, c.measure = measure, c.z = z, c.significant = significant, c.q = significant ? 0.001 : 0.5;
  return c;
}

TEST(PlantedUnits, AgreementMatchesAHandScoredCase) {
  // Parts: 0 background, 1 cap (the mushroom's main part).
  const std::vector<std::string> parts = {"background", "cap"};
  const std::vector<PlantedUnit> planted = {{4, "scale", "quantile"}, {7, "position_x", "quantile"},
                                            {9, "main_hue", "quantile"}, {11, "light_direction", "cos"}};
  const std::vector<std::vector<ConceptScore>> concepts = {
      {concept(1, "area", 5.0, true), concept(0, "luminance", 1.0, false)},  // label cap area: scale, agrees
      {concept(0, "luminance", 4.0, true), concept(1, "centre_x", -6.0, false)},  // label wrong, top right
      {concept(1, "hue", 2.0, false)},                                            // no label, top right
      {concept(1, "luminance", -3.0, true)}};                                     // not measurable
  const auto result = planted_agreement(planted, concepts, {true, true, false, true}, parts, 1, 2000);
  EXPECT_EQ(result.planted, 4);
  EXPECT_EQ(result.measurable, 3);
  ASSERT_EQ(result.units.size(), 4u);
  EXPECT_EQ(result.units[0].label, "cap area +");
  EXPECT_TRUE(result.units[0].label_agrees);
  EXPECT_EQ(result.units[1].label, "background luminance +");
  EXPECT_FALSE(result.units[1].label_agrees);
  EXPECT_EQ(result.units[1].top, "cap centre_x -");
  EXPECT_TRUE(result.units[1].top_agrees);
  EXPECT_EQ(result.units[2].label, "");
  EXPECT_TRUE(result.units[2].top_agrees);
  EXPECT_FALSE(result.units[3].measurable);
  EXPECT_FALSE(result.units[3].label_agrees);
  // Label rule: 1 agreeing of 3 named (precision 1/3) and 3 measurable (recall 1/3). Of the 16
  // pairings of a named concept with a factor only (cap area, scale) agrees: 1/4 of a unit is
  // expected to agree, chance 1/4 / 3 measurable = 1/12; a random pairing gives cap area the
  // scale factor one time in four (p about 1/4).
  EXPECT_EQ(result.label.agreeing, 1);
  EXPECT_EQ(result.label.named, 3);
  EXPECT_NEAR(result.label.precision, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(result.label.recall, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(result.label.chance, 1.0 / 12.0, 1e-12);
  EXPECT_NEAR(result.label.p_value, 0.25, 0.04);
  // Top rule: 3 agreeing of 4 named, recall 3/3; three pairings of 16 agree, chance 3/4 / 3;
  // only the identity pairing (1 of 24) keeps all three.
  EXPECT_EQ(result.top.agreeing, 3);
  EXPECT_EQ(result.top.named, 4);
  EXPECT_NEAR(result.top.recall, 1.0, 1e-12);
  EXPECT_NEAR(result.top.chance, 0.25, 1e-12);
  EXPECT_NEAR(result.top.p_value, 1.0 / 24.0, 0.015);
  testing::expect_error([&] { planted_agreement(planted, {}, {}, parts, 1); }, {"one list of concepts"});
}

TEST(PlantedUnits, TheSetRuleAgreesWhenAnySignificantConceptDoes) {
  const std::vector<std::string> parts = {"background", "cap"};
  const std::vector<PlantedUnit> planted = {{0, "scale", "quantile"}, {1, "position_x", "quantile"}};
  const std::vector<std::vector<ConceptScore>> concepts = {
      {concept(1, "area", 3.0, true), concept(0, "luminance", 5.0, true)},  // label wrong, set right
      {concept(1, "centre_y", -4.0, true), concept(1, "hue", 1.0, false)}};  // both wrong
  const auto result = planted_agreement(planted, concepts, {true, true}, parts, 1, 2000);
  EXPECT_FALSE(result.units[0].label_agrees);
  EXPECT_TRUE(result.units[0].set_agrees);
  EXPECT_EQ(result.units[0].concept_set, (std::vector<std::string>{"background luminance +", "cap area +"}));
  EXPECT_EQ(result.units[1].concept_set, (std::vector<std::string>{"cap centre_y -"}));
  EXPECT_FALSE(result.units[1].set_agrees);
  EXPECT_EQ(result.label.agreeing, 0);
  EXPECT_EQ(result.set.agreeing, 1);
  EXPECT_EQ(result.set.named, 2);
  EXPECT_NEAR(result.set.recall, 0.5, 1e-12);
  EXPECT_NEAR(result.set.precision, 0.5, 1e-12);
  // Of the 4 pairings only (unit 0's set, scale) agrees: 1/2 of a unit expected, chance 1/4;
  // the two permutations agree once and never (p about 1/2).
  EXPECT_NEAR(result.set.chance, 0.25, 1e-12);
  EXPECT_NEAR(result.set.p_value, 0.5, 0.04);
}

}  // namespace
}  // namespace linkstyle
