// Closed-form checks of the feature statistics and distances (image-metrics spec §11, items 1–10
// and 14), and round trips of the reference-statistics files, .npz included.
#include <catch2/catch.hpp>
#include <zip.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/tensor_file.hpp"
#include "metrics/stats.hpp"
#include "support.hpp"

namespace {

using Catch::Matchers::Contains;
using onestep::FeatureStats;
using onestep::ReferenceStats;
using onestep::UserError;

at::Tensor normal(std::vector<int64_t> shape, uint64_t seed) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    return torch::randn(shape, generator, torch::kDouble);
}

// A well-conditioned random symmetric positive definite matrix.
at::Tensor random_spd(int64_t dim, uint64_t seed) {
    at::Tensor a = normal({dim, dim}, seed);
    return a.matmul(a.transpose(0, 1)) / static_cast<double>(dim) + 0.1 * torch::eye(dim, torch::kDouble);
}

at::Tensor random_orthogonal(int64_t dim, uint64_t seed) {
    at::Tensor a = normal({dim, dim}, seed);
    return std::get<1>(at::linalg_eigh(a + a.transpose(0, 1), "L"));
}

double frechet_of_sets(const at::Tensor& x, const at::Tensor& y) {
    FeatureStats sx(x.size(1)), sy(y.size(1));
    sx.add(x);
    sy.add(y);
    return onestep::frechet_distance(sx.mean(), sx.covariance(), sy.mean(), sy.covariance()).value;
}

double relative_error(double value, double reference) { return std::abs(value - reference) / std::abs(reference); }

}  // namespace

TEST_CASE("Frechet distance with equal identity covariances is the squared mean distance", "[unit]") {
    const int64_t dim = 32;
    at::Tensor mu1 = normal({dim}, 1), mu2 = normal({dim}, 2);
    at::Tensor identity = torch::eye(dim, torch::kDouble);
    auto result = onestep::frechet_distance(mu1, identity, mu2, identity);
    double expected = (mu1 - mu2).pow(2).sum().item<double>();
    CHECK(std::abs(result.value - expected) <= 1e-10 * dim);
    CHECK_FALSE(result.jitter_applied);
    CHECK_FALSE(result.rank_deficient);
    // Statistics of different extractors and broken statistics are the user's to fix.
    CHECK_THROWS_WITH(
        onestep::frechet_distance(mu1, identity, mu2.narrow(0, 0, 8), identity.narrow(0, 0, 8).narrow(1, 0, 8)),
        Contains("32 and 8"));
    at::Tensor broken = identity.clone();
    broken[3][3] = std::nan("");
    CHECK_THROWS_AS(onestep::frechet_distance(mu1, broken, mu2, identity), UserError);
}

TEST_CASE("Frechet distance of diagonal covariances is the sum of (sqrt a - sqrt b)^2", "[unit]") {
    at::Tensor mu = torch::tensor({0.5, -1.0, 2.0}, torch::kDouble);
    at::Tensor a = torch::diag(torch::tensor({1.0, 4.0, 9.0}, torch::kDouble));
    at::Tensor b = torch::diag(torch::tensor({4.0, 1.0, 16.0}, torch::kDouble));
    CHECK(onestep::frechet_distance(mu, a, mu, b).value == Approx(3.0).margin(1e-12));
    // Float inputs are promoted to float64 first.
    CHECK(onestep::frechet_distance(mu.to(torch::kFloat), a.to(torch::kFloat), mu, b).value ==
          Approx(3.0).margin(1e-12));
}

TEST_CASE("Frechet distance of identical statistics is zero up to rounding", "[unit]") {
    const int64_t dim = 256;
    at::Tensor sigma = random_spd(dim, 3);
    at::Tensor mu = normal({dim}, 4);
    double value = onestep::frechet_distance(mu, sigma, mu, sigma).value;
    CHECK(std::abs(value) <= 1e-9 * sigma.trace().item<double>());
}

