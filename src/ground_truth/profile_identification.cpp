// Whole-profile identification of the ground-truth check (see ground_truth.hpp): does a unit's
// measured profile pick out its own predicted profile among all units'?
#include "linkstyle/ground_truth.hpp"

#include <algorithm>
#include <random>

#include <torch/torch.h>

#include "ground_truth/permutation_shuffle.hpp"
#include "linkstyle/errors.hpp"
#include "splitmix.hpp"

namespace linkstyle {

using ground_truth::shuffle;
using nlohmann::json;

namespace {

// Each column standardised over the rows where it is finite; NaN (and constant columns) -> 0.
torch::Tensor standardise_columns(const torch::Tensor& x) {
  const auto finite = torch::isfinite(x);
  const auto filled = torch::where(finite, x, torch::zeros_like(x));
  const auto count = finite.sum(0).to(torch::kDouble).clamp_min(1);
  const auto mean = filled.sum(0) / count;
  const auto centred = torch::where(finite, x - mean, torch::zeros_like(x));
  const auto sd = (centred.pow(2).sum(0) / count).sqrt();
  return torch::where(sd > 1e-12, centred / sd.clamp_min(1e-12), torch::zeros_like(x));
}

struct RankFigures {
  double top1 = 0, top10 = 0, median_rank = 0;
};

// The figures of the ranks of similarity[i][partner[i]] within each row i.
RankFigures rank_figures(const std::vector<std::vector<double>>& similarity, const std::vector<size_t>& partner,
                         std::vector<int64_t>* ranks = nullptr) {
  const size_t n = similarity.size();
  std::vector<double> all;
  RankFigures figures;
  for (size_t i = 0; i < n; ++i) {
    const double own = similarity[i][partner[i]];
    int64_t rank = 1;
    for (size_t j = 0; j < n; ++j) rank += j != partner[i] && similarity[i][j] > own;
    figures.top1 += rank == 1;
    figures.top10 += rank <= 10;
    all.push_back(double(rank));
    if (ranks) ranks->push_back(rank);
  }
  figures.top1 /= double(n);
  figures.top10 /= double(n);
  std::sort(all.begin(), all.end());
  figures.median_rank = n % 2 ? all[n / 2] : (all[n / 2 - 1] + all[n / 2]) / 2;
  return figures;
}

}  // namespace

ProfileIdentification identify_profiles(const torch::Tensor& predicted, const torch::Tensor& measured, uint64_t seed,
                                        int64_t permutations) {
  if (predicted.dim() != 2 || predicted.sizes() != measured.sizes())
    throw Error("ground truth", "predicted and measured profiles differ in their units or factors");
  const auto p = predicted.to(torch::kDouble), m = measured.to(torch::kDouble);
  const auto kept = (torch::isfinite(p).any(1) & torch::isfinite(m).any(1)).nonzero().squeeze(1);
  ProfileIdentification result;
  result.units = kept.numel();
  if (result.units < 2) return result;
  const auto zp = standardise_columns(p.index_select(0, kept));
  const auto zm = standardise_columns(m.index_select(0, kept));
  const auto unit_length = [](const torch::Tensor& z) { return z / z.norm(2, {1}, true).clamp_min(1e-12); };
  const auto cosine = unit_length(zm).matmul(unit_length(zp).t()).contiguous();  // [measured u, predicted v]
  const size_t n = size_t(result.units);
  std::vector<std::vector<double>> similarity(n);
  for (size_t i = 0; i < n; ++i)
    similarity[i].assign(cosine[int64_t(i)].data_ptr<double>(), cosine[int64_t(i)].data_ptr<double>() + n);
  std::vector<size_t> partner(n);
  for (size_t i = 0; i < n; ++i) partner[i] = i;
  const auto observed = rank_figures(similarity, partner, &result.rank);
  for (int64_t i = 0; i < kept.numel(); ++i) result.unit.push_back(kept[i].item<int64_t>());
  result.top1 = observed.top1;
  result.top10 = observed.top10;
  result.median_rank = observed.median_rank;
  result.chance_top1 = 1.0 / double(n);
  result.chance_top10 = double(std::min<size_t>(10, n)) / double(n);
  result.chance_median_rank = (double(n) + 1) / 2;
  std::mt19937_64 random(splitmix64(seed ^ 0x70726f66ULL));
  int64_t top1 = 0, top10 = 0, median = 0;
  for (int64_t k = 0; k < permutations; ++k) {
    shuffle(partner, random);
    const auto permuted = rank_figures(similarity, partner);
    top1 += permuted.top1 >= observed.top1;
    top10 += permuted.top10 >= observed.top10;
    median += permuted.median_rank <= observed.median_rank;
  }
  const auto p_of = [&](int64_t at_least) { return double(1 + at_least) / double(1 + permutations); };
  result.p_top1 = p_of(top1);
  result.p_top10 = p_of(top10);
  result.p_median_rank = p_of(median);
  return result;
}

json ProfileIdentification::to_json() const {
  return {{"units", units},
          {"top1", top1},
          {"top10", top10},
          {"median_rank", median_rank},
          {"chance_top1", chance_top1},
          {"chance_top10", chance_top10},
          {"chance_median_rank", chance_median_rank},
          {"p_top1", p_top1},
          {"p_top10", p_top10},
          {"p_median_rank", p_median_rank},
          {"unit", unit},
          {"rank", rank}};
}

}  // namespace linkstyle
