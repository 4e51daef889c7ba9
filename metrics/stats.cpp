// Feature statistics and the distances between feature sets (see stats.hpp): everything in
// float64 on the CPU, following image-metrics spec §4–7.
#include "metrics/stats.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.hpp"

namespace onestep {
namespace {

// pytorch-fid's offset when the square root of the covariance product fails.
constexpr double kFrechetJitter = 1e-6;

at::Tensor cpu_double(const at::Tensor& tensor) { return tensor.detach().to(torch::kCPU, torch::kDouble).contiguous(); }

at::Tensor symmetrised(const at::Tensor& matrix) { return (matrix + matrix.transpose(0, 1)) * 0.5; }

bool all_finite(const at::Tensor& tensor) { return torch::isfinite(tensor).all().item<bool>(); }

// Features or statistics of different widths come from different extractors or taps: a user's
// mix-up (say a 2048-d reference file with 128-d classifier features), not a programming error.
void check_same_dimension(const char* metric, int64_t first, int64_t second) {
    if (first != second) {
        throw UserError(std::string(metric) + ": the two sides have different feature dimensions (" +
                        std::to_string(first) + " and " + std::to_string(second) +
                        "); were they made by the same extractor and tap?");
    }
}

// tr (sigma1 sigma2)^(1/2) without complex numbers: S = sigma1^(1/2) through eigh, then the
// eigenvalues of the symmetric S sigma2 S (similar to sigma1 sigma2). Returns false when a
// decomposition fails or gives non-finite values, so the caller can retry with jitter.
bool trace_sqrt_product(const at::Tensor& sigma1, const at::Tensor& sigma2, double* trace) {
    try {
        auto [eigenvalues, eigenvectors] = at::linalg_eigh(sigma1, "L");
        if (!all_finite(eigenvalues) || !all_finite(eigenvectors)) return false;
        at::Tensor root =
            (eigenvectors * eigenvalues.clamp_min(0).sqrt().unsqueeze(0)).matmul(eigenvectors.transpose(0, 1));
        at::Tensor product = symmetrised(root.matmul(sigma2).matmul(root));
        at::Tensor product_eigenvalues = at::linalg_eigvalsh(product, "L");
        if (!all_finite(product_eigenvalues)) return false;
        *trace = product_eigenvalues.clamp_min(0).sqrt().sum().item<double>();
        return true;
    } catch (const c10::Error&) {
        return false;  // LAPACK did not converge; the jittered retry usually does
    }
}

// Unbiased integer in [0, bound) from a 64-bit engine by rejection, written out because
// std::uniform_int_distribution differs between standard libraries.
uint64_t uniform_below(std::mt19937_64& engine, uint64_t bound) {
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
    uint64_t draw = engine();
    while (draw >= limit) draw = engine();
    return draw % bound;
}

// The first COUNT entries of ORDER become a uniform random COUNT-subset (partial Fisher-Yates).
// ORDER is kept between calls: the shuffle is uniform from any starting arrangement.
at::Tensor draw_subset(std::mt19937_64& engine, std::vector<int64_t>& order, int64_t count) {
    const int64_t size = static_cast<int64_t>(order.size());
    for (int64_t i = 0; i < count; ++i) {
        int64_t j = i + static_cast<int64_t>(uniform_below(engine, static_cast<uint64_t>(size - i)));
        std::swap(order[i], order[j]);
    }
    return torch::from_blob(order.data(), {count}, torch::kLong).clone();
}

// k(x, y) = (x^T y / d + 1)^3 for every pair of rows.
at::Tensor cubic_kernel(const at::Tensor& x, const at::Tensor& y) {
    return (x.matmul(y.transpose(0, 1)) / static_cast<double>(x.size(1)) + 1.0).pow(3);
}

// Sum of the off-diagonal entries of a square matrix.
double off_diagonal_sum(const at::Tensor& matrix) {
    return matrix.sum().item<double>() - matrix.diagonal().sum().item<double>();
}

// Squared Euclidean distances ||a||^2 + ||b||^2 - 2 a^T b between rows, clamped at 0.
at::Tensor squared_distances(const at::Tensor& a, const at::Tensor& a_norms, const at::Tensor& b,
                             const at::Tensor& b_norms) {
    return (a_norms.unsqueeze(1) + b_norms.unsqueeze(0) - 2.0 * a.matmul(b.transpose(0, 1))).clamp_min(0);
}

// Squared distance from each row of POINTS to its K-th nearest other row, BLOCK rows at a time.
at::Tensor squared_radii(const at::Tensor& points, const at::Tensor& norms, int64_t k, int64_t block) {
    const int64_t count = points.size(0);
    at::Tensor radii = torch::empty({count}, torch::kDouble);
    for (int64_t start = 0; start < count; start += block) {
        const int64_t rows = std::min(block, count - start);
        at::Tensor distances =
            squared_distances(points.narrow(0, start, rows), norms.narrow(0, start, rows), points, norms);
        // A point is not its own neighbour.
        distances.diagonal(start).fill_(std::numeric_limits<double>::infinity());
        radii.narrow(0, start, rows).copy_(std::get<0>(distances.kthvalue(k, 1)));
    }
    return radii;
}

// Share of QUERY rows within the radius of at least one row of MANIFOLD (ties inside).
double share_inside(const at::Tensor& query, const at::Tensor& manifold, const at::Tensor& manifold_radii,
                    int64_t block) {
    at::Tensor query_norms = query.pow(2).sum(1);
    at::Tensor manifold_norms = manifold.pow(2).sum(1);
    const int64_t count = query.size(0);
    int64_t inside = 0;
    for (int64_t start = 0; start < count; start += block) {
        const int64_t rows = std::min(block, count - start);
        at::Tensor distances = squared_distances(query.narrow(0, start, rows), query_norms.narrow(0, start, rows),
                                                 manifold, manifold_norms);
        inside += distances.le(manifold_radii.unsqueeze(0)).any(1).sum().item<int64_t>();
    }
    return static_cast<double>(inside) / static_cast<double>(count);
}

}  // namespace

FeatureStats::FeatureStats(int64_t dim) : dim_(dim) {
    TORCH_CHECK(dim > 0, "FeatureStats: feature dimension must be positive, got ", dim);
    sum_ = torch::zeros({dim}, torch::kDouble);
    outer_ = torch::zeros({dim, dim}, torch::kDouble);
}

void FeatureStats::add(const at::Tensor& features) {
    TORCH_CHECK(features.dim() == 2 && features.size(1) == dim_, "FeatureStats: expected features [n, ", dim_,
                "], got ", features.sizes());
    TORCH_CHECK(features.is_floating_point(), "FeatureStats: features must be floating point, got ",
                features.scalar_type());
    if (features.size(0) == 0) return;
    at::Tensor batch = cpu_double(features);
    sum_ += batch.sum(0);
    outer_ += batch.transpose(0, 1).matmul(batch);  // P += F^T F
    count_ += batch.size(0);
}

at::Tensor FeatureStats::mean() const {
    TORCH_CHECK(count_ > 0, "FeatureStats: the mean of zero features is undefined");
    return sum_ / static_cast<double>(count_);
}

at::Tensor FeatureStats::covariance() const {
    TORCH_CHECK(count_ > 1, "FeatureStats: a covariance needs at least 2 features, have ", count_);
    const double n = static_cast<double>(count_);
    at::Tensor mu = sum_ / n;
    // (P - N mu mu^T) / (N - 1), as pytorch-fid, clean-fid and torch-fidelity normalise.
    at::Tensor sigma = (outer_ - n * torch::outer(mu, mu)) / (n - 1);
    return symmetrised(sigma);
}

FrechetResult frechet_distance(const at::Tensor& mu1, const at::Tensor& sigma1, const at::Tensor& mu2,
                               const at::Tensor& sigma2, int64_t n1, int64_t n2) {
    TORCH_CHECK(mu1.dim() == 1 && mu2.dim() == 1, "Fréchet distance: means must be [d], got ", mu1.sizes(), " and ",
                mu2.sizes());
    check_same_dimension("Fréchet distance", mu1.size(0), mu2.size(0));
    const int64_t dim = mu1.size(0);
    TORCH_CHECK(sigma1.dim() == 2 && sigma1.size(0) == dim && sigma1.size(1) == dim && sigma2.sizes() == sigma1.sizes(),
                "Fréchet distance: covariances must be [", dim, ", ", dim, "], got ", sigma1.sizes(), " and ",
                sigma2.sizes());
    at::Tensor m1 = cpu_double(mu1), m2 = cpu_double(mu2);
    at::Tensor s1 = symmetrised(cpu_double(sigma1)), s2 = symmetrised(cpu_double(sigma2));
    if (!all_finite(m1) || !all_finite(m2) || !all_finite(s1) || !all_finite(s2)) {
        throw UserError(
            "Fréchet distance: the statistics contain NaN or infinite values (features of a diverged model?)");
    }

    FrechetResult result;
    result.rank_deficient = (n1 > 0 && n1 <= dim) || (n2 > 0 && n2 <= dim);
    double trace_sqrt = 0;
    if (!trace_sqrt_product(s1, s2, &trace_sqrt)) {
        // As pytorch-fid: the offset enters only the square root, not tr sigma1 + tr sigma2.
        at::Tensor offset = torch::eye(dim, torch::kDouble) * kFrechetJitter;
        result.jitter_applied = true;
        TORCH_CHECK(trace_sqrt_product(s1 + offset, s2 + offset, &trace_sqrt),
                    "Fréchet distance: the eigendecomposition failed even with ", kFrechetJitter, " I added");
    }
    at::Tensor difference = m1 - m2;
    // Not clamped: a tiny negative value is rounding noise, a large one is a bug to be seen.
    result.value = difference.dot(difference).item<double>() + s1.trace().item<double>() + s2.trace().item<double>() -
                   2.0 * trace_sqrt;
    return result;
}

KidResult kernel_inception_distance(const at::Tensor& real, const at::Tensor& fake, int64_t subsets, int64_t max_subset,
                                    uint64_t seed) {
    TORCH_CHECK(real.dim() == 2 && fake.dim() == 2, "KID: expected feature sets [n, d], got ", real.sizes(), " and ",
                fake.sizes());
    check_same_dimension("KID", real.size(1), fake.size(1));
    TORCH_CHECK(subsets > 0 && max_subset > 1, "KID: need subsets > 0 and a subset size > 1");
    const int64_t subset_size = std::min({max_subset, real.size(0), fake.size(0)});
    if (subset_size < 2) {
        throw UserError("KID needs at least 2 features in each set, got " + std::to_string(real.size(0)) +
                        " real and " + std::to_string(fake.size(0)) + " generated");
    }
    at::Tensor x_all = cpu_double(real), y_all = cpu_double(fake);
    std::mt19937_64 engine(seed);
    std::vector<int64_t> real_order(static_cast<size_t>(real.size(0))), fake_order(static_cast<size_t>(fake.size(0)));
    std::iota(real_order.begin(), real_order.end(), 0);
    std::iota(fake_order.begin(), fake_order.end(), 0);

    const double m = static_cast<double>(subset_size);
    std::vector<double> estimates;
    estimates.reserve(static_cast<size_t>(subsets));
    for (int64_t subset = 0; subset < subsets; ++subset) {
        at::Tensor x = x_all.index_select(0, draw_subset(engine, real_order, subset_size));
        at::Tensor y = y_all.index_select(0, draw_subset(engine, fake_order, subset_size));
        // MMD^2_u = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1)) - 2 sum k(x_i,y_j)/m^2
        double within = (off_diagonal_sum(cubic_kernel(x, x)) + off_diagonal_sum(cubic_kernel(y, y))) / (m * (m - 1));
        double across = cubic_kernel(x, y).sum().item<double>() / (m * m);
        estimates.push_back(within - 2.0 * across);
    }
    KidResult result;
    result.subsets = subsets;
    result.subset_size = subset_size;
    result.mean = std::accumulate(estimates.begin(), estimates.end(), 0.0) / static_cast<double>(subsets);
    double squares = 0;
    for (double estimate : estimates) squares += (estimate - result.mean) * (estimate - result.mean);
    result.std = std::sqrt(squares / static_cast<double>(subsets));  // population std, as torch-fidelity
    return result;
}

ScoreResult inception_score(const at::Tensor& logits, int64_t splits) {
    TORCH_CHECK(logits.dim() == 2 && logits.size(1) > 0, "Inception score: expected logits [N, C], got ",
                logits.sizes());
    TORCH_CHECK(splits > 0, "Inception score: splits must be positive, got ", splits);
    const int64_t count = logits.size(0);
    if (count < splits) {
        throw UserError("Inception score needs at least one sample per split: " + std::to_string(count) +
                        " samples for " + std::to_string(splits) + " splits");
    }
    at::Tensor log_p = torch::log_softmax(cpu_double(logits), 1);
    at::Tensor p = log_p.exp();
    std::vector<double> scores;
    for (int64_t split = 0; split < splits; ++split) {
        const int64_t begin = split * count / splits, end = (split + 1) * count / splits;
        at::Tensor part_p = p.narrow(0, begin, end - begin);
        at::Tensor part_log_p = log_p.narrow(0, begin, end - begin);
        at::Tensor log_marginal = part_p.mean(0).log().unsqueeze(0);
        // 0 log 0 = 0: a class with p = 0 adds nothing, even where the marginal is 0 too.
        at::Tensor terms = torch::where(part_p > 0, part_p * (part_log_p - log_marginal), torch::zeros_like(part_p));
        scores.push_back(std::exp(terms.sum(1).mean().item<double>()));
    }
    ScoreResult result;
    result.mean = std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(splits);
    double squares = 0;
    for (double score : scores) squares += (score - result.mean) * (score - result.mean);
    result.std = std::sqrt(squares / static_cast<double>(splits));
    return result;
}

PrecisionRecall precision_recall(const at::Tensor& real, const at::Tensor& fake, int64_t k, int64_t block) {
    TORCH_CHECK(real.dim() == 2 && fake.dim() == 2, "precision/recall: expected feature sets [n, d], got ",
                real.sizes(), " and ", fake.sizes());
    check_same_dimension("precision/recall", real.size(1), fake.size(1));
    TORCH_CHECK(k > 0 && block > 0, "precision/recall: k and block must be positive");
    if (real.size(0) <= k || fake.size(0) <= k) {
        throw UserError("precision/recall with k = " + std::to_string(k) + " needs more than " + std::to_string(k) +
                        " features in each set, got " + std::to_string(real.size(0)) + " real and " +
                        std::to_string(fake.size(0)) + " generated");
    }
    at::Tensor x = cpu_double(real), y = cpu_double(fake);
    at::Tensor real_radii = squared_radii(x, x.pow(2).sum(1), k, block);
    at::Tensor fake_radii = squared_radii(y, y.pow(2).sum(1), k, block);
    PrecisionRecall result;
    result.precision = share_inside(y, x, real_radii, block);
    result.recall = share_inside(x, y, fake_radii, block);
    return result;
}

std::vector<double> class_diversity(const at::Tensor& fake_features, const at::Tensor& fake_labels,
                                    const at::Tensor& real_features, const at::Tensor& real_labels, int64_t classes) {
    auto mean_pairwise = [](const at::Tensor& features, const at::Tensor& labels, int64_t c) {
        at::Tensor rows = features.index_select(0, torch::nonzero(labels.cpu() == c).flatten()).to(torch::kDouble);
        const int64_t n = rows.size(0);
        if (n < 2) return std::nan("");
        // Every ordered pair i != j: the diagonal of the distance matrix is zero.
        return torch::cdist(rows, rows).sum().item<double>() / static_cast<double>(n * (n - 1));
    };
    std::vector<double> ratios;
    for (int64_t c = 0; c < classes; ++c)
        ratios.push_back(mean_pairwise(fake_features.cpu(), fake_labels, c) / mean_pairwise(real_features.cpu(), real_labels, c));
    return ratios;
}

}  // namespace onestep