TEST_CASE("Frechet distance is invariant under a common rotation of both sets", "[unit]") {
    const int64_t dim = 12;
    at::Tensor x = normal({600, dim}, 5) * torch::linspace(0.5, 2.0, dim, torch::kDouble) + 0.3;
    at::Tensor mixing = torch::eye(dim, torch::kDouble) + 0.3 * normal({dim, dim}, 6);
    at::Tensor y = normal({500, dim}, 7).matmul(mixing) - 0.2;
    at::Tensor rotation = random_orthogonal(dim, 8);
    double plain = frechet_of_sets(x, y);
    double rotated = frechet_of_sets(x.matmul(rotation), y.matmul(rotation));
    REQUIRE(plain > 0.1);
    CHECK(relative_error(rotated, plain) <= 1e-8);
}

TEST_CASE("Frechet distance agrees with the complex eigenvalue form", "[unit]") {
    const int64_t dim = 40;
    for (uint64_t seed = 10; seed < 14; ++seed) {
        at::Tensor sigma1 = random_spd(dim, seed), sigma2 = random_spd(dim, seed + 100);
        at::Tensor mu1 = normal({dim}, seed + 200), mu2 = normal({dim}, seed + 300);
        at::Tensor eigenvalues = at::linalg_eigvals(sigma1.matmul(sigma2));
        double trace_sqrt = torch::real(torch::sqrt(eigenvalues)).sum().item<double>();
        double expected = (mu1 - mu2).pow(2).sum().item<double>() + sigma1.trace().item<double>() +
                          sigma2.trace().item<double>() - 2 * trace_sqrt;
        double value = onestep::frechet_distance(mu1, sigma1, mu2, sigma2).value;
        CHECK(relative_error(value, expected) <= 1e-8);
    }
}

TEST_CASE("Frechet distance of two samples of N(0, I) follows the sampling law", "[unit]") {
    const int64_t dim = 64, count = 10000;
    double total = 0;
    for (uint64_t seed = 0; seed < 10; ++seed) {
        FeatureStats first(dim), second(dim);
        first.add(normal({count, dim}, 1000 + seed));
        second.add(normal({count, dim}, 2000 + seed));
        auto result = onestep::frechet_distance(first.mean(), first.covariance(), second.mean(), second.covariance(),
                                                count, count);
        CHECK_FALSE(result.rank_deficient);
        total += result.value;
    }
    // E[FD] ~ (1/N1 + 1/N2) (d + d (d + 1) / 4)
    double expected = (2.0 / count) * (dim + dim * (dim + 1) / 4.0);
    CHECK(expected == Approx(0.2208));
    CHECK(relative_error(total / 10, expected) <= 0.10);
}

TEST_CASE("Frechet distance with fewer samples than dimensions is finite and flagged", "[unit]") {
    const int64_t dim = 256, count = 100;
    FeatureStats first(dim), second(dim);
    first.add(normal({count, dim}, 21));
    second.add(normal({count, dim}, 22));
    auto result =
        onestep::frechet_distance(first.mean(), first.covariance(), second.mean(), second.covariance(), count, count);
    CHECK(std::isfinite(result.value));
    CHECK(result.value > 0);
    CHECK(result.rank_deficient);
    // One side known to be large enough is not enough; unknown counts (0) never flag.
    CHECK(onestep::frechet_distance(first.mean(), first.covariance(), second.mean(), second.covariance(), 5000, count)
              .rank_deficient);
    CHECK_FALSE(
        onestep::frechet_distance(first.mean(), first.covariance(), second.mean(), second.covariance()).rank_deficient);
}

