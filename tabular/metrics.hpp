// The ForestFlow paper's quality metrics of generated tables (spec §10) beside the exact W1 of
// w1.hpp: coverage with the reference's k rule, TSTR efficiency and the discriminator score.
//
//   MetricSchema schema{train.columns, {"colour"}, "species", true};      // label column, classification
//   auto [real_points, fake_points] = gower_pair(train, fake, prep, "train.csv", "fake.csv");
//   CoverageRadii radii = coverage_radii(gower_points(train, prep, "train.csv"));   // k = k_sel, often 2
//   double cover = coverage(real_points, radii, fake_points);           // share of real rows covered
//   double f1 = tstr_xgb(fake, train, test, schema);                    // macro-F1 on the real test set
//   DiscriminatorResult disc = disc_xgb(train, fake_a, fake_b, schema); // disc.f1 ≈ 1/3: indistinguishable
#pragma once
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tabular/preprocess.hpp"
#include "tabular/table.hpp"
#include "tabular/w1.hpp"

namespace onestep::tabular {

// Gower points of two tables in one encoding: categorical one-hot blocks span the union of the
// levels of both (a level only one side has costs 1 against every other), numeric columns use
// PREP's training range. B's columns are matched to A's by name.
std::pair<Points, Points> gower_pair(const Table& a, const Table& b, const Preprocessor& prep,
                                     const std::string& source_a, const std::string& source_b);

// ---- Coverage (Naeem et al. 2020, L1 distances) ----

// k_sel = 1 + min{k ≥ 1 : coverage(R, R; k) ≥ 0.95}. With F = R, min_f d(r, f) = 0, so r counts
// iff ρ_k(r) > 0, i.e. r has fewer than k exact duplicates in R.
int coverage_k(const Points& real);

// ρ_k(r) for every r of REAL: the distance to the (k+1)-th nearest point of REAL counting r itself.
struct CoverageRadii {
    int k = 0;
    std::vector<double> radius;
};
// Computed block-wise (memory O(n·k), no n×n matrix); K = 0 picks coverage_k(REAL). THREADS ≤ 0: all cores.
CoverageRadii coverage_radii(const Points& real, int k = 0, int threads = 0);

// (1/|R|) Σ_r 1[min_f d(r, f) < ρ_k(r)] (strict). REAL must be the points RADII were computed on,
// possibly re-encoded together with FAKE (gower_pair), which leaves distances within REAL unchanged.
double coverage(const Points& real, const CoverageRadii& radii, const Points& fake, int threads = 0);

// ---- Models on raw features (XGBoost, lambda = 0, otherwise library defaults) ----

// How the model-based metrics read a table.
struct MetricSchema {
    std::vector<std::string> columns;    // every column, in the training file's order
    std::set<std::string> categorical;   // coded categories; a multi-class label need not be listed
    std::string target;                  // class label or regression target
    bool classification = true;
};

// Mean over the classes in TRUTH ∪ PREDICTED of 2TP/(2TP + FP + FN).
double macro_f1(const std::vector<double>& truth, const std::vector<double>& predicted);
// 1 − Σ(y − ŷ)²/Σ(y − ȳ)²; with constant TRUTH, 1 for a perfect fit and 0 otherwise (scikit-learn).
double r_squared(const std::vector<double>& truth, const std::vector<double>& predicted);

// Train on TRAIN_ON, score on TEST: macro-F1 (classification) or R² (regression). Features are the
// raw non-target columns with categorical ones dummy-coded drop-first over the levels of REAL_TRAIN
// ∪ TEST (other levels code as the reference level). Classes are re-encoded from TRAIN_ON's labels;
// a test class absent from them scores 0. TSTR is tstr_xgb(fake, train, test); the ceiling is
// tstr_xgb(train, train, test). 100 rounds, depth 6, eta 0.3, hist, base_score 0.5.
double tstr_xgb(const Table& train_on, const Table& real_train, const Table& test, const MetricSchema& schema,
                int threads = 0);

struct DiscriminatorResult {
    double q = 0;    // share of the held-out fake rows classified as real (probability > 0.5)
    double f1 = 0;   // the reference's macro-F1 over the labels present: disc_f1(q)
};
// 1 if q = 0, else (1 − q)/(2 − q): 1/3 when fake and real are indistinguishable (q = ½).
double disc_f1(double q);
// An XGBoost classifier of REAL_TRAIN (1) against FAKE (0) on every column, the target included,
// categorical ones one-hot over all levels seen; applied to FAKE_HELDOUT, another generated set.
DiscriminatorResult disc_xgb(const Table& real_train, const Table& fake, const Table& fake_heldout,
                             const MetricSchema& schema, int threads = 0);

}  // namespace onestep::tabular
