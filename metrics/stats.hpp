// Feature statistics and the distances between feature sets (image-metrics spec §4–7): streaming
// float64 mean and covariance, the Fréchet distance through symmetric eigendecompositions,
// KID, Inception-style score, k-NN precision/recall; and reference-statistics files.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

namespace onestep {

// Accumulates s = sum phi, P = sum phi phi^T in float64 over batches.
class FeatureStats {
  public:
    explicit FeatureStats(int64_t dim);
    void add(const at::Tensor& features);          // [n, dim], any float dtype
    int64_t count() const { return count_; }
    at::Tensor mean() const;                       // float64 [dim]
    at::Tensor covariance() const;                 // float64 [dim, dim], divided by N - 1, symmetrised

  private:
    int64_t dim_;
    int64_t count_ = 0;
    at::Tensor sum_;
    at::Tensor outer_;
};

struct FrechetResult {
    double value = 0;
    bool jitter_applied = false;    // the 1e-6 I retry was needed
    bool rank_deficient = false;    // N <= d on either side
};

// ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2), the trace through eigh(S1) and
// eigvalsh(sqrt(S1) S2 sqrt(S1)), all in float64. n1, n2 (0: unknown) only set rank_deficient.
FrechetResult frechet_distance(const at::Tensor& mu1, const at::Tensor& sigma1, const at::Tensor& mu2,
                               const at::Tensor& sigma2, int64_t n1 = 0, int64_t n2 = 0);

struct KidResult {
    double mean = 0;
    double std = 0;
    int64_t subsets = 0;
    int64_t subset_size = 0;
};
// Cubic-kernel unbiased MMD^2 averaged over SUBSETS random subsets of m = min(1000, N1, N2) (seeded).
KidResult kernel_inception_distance(const at::Tensor& real, const at::Tensor& fake, int64_t subsets = 100,
                                    int64_t max_subset = 1000, uint64_t seed = 0);

struct ScoreResult {
    double mean = 0;
    double std = 0;
};
// exp(E_x KL(p(y|x) || p(y))) over SPLITS contiguous splits, from logits [N, C], in float64.
ScoreResult inception_score(const at::Tensor& logits, int64_t splits = 10);

// Per class c < CLASSES: the mean pairwise L2 distance between the features of FAKE samples of
// class c divided by the same for REAL samples of class c (image-methods spec §4.2); below 0.5
// flags mode collapse. NaN for a class with fewer than two samples on either side.
std::vector<double> class_diversity(const at::Tensor& fake_features, const at::Tensor& fake_labels,
                                    const at::Tensor& real_features, const at::Tensor& real_labels, int64_t classes);

struct PrecisionRecall {
    double precision = 0;
    double recall = 0;
};
// k-NN manifolds (k = 3), distances blocked BLOCK rows at a time in float64; ties count as inside.
PrecisionRecall precision_recall(const at::Tensor& real, const at::Tensor& fake, int64_t k = 3, int64_t block = 4096);

// Reference statistics on disk: safetensors with mu, sigma (float64) and metadata (extractor
// id, sha256, mode, dataset, split, n). Also reads and writes pytorch-fid's .npz (mu, sigma)
// when PATH ends in .npz (metadata is then absent on read).
struct ReferenceStats {
    at::Tensor mu;
    at::Tensor sigma;
    int64_t n = 0;
    std::map<std::string, std::string> metadata;
};
void write_reference_stats(const std::string& path, const ReferenceStats& stats);
ReferenceStats read_reference_stats(const std::string& path);

}  // namespace onestep