TEST_CASE("Streaming statistics over batches of 7 equal a two-pass computation", "[unit]") {
    const int64_t dim = 9, count = 100;  // 100 = 14 x 7 + 2: the partial last batch counts
    at::Tensor features = normal({count, dim}, 31) * torch::linspace(0.1, 3.0, dim, torch::kDouble) +
                          torch::linspace(-5.0, 5.0, dim, torch::kDouble);
    FeatureStats stats(dim);
    for (int64_t start = 0; start < count; start += 7)
        stats.add(features.narrow(0, start, std::min<int64_t>(7, count - start)));
    REQUIRE(stats.count() == count);
    at::Tensor mu = features.mean(0);
    at::Tensor centred = features - mu;
    at::Tensor sigma = centred.transpose(0, 1).matmul(centred) / static_cast<double>(count - 1);
    CHECK(((stats.mean() - mu).abs().max() / mu.abs().max()).item<double>() <= 1e-10);
    CHECK(((stats.covariance() - sigma).abs().max() / sigma.abs().max()).item<double>() <= 1e-10);
    CHECK(torch::equal(stats.covariance(), stats.covariance().transpose(0, 1)));
    CHECK(stats.mean().scalar_type() == torch::kDouble);

    FeatureStats from_float(dim);
    from_float.add(features.to(torch::kFloat));
    CHECK(((from_float.mean() - mu).abs().max()).item<double>() <= 1e-5);
    CHECK_THROWS(from_float.add(torch::zeros({3, dim + 1})));
}

TEST_CASE("KID of {1, -1} against itself with one subset of two is -8", "[unit]") {
    at::Tensor points = torch::tensor({{1.0}, {-1.0}}, torch::kDouble);
    auto result = onestep::kernel_inception_distance(points, points, 1, 1000, 0);
    CHECK(result.mean == -8.0);
    CHECK(result.std == 0.0);
    CHECK(result.subsets == 1);
    CHECK(result.subset_size == 2);
}

TEST_CASE("KID on whole sets equals a naive double loop", "[unit]") {
    const int64_t count = 25, dim = 4;
    at::Tensor x = normal({count, dim}, 41), y = normal({count, dim}, 42) * 1.3 + 0.2;
    auto kernel = [dim](const at::Tensor& a, int64_t i, const at::Tensor& b, int64_t j) {
        double dot = 0;
        for (int64_t c = 0; c < dim; ++c) dot += a[i][c].item<double>() * b[j][c].item<double>();
        return std::pow(dot / dim + 1, 3);
    };
    double xx = 0, yy = 0, xy = 0;
    for (int64_t i = 0; i < count; ++i) {
        for (int64_t j = 0; j < count; ++j) {
            if (i != j) {
                xx += kernel(x, i, x, j);
                yy += kernel(y, i, y, j);
            }
            xy += kernel(x, i, y, j);
        }
    }
    const double m = count;
    double expected = xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m);
    // Every subset holds all points (in some order), so each estimate equals the naive one.
    auto result = onestep::kernel_inception_distance(x, y, 3, 1000, 7);
    CHECK(result.subset_size == count);
    CHECK(relative_error(result.mean, expected) <= 1e-10);
    CHECK(result.std <= 1e-10 * std::abs(expected));
}

TEST_CASE("KID of two samples of one distribution is within its noise, and seeded", "[unit]") {
    at::Tensor x = normal({600, 16}, 51), y = normal({700, 16}, 52);
    auto result = onestep::kernel_inception_distance(x, y, 50, 200, 3);
    CHECK(result.subset_size == 200);
    CHECK(result.std > 0);
    CHECK(std::abs(result.mean) < 3 * result.std);
    auto again = onestep::kernel_inception_distance(x, y, 50, 200, 3);
    CHECK(again.mean == result.mean);
    CHECK(again.std == result.std);
    CHECK(onestep::kernel_inception_distance(x, y, 50, 200, 4).mean != result.mean);
    // A shifted distribution stands far outside that noise.
    auto shifted = onestep::kernel_inception_distance(x, y + 1.0, 50, 200, 3);
    CHECK(shifted.mean > 10 * shifted.std);
    CHECK_THROWS_AS(onestep::kernel_inception_distance(x.narrow(0, 0, 1), y), UserError);
    CHECK_THROWS_AS(onestep::kernel_inception_distance(x, y.narrow(1, 0, 8)), UserError);
}

TEST_CASE("Inception score of identical rows is 1", "[unit]") {
    at::Tensor logits = torch::tensor({0.3, -1.0, 2.0, 0.0}, torch::kDouble).repeat({50, 1});
    auto score = onestep::inception_score(logits);
    CHECK(score.mean == Approx(1.0).margin(1e-12));
    CHECK(score.std == Approx(0.0).margin(1e-12));
}

TEST_CASE("Inception score of confident, balanced predictions is the class count", "[unit]") {
    const int64_t classes = 1008, splits = 10;
    // Row i is sure of class i mod C (margin 50, so one-hot up to e^-50); each split holds every class once.
    at::Tensor labels = torch::arange(classes * splits, torch::kLong).remainder(classes);
    at::Tensor logits = torch::zeros({classes * splits, classes}, torch::kFloat);
    logits.scatter_(1, labels.unsqueeze(1), 50.0);
    auto score = onestep::inception_score(logits, splits);
    CHECK(std::abs(score.mean - classes) <= 1e-9);
    CHECK(score.std <= 1e-9);
}

TEST_CASE("Inception score uses the requested number of contiguous splits", "[unit]") {
    // Five splits of 12 rows; in split s every row is sure of one of USED[s] classes, each class
    // equally often, so IS_s = USED[s] and the mean and std over splits are known.
    const std::vector<int64_t> used_counts = {2, 3, 4, 6, 12};
    std::vector<at::Tensor> parts;
    for (int64_t used : used_counts) {
        at::Tensor labels = torch::arange(12, torch::kLong).remainder(used);
        at::Tensor part = torch::full({12, 12}, -1e4, torch::kDouble);
        part.scatter_(1, labels.unsqueeze(1), 0.0);
        parts.push_back(part);
    }
    auto score = onestep::inception_score(torch::cat(parts), 5);
    double mean = (2 + 3 + 4 + 6 + 12) / 5.0;
    double variance = 0;
    for (int64_t used : used_counts) variance += (used - mean) * (used - mean) / 5.0;
    CHECK(score.mean == Approx(mean).epsilon(1e-12));
    CHECK(score.std == Approx(std::sqrt(variance)).epsilon(1e-12));
    CHECK_THROWS_AS(onestep::inception_score(torch::zeros({9, 3}), 10), UserError);
}

TEST_CASE("Precision and recall of identical sets are 1 and of far sets 0", "[unit]") {
    at::Tensor x = normal({300, 8}, 61);
    auto same = onestep::precision_recall(x, x.clone());
    CHECK(same.precision == 1.0);
    CHECK(same.recall == 1.0);
    auto far = onestep::precision_recall(x, normal({250, 8}, 62) + 100.0);
    CHECK(far.precision == 0.0);
    CHECK(far.recall == 0.0);
    CHECK_THROWS_AS(onestep::precision_recall(x, x.narrow(0, 0, 3)), UserError);
    CHECK_THROWS_AS(onestep::precision_recall(x, x.narrow(1, 0, 4)), UserError);
}

TEST_CASE("Blocked precision and recall equal the unblocked computation", "[unit]") {
    at::Tensor x = normal({230, 6}, 71), y = normal({170, 6}, 72) * 1.2 + 0.3;
    auto whole = onestep::precision_recall(x, y, 3, 100000);
    REQUIRE(whole.precision > 0.05);
    REQUIRE(whole.precision < 0.999);
    REQUIRE(whole.recall > 0.05);
    REQUIRE(whole.recall < 0.999);
    for (int64_t block : {1, 7, 64}) {
        auto blocked = onestep::precision_recall(x, y, 3, block);
        CHECK(blocked.precision == whole.precision);
        CHECK(blocked.recall == whole.recall);
    }
}

TEST_CASE("Points exactly on a k-NN radius count as inside", "[unit]") {
    // Real {0, 1, 2, 3}: the 3rd nearest other point of 3 is 0, radius 3, so 6 lies on its sphere.
    at::Tensor real = torch::tensor({{0.0}, {1.0}, {2.0}, {3.0}}, torch::kDouble);
    at::Tensor on_sphere = torch::tensor({{6.0}, {6.0}, {6.0}, {6.0}}, torch::kDouble);
    at::Tensor outside = torch::tensor({{6.5}, {6.5}, {6.5}, {6.5}}, torch::kDouble);
    CHECK(onestep::precision_recall(real, on_sphere).precision == 1.0);
    CHECK(onestep::precision_recall(real, outside).precision == 0.0);
    // A generated set {-3, 0, 0, 0}: balls of radius 3 around each; real 3 lies on them.
    at::Tensor generated = torch::tensor({{-3.0}, {0.0}, {0.0}, {0.0}}, torch::kDouble);
    CHECK(onestep::precision_recall(real, generated).recall == 1.0);
}

TEST_CASE("SHA-256 of 'abc' is the FIPS 180-2 digest", "[unit]") {
    onestep::test::TempDir dir;
    onestep::test::write_text(dir / "abc.txt", "abc");
    CHECK(onestep::sha256_file(dir / "abc.txt") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// ---- reference-statistics files ----

namespace {

ReferenceStats sample_stats(int64_t dim) {
    ReferenceStats stats;
    stats.mu = normal({dim}, 81);
    stats.sigma = random_spd(dim, 82);
    stats.n = 12345;
    stats.metadata = {{"extractor", "mnist/cnn128@3f9a2c1e"}, {"mode", "pt-bilinear"}, {"split", "test"}};
    return stats;
}

// A .npy v1.0 file written byte by byte, as an older numpy (16-byte alignment) would.
std::string npy_bytes(const std::string& dict, const void* data, size_t data_bytes, char major = 1) {
    std::string header = dict;
    header.append(16 - (10 + header.size() + 1) % 16, ' ');
    header += '\n';
    std::string bytes = "\x93NUMPY";
    bytes += major;
    bytes += '\0';
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    bytes += header;
    bytes.append(static_cast<const char*>(data), data_bytes);
    return bytes;
}

void write_zip(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries) {
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    REQUIRE(archive != nullptr);
    for (const auto& [name, bytes] : entries) {
        zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
        REQUIRE(source != nullptr);
        REQUIRE(zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE) >= 0);
    }
    REQUIRE(zip_close(archive) == 0);
}

const double kMu[2] = {1.5, -2.25};
const float kSigma[4] = {2.0f, 0.5f, 0.5f, 1.0f};

std::string good_mu() {
    return npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", kMu, sizeof kMu);
}
std::string good_sigma() {
    return npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", kSigma, sizeof kSigma);
}

}  // namespace

TEST_CASE("Reference statistics round-trip through safetensors with N and metadata", "[unit]") {
    onestep::test::TempDir dir;
    ReferenceStats stats = sample_stats(24);
    onestep::write_reference_stats(dir / "ref.safetensors", stats);
    ReferenceStats back = onestep::read_reference_stats(dir / "ref.safetensors");
    CHECK(torch::equal(back.mu, stats.mu));
    CHECK(torch::equal(back.sigma, stats.sigma));
    CHECK(back.mu.scalar_type() == torch::kDouble);
    CHECK(back.n == 12345);
    CHECK(back.metadata == stats.metadata);
    CHECK_FALSE(std::filesystem::exists(dir / "ref.safetensors.tmp"));
}

TEST_CASE("Reference statistics round-trip through pytorch-fid's .npz", "[unit]") {
    onestep::test::TempDir dir;
    ReferenceStats stats = sample_stats(33);
    stats.mu = stats.mu.to(torch::kFloat);  // written as float64 whatever comes in
    onestep::write_reference_stats(dir / "ref.npz", stats);
    onestep::write_reference_stats(dir / "ref.npz", stats);  // over an existing file
    ReferenceStats back = onestep::read_reference_stats(dir / "ref.npz");
    CHECK(torch::equal(back.mu, stats.mu.to(torch::kDouble)));
    CHECK(torch::equal(back.sigma, stats.sigma));
    CHECK(back.n == 0);
    CHECK(back.metadata.empty());
    CHECK_FALSE(std::filesystem::exists(dir / "ref.npz.tmp"));

    // The stored .npy headers are aligned to 64 bytes and hold numpy's dict literal.
    std::string archive = onestep::test::read_text(dir / "ref.npz");
    size_t header_at = archive.find("\x93NUMPY\x01");
    REQUIRE(header_at != std::string::npos);
    size_t header_bytes =
        static_cast<unsigned char>(archive[header_at + 8]) | static_cast<unsigned char>(archive[header_at + 9]) << 8;
    CHECK((10 + header_bytes) % 64 == 0);
    const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (33,), }";
    CHECK(archive.compare(header_at + 10, dict.size(), dict) == 0);
}

TEST_CASE("A hand-built .npz with float64 mu and float32 sigma reads back", "[unit]") {
    onestep::test::TempDir dir;
    write_zip(dir / "hand.npz", {{"mu.npy", good_mu()}, {"sigma.npy", good_sigma()}});
    ReferenceStats stats = onestep::read_reference_stats(dir / "hand.npz");
    REQUIRE(stats.mu.sizes() == torch::IntArrayRef({2}));
    REQUIRE(stats.sigma.sizes() == torch::IntArrayRef({2, 2}));
    CHECK(stats.sigma.scalar_type() == torch::kDouble);
    CHECK(stats.mu[0].item<double>() == 1.5);
    CHECK(stats.mu[1].item<double>() == -2.25);
    CHECK(stats.sigma[0][0].item<double>() == 2.0);
    CHECK(stats.sigma[0][1].item<double>() == 0.5);
    CHECK(stats.sigma[1][0].item<double>() == 0.5);
    CHECK(stats.sigma[1][1].item<double>() == 1.0);

    // Version 2.0 headers (4-byte length) and double-quoted keys are numpy too.
    std::string dict = "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,)}";
    std::string v2 = npy_bytes(dict, kMu, sizeof kMu, 2);
    v2.insert(10, 2, '\0');  // widen the length field to 4 bytes
    write_zip(dir / "v2.npz", {{"mu.npy", v2}, {"sigma.npy", good_sigma()}});
    CHECK(torch::equal(onestep::read_reference_stats(dir / "v2.npz").mu, stats.mu));
}

TEST_CASE("Malformed .npz files give errors naming the file and entry", "[unit]") {
    onestep::test::TempDir dir;
    const std::string path = dir / "bad.npz";
    auto expect_error = [&](const std::vector<std::pair<std::string, std::string>>& entries, const std::string& part) {
        write_zip(path, entries);
        CHECK_THROWS_WITH(onestep::read_reference_stats(path), Contains(path) && Contains(part));
    };
    const std::string fortran =
        npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", kSigma, sizeof kSigma);
    const int64_t integers[4] = {1, 0, 0, 1};
    const std::string int_sigma =
        npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", integers, sizeof integers);
    const std::string big_endian =
        npy_bytes("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", kMu, sizeof kMu);
    const std::string truncated = good_sigma().substr(0, good_sigma().size() - 3);
    const std::string wrong_shape =
        npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", kMu, sizeof kMu);
    std::string bad_magic = good_mu();
    bad_magic[1] = 'X';
    const std::string no_shape = npy_bytes("{'descr': '<f8', 'fortran_order': False, }", kMu, sizeof kMu);
    const std::string bad_dict =
        npy_bytes("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,), }", kMu, sizeof kMu);

    expect_error({{"mu.npy", good_mu()}}, "'sigma.npy' is missing");
    expect_error({{"sigma.npy", good_sigma()}}, "'mu.npy' is missing");
    expect_error({{"mu.npy", good_mu()}, {"sigma.npy", fortran}}, "sigma.npy");
    expect_error({{"mu.npy", good_mu()}, {"sigma.npy", fortran}}, "Fortran order");
    expect_error({{"mu.npy", good_mu()}, {"sigma.npy", int_sigma}}, "'<i8' is not supported");
    expect_error({{"mu.npy", big_endian}, {"sigma.npy", good_sigma()}}, "'>f8' is not supported");
    expect_error({{"mu.npy", good_mu()}, {"sigma.npy", truncated}}, "truncated");
    expect_error({{"mu.npy", bad_magic}, {"sigma.npy", good_sigma()}}, "mu.npy': not a NumPy .npy array");
    expect_error({{"mu.npy", no_shape}, {"sigma.npy", good_sigma()}}, "'shape' are all required");
    expect_error({{"mu.npy", bad_dict}, {"sigma.npy", good_sigma()}}, "malformed .npy header");
    expect_error({{"mu.npy", good_mu().substr(0, 8)}, {"sigma.npy", good_sigma()}}, "mu.npy");
    expect_error({{"mu.npy", wrong_shape}, {"sigma.npy", good_sigma()}}, "needs 24 bytes");
    // Each array is well formed but they do not fit together.
    const double three[3] = {1, 2, 3};
    expect_error(
        {{"mu.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", three, sizeof three)},
         {"sigma.npy", good_sigma()}},
        "mu must be [d] and sigma [d, d]");

    onestep::test::write_text(path, "this is not a zip archive");
    CHECK_THROWS_WITH(onestep::read_reference_stats(path), Contains(path) && Contains("zip"));
    CHECK_THROWS_WITH(onestep::read_reference_stats(dir / "missing.npz"), Contains("missing.npz"));
}

TEST_CASE("Reference statistics with wrong shapes or a bad N are refused", "[unit]") {
    onestep::test::TempDir dir;
    ReferenceStats stats = sample_stats(4);
    stats.sigma = torch::eye(5, torch::kDouble);
    for (const char* name : {"a.safetensors", "a.npz"}) {
        CHECK_THROWS_WITH(onestep::write_reference_stats(dir / name, stats),
                          Contains(name) && Contains("sigma [d, d]"));
        CHECK_FALSE(std::filesystem::exists(dir / name));
        CHECK_FALSE(std::filesystem::exists(dir / (std::string(name) + ".tmp")));
    }
    stats = sample_stats(4);
    stats.mu = torch::zeros({4}, torch::kLong);
    CHECK_THROWS_AS(onestep::write_reference_stats(dir / "b.safetensors", stats), UserError);

    onestep::write_safetensors(dir / "only_mu.safetensors", {{"mu", torch::zeros({3}, torch::kDouble)}});
    CHECK_THROWS_WITH(onestep::read_reference_stats(dir / "only_mu.safetensors"), Contains("'sigma' is missing"));
    onestep::write_safetensors(dir / "bad_n.safetensors",
                               {{"mu", torch::zeros({2}, torch::kDouble)}, {"sigma", torch::eye(2, torch::kDouble)}},
                               {{"n", "ten"}});
    CHECK_THROWS_WITH(onestep::read_reference_stats(dir / "bad_n.safetensors"),
                      Contains("bad_n.safetensors") && Contains("'n'"));
}

TEST_CASE("class diversity is the per-class ratio of mean pairwise feature distances, 0 for a collapsed class",
          "[unit]") {
    torch::manual_seed(4);
    at::Tensor real = torch::randn({60, 5});
    at::Tensor labels = torch::arange(60, torch::kLong) % 3;
    at::Tensor fake = real.clone();
    fake.index_put_({labels == 1}, 2.0 * real.index({labels == 1}));   // class 1 twice as spread
    fake.index_put_({labels == 2}, torch::ones({20, 5}));              // class 2 collapsed to one point
    std::vector<double> ratios = onestep::class_diversity(fake, labels, real, labels, 4);
    REQUIRE(ratios.size() == 4);
    CHECK(ratios[0] == Approx(1.0));
    CHECK(ratios[1] == Approx(2.0));
    CHECK(ratios[2] == Approx(0.0).margin(1e-6));
    CHECK(std::isnan(ratios[3]));   // no samples of class 3
}
