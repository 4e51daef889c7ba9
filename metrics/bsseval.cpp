// BSSEval v4 images mode: lagged correlations, the Gram solve for the time-invariant filters,
// per-frame decomposition and museval's special values, streaming and whole-array.
#include "metrics/bsseval.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace onestep {
namespace {

using at::indexing::Slice;

int64_t next_pow2(int64_t n) {
    int64_t out = 1;
    while (out < n) out <<= 1;
    return out;
}

// museval's _safe_db: an exactly zero denominator is +inf (a zero numerator alone gives -inf).
double safe_db(double numerator, double denominator) {
    if (denominator == 0) return INFINITY;
    return 10.0 * std::log10(numerator / denominator);
}

void check_blocks(const at::Tensor& references, const at::Tensor& estimates, int64_t sources, int64_t channels,
                  const char* where) {
    TORCH_CHECK(references.dim() == 3 && references.size(0) == sources && references.size(1) == channels, where,
                ": references must be [", sources, ", ", channels, ", n], got ", references.sizes());
    TORCH_CHECK(estimates.sizes() == references.sizes(), where, ": estimates ", estimates.sizes(), " and references ",
                references.sizes(), " differ");
}

// [J] bools: does source j have a sample whose channel sum is nonzero (museval's silence test).
std::vector<bool> active_sources(const at::Tensor& signals) {
    at::Tensor active = (signals.sum(1) != 0).any(1).contiguous();
    std::vector<bool> out;
    const bool* values = active.data_ptr<bool>();
    for (int64_t j = 0; j < active.size(0); ++j) out.push_back(values[j]);
    return out;
}

// Sets TRACK_ACTIVE[j] (references) and TRACK_ACTIVE[J + j] (estimates) for the sources of the
// [J, C, n] blocks that have a sample with a nonzero channel sum.
void mark_active(const at::Tensor& references, const at::Tensor& estimates, std::vector<bool>* track_active) {
    std::vector<bool> reference = active_sources(references), estimate = active_sources(estimates);
    size_t sources = reference.size();
    for (size_t j = 0; j < sources; ++j) {
        (*track_active)[j] = (*track_active)[j] || reference[j];
        (*track_active)[sources + j] = (*track_active)[sources + j] || estimate[j];
    }
}

at::Tensor as_double(const at::Tensor& x) { return x.detach().to(at::kCPU, at::kDouble); }

bool all_active(const std::vector<bool>& flags) {
    return std::all_of(flags.begin(), flags.end(), [](bool flag) { return flag; });
}

// The Gram matrix G[(a,p),(b,q)] = r_ab[p - q] as [J C L, J C L] from R[a, b, tau] =
// sum_n y_a[n] y_b[n + tau], tau in [0, L), using r_ab[-tau] = r_ba[tau].
at::Tensor build_gram(const at::Tensor& correlations) {
    int64_t count = correlations.size(0), taps = correlations.size(2);
    // all_lags[a, b, d + L - 1] = r_ab[d] for d in (-L, L).
    at::Tensor negative = correlations.transpose(0, 1).narrow(2, 1, taps - 1).flip(2);
    at::Tensor all_lags = at::cat({negative, correlations}, 2);
    at::Tensor lag = at::arange(taps, at::kLong);
    at::Tensor index = lag.unsqueeze(1) - lag.unsqueeze(0) + (taps - 1);   // p - q + L - 1
    at::Tensor gram = at::empty({count, taps, count, taps}, correlations.options());
    for (int64_t a = 0; a < count; ++a)
        for (int64_t b = 0; b < count; ++b) gram.select(0, a).select(1, b).copy_(all_lags[a][b].index({index}));
    return gram.view({count * taps, count * taps});
}

// X = (G + eps I)^-1 RHS where GRAM_PLUS_EPS already holds eps on its diagonal; museval falls back
// to least squares on G itself (SVD driver) when LU finds the matrix singular.
at::Tensor solve_filters(const at::Tensor& gram_plus_eps, const at::Tensor& rhs, double eps, bool* used_lstsq) {
    auto [solution, info] = at::linalg_solve_ex(gram_plus_eps, rhs);
    if (info.item<int64_t>() == 0) return solution;
    *used_lstsq = true;
    at::Tensor gram = gram_plus_eps.clone();
    gram.diagonal().sub_(eps);
    return std::get<0>(at::linalg_lstsq(gram, rhs, {}, "gelsd"));
}

struct Filters {
    at::Tensor all;   // A: [J, J C, L, C]
    at::Tensor own;   // B: [J, C, L, C]
    bool used_lstsq = false;
};

// A_j = (G + eps I)^-1 D_j and B_j = (G_jj + eps I)^-1 D_j|_j from CORRELATIONS [J C, 2 J C, L]
// (columns: the J C reference channels, then the J C estimate channels).
Filters fit(const at::Tensor& correlations, int64_t sources, int64_t channels, double eps) {
    int64_t count = sources * channels, taps = correlations.size(2), block = channels * taps;
    at::Tensor gram = build_gram(correlations.narrow(1, 0, count));
    gram.diagonal().add_(eps);
    // D[(a, p), (j, c)] = sum_n y_a[n - p] e_jc[n] = r_{a, e_jc}[p]; all J right-hand sides at once.
    at::Tensor rhs = correlations.narrow(1, count, count).permute({0, 2, 1}).reshape({count * taps, count});
    Filters filters;
    at::Tensor all = solve_filters(gram, rhs, eps, &filters.used_lstsq);
    filters.all = all.view({count, taps, sources, channels}).permute({2, 0, 1, 3}).contiguous();
    std::vector<at::Tensor> own;
    for (int64_t j = 0; j < sources; ++j) {
        at::Tensor gram_jj = gram.narrow(0, j * block, block).narrow(1, j * block, block).contiguous();
        at::Tensor rhs_j = rhs.narrow(0, j * block, block).narrow(1, j * channels, channels).contiguous();
        own.push_back(solve_filters(gram_jj, rhs_j, eps, &filters.used_lstsq).view({channels, taps, channels}));
    }
    filters.own = at::stack(own);
    return filters;
}

// museval's _bss_crit in images mode for every target of one frame. All inputs [J, C, W + L - 1]:
// the zero-padded reference and estimate slices and their projections P_A (all sources), P_B (own).
std::vector<BssEvalFrameScores> frame_scores(const at::Tensor& truth, const at::Tensor& estimate,
                                             const at::Tensor& projection_all, const at::Tensor& projection_own) {
    at::Tensor e_spat = projection_own - truth;
    at::Tensor e_interf = projection_all - truth - e_spat;
    at::Tensor e_artif = estimate - truth - e_spat - e_interf;
    auto energy = [](const at::Tensor& x) { return x.pow(2).sum({1, 2}); };
    // SDR from s^ - s directly: e_spat + e_interf + e_artif equals it exactly only on paper, and
    // a perfect estimate must give a zero denominator (+inf), as the spec requires.
    at::Tensor energies = at::stack({energy(truth), energy(estimate - truth), energy(e_spat), energy(truth + e_spat),
                                     energy(e_interf), energy(truth + e_spat + e_interf), energy(e_artif)})
                              .contiguous();
    int64_t sources = truth.size(0);
    const double* value = energies.data_ptr<double>();
    auto at_row = [&](int row, int64_t j) { return value[row * sources + j]; };
    std::vector<BssEvalFrameScores> out(sources);
    for (int64_t j = 0; j < sources; ++j) {
        out[j].sdr = safe_db(at_row(0, j), at_row(1, j));
        out[j].isr = safe_db(at_row(0, j), at_row(2, j));
        out[j].sir = safe_db(at_row(3, j), at_row(4, j));
        out[j].sar = safe_db(at_row(5, j), at_row(6, j));
    }
    return out;
}

std::vector<BssEvalFrameScores> silent_frame(int64_t sources) { return std::vector<BssEvalFrameScores>(sources); }

// Frame slices [J, C, W] -> is any reference or estimate silent (channel sum 0 at every sample).
bool any_silent(const at::Tensor& references, const at::Tensor& estimates) {
    return !all_active(active_sources(references)) || !all_active(active_sources(estimates));
}

BssEvalResult skipped_result(const BssEvalOptions& options, int64_t frames, bool full) {
    BssEvalResult result;
    result.skipped = true;
    result.skip_reason = kBssEvalSilentSource;
    result.full = full;
    result.win = options.win;
    result.frames = frames;
    return result;
}

void check_options(const BssEvalOptions& options) {
    TORCH_CHECK(options.win > 0, "BSSEval window must be positive, got ", options.win);
    TORCH_CHECK(options.filters_len > 1, "BSSEval filters_len must be at least 2, got ", options.filters_len);
}

}  // namespace

BssEvalOptions bsseval_options(int64_t sample_rate) {
    BssEvalOptions options;
    options.win = std::max<int64_t>(1, std::llround(1.0 * static_cast<double>(sample_rate)));
    return options;
}

int64_t bsseval_frame_count(int64_t length, int64_t win) { return win < length ? length / win : 1; }

double museval_quantize(double value) {
    if (std::isinf(value)) return NAN;
    if (std::isnan(value)) return value;
    // Decimal(value).quantize(Decimal('.00001')) rounds the exact binary value, as printf does.
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%.5f", value);
    return std::strtod(buffer, nullptr);
}

double nan_median(std::vector<double> values) {
    values.erase(std::remove_if(values.begin(), values.end(), [](double value) { return std::isnan(value); }),
                 values.end());
    if (values.empty()) return NAN;
    std::sort(values.begin(), values.end());
    size_t middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

BssEvalMedians bsseval_medians(const std::vector<BssEvalFrameScores>& frames) {
    std::vector<double> sdr, isr, sir, sar;
    BssEvalMedians out;
    for (const auto& frame : frames) {
        sdr.push_back(museval_quantize(frame.sdr));
        isr.push_back(museval_quantize(frame.isr));
        sir.push_back(museval_quantize(frame.sir));
        sar.push_back(museval_quantize(frame.sar));
        if (std::isnan(sdr.back())) ++out.frames_nan;
    }
    out.frames_total = static_cast<int64_t>(frames.size());
    out.sdr = nan_median(sdr);
    out.isr = nan_median(isr);
    out.sir = nan_median(sir);
    out.sar = nan_median(sar);
    return out;
}

// ---- cSDR path ----------------------------------------------------------------------------

FrameSnrAccumulator::FrameSnrAccumulator(int64_t sources, int64_t channels, int64_t length,
                                         const BssEvalOptions& options)
    : sources_(sources),
      channels_(channels),
      length_(length),
      win_(options.win),
      frames_(bsseval_frame_count(length, options.win)),
      track_active_(2 * sources, false) {
    check_options(options);
    TORCH_CHECK(sources > 0 && channels > 0 && length >= 0, "FrameSnrAccumulator: bad shape");
    auto options64 = at::TensorOptions().dtype(at::kDouble);
    reference_energy_ = at::zeros({sources, frames_}, options64);
    error_energy_ = at::zeros({sources, frames_}, options64);
    active_ = at::zeros({2 * sources, frames_}, options64);
}

void FrameSnrAccumulator::add(const at::Tensor& references, const at::Tensor& estimates) {
    check_blocks(references, estimates, sources_, channels_, "FrameSnrAccumulator::add");
    int64_t n = references.size(2);
    TORCH_CHECK(position_ + n <= length_, "FrameSnrAccumulator::add: more than ", length_, " samples");
    if (n == 0) return;
    at::Tensor reference = as_double(references), estimate = as_double(estimates);
    mark_active(reference, estimate, &track_active_);
    // Samples past the last whole frame only count for the whole-track silence test.
    int64_t scored = std::clamp<int64_t>(frames_ * win_ - position_, 0, n);
    if (scored > 0) {
        at::Tensor s = reference.narrow(2, 0, scored), e = estimate.narrow(2, 0, scored);
        at::Tensor frame = at::div(at::arange(position_, position_ + scored, at::kLong), win_, "floor");
        reference_energy_.index_add_(1, frame, s.pow(2).sum(1));
        error_energy_.index_add_(1, frame, (e - s).pow(2).sum(1));
        at::Tensor nonzero = at::cat({s.sum(1) != 0, e.sum(1) != 0}, 0).to(at::kDouble);
        active_.index_add_(1, frame, nonzero);
    }
    position_ += n;
}

BssEvalResult FrameSnrAccumulator::result() const {
    TORCH_CHECK(position_ == length_, "FrameSnrAccumulator: ", position_, " of ", length_, " samples added");
    BssEvalResult result;
    if (!all_active(track_active_)) return skipped_result(BssEvalOptions{win_}, frames_, false);
    result.win = win_;
    result.frames = frames_;
    result.targets.assign(sources_, std::vector<BssEvalFrameScores>(frames_));
    at::Tensor reference = reference_energy_.contiguous(), error = error_energy_.contiguous();
    at::Tensor silent = (active_ == 0).any(0).contiguous();
    for (int64_t t = 0; t < frames_; ++t) {
        if (silent[t].item<bool>()) continue;   // NaN for every target
        for (int64_t j = 0; j < sources_; ++j)
            result.targets[j][t].sdr = safe_db(reference[j][t].item<double>(), error[j][t].item<double>());
    }
    return result;
}

// ---- full decomposition, streaming ------------------------------------------------------------

BssEvalStream::BssEvalStream(int64_t sources, int64_t channels, int64_t length, const BssEvalOptions& options)
    : sources_(sources),
      channels_(channels),
      length_(length),
      options_(options),
      frames_(bsseval_frame_count(length, options.win)),
      frame_length_(std::min(options.win, length)),
      track_active_(2 * sources, false) {
    check_options(options);
    TORCH_CHECK(sources > 0 && channels > 0 && length >= 0, "BssEvalStream: bad shape");
    // A short FFT keeps the summed cross-spectra small ([2049, JC, 2JC] for L = 512); each
    // segment of S samples needs L - 1 look-ahead samples, and S + L - 1 = nfft avoids aliasing.
    correlation_fft_ = next_pow2(8 * options.filters_len);
    segment_ = correlation_fft_ - options.filters_len + 1;
    int64_t count = sources * channels;
    auto options64 = at::TensorOptions().dtype(at::kDouble);
    pending_ = at::zeros({2 * count, 0}, options64);
    frame_pending_ = at::zeros({2 * count, 0}, options64);
    cross_spectra_ = at::zeros({correlation_fft_ / 2 + 1, count, 2 * count}, options64.dtype(at::kComplexDouble));
}

void BssEvalStream::add_correlations(const at::Tensor& references, const at::Tensor& estimates) {
    check_blocks(references, estimates, sources_, channels_, "BssEvalStream::add_correlations");
    TORCH_CHECK(!fitted_, "BssEvalStream: add_correlations after fit_filters");
    int64_t n = references.size(2);
    TORCH_CHECK(fed_ + n <= length_, "BssEvalStream::add_correlations: more than ", length_, " samples");
    if (n == 0) return;
    at::Tensor reference = as_double(references), estimate = as_double(estimates);
    mark_active(reference, estimate, &track_active_);
    int64_t count = sources_ * channels_;
    at::Tensor block = at::cat({reference.reshape({count, n}), estimate.reshape({count, n})}, 0);
    pending_ = at::cat({pending_, block}, 1);
    fed_ += n;
    consume_segments(false);
}

void BssEvalStream::consume_segments(bool final) {
    int64_t count = sources_ * channels_, lookahead = options_.filters_len - 1;
    at::Tensor data = pending_;
    if (final) {
        // Zeros past the end: every remaining sample starts a lag sum, with zero look-ahead.
        int64_t segments = (data.size(1) + segment_ - 1) / segment_;
        if (segments == 0) return;
        data = at::constant_pad_nd(data, {0, segments * segment_ + lookahead - data.size(1)});
    }
    int64_t available = data.size(1);
    int64_t segments = available >= lookahead ? (available - lookahead) / segment_ : 0;
    if (segments == 0) return;
    // windows[:, k] = samples [k S, k S + S + L - 1): segment k and its look-ahead.
    at::Tensor windows = data.narrow(1, 0, segments * segment_ + lookahead).unfold(1, segment_ + lookahead, segment_);
    at::Tensor spectra = at::fft_rfft(windows, correlation_fft_, -1);   // [2JC, K, F]
    at::Tensor heads = at::fft_rfft(windows.narrow(0, 0, count).narrow(2, 0, segment_), correlation_fft_, -1);
    // sum_k conj(X_a) Z_b per bin: its inverse FFT is sum_n x_a[n] z_b[n + tau], no wrap for tau < L.
    cross_spectra_ += at::matmul(at::conj_physical(heads).permute({2, 0, 1}), spectra.permute({2, 1, 0}));
    int64_t used = segments * segment_;
    pending_ = final ? data.narrow(1, 0, 0).clone() : data.narrow(1, used, available - used).clone();
}

void BssEvalStream::fit_filters() {
    TORCH_CHECK(!fitted_, "BssEvalStream::fit_filters called twice");
    TORCH_CHECK(fed_ == length_, "BssEvalStream: ", fed_, " of ", length_, " samples given to pass 1");
    fitted_ = true;
    if (!all_active(track_active_)) {
        skipped_ = true;
        return;
    }
    consume_segments(true);
    int64_t taps = options_.filters_len;
    at::Tensor correlations = at::fft_irfft(cross_spectra_, correlation_fft_, 0).narrow(0, 0, taps).permute({1, 2, 0});
    cross_spectra_ = at::Tensor();
    Filters filters = fit(correlations.contiguous(), sources_, channels_, options_.eps);
    filters_all_ = filters.all;
    filters_own_ = filters.own;
    used_lstsq_ = filters.used_lstsq;

    // Filter spectra for pass 2: output rows (j, c) of P_A, then of P_B, per input channel a.
    int64_t count = sources_ * channels_;
    frame_fft_ = next_pow2(frame_length_ + taps - 1);
    at::Tensor all = filters_all_.permute({1, 0, 3, 2}).reshape({count, count, taps});   // [a, (j,c), p]
    at::Tensor own = at::zeros({count, count, taps}, all.options());
    for (int64_t j = 0; j < sources_; ++j)
        own.narrow(0, j * channels_, channels_)
            .narrow(1, j * channels_, channels_)
            .copy_(filters_own_[j].permute({0, 2, 1}));   // [c_in, c_out, p]
    filter_spectra_ = at::fft_rfft(at::cat({all, own}, 1), frame_fft_, -1).contiguous();
    scores_.reserve(frames_);
}

void BssEvalStream::add_frames(const at::Tensor& references, const at::Tensor& estimates) {
    check_blocks(references, estimates, sources_, channels_, "BssEvalStream::add_frames");
    TORCH_CHECK(fitted_, "BssEvalStream: add_frames before fit_filters");
    int64_t n = references.size(2);
    TORCH_CHECK(frame_fed_ + n <= length_, "BssEvalStream::add_frames: more than ", length_, " samples");
    frame_fed_ += n;
    if (skipped_ || n == 0 || static_cast<int64_t>(scores_.size()) == frames_) return;
    int64_t count = sources_ * channels_;
    at::Tensor block = at::cat({as_double(references).reshape({count, n}), as_double(estimates).reshape({count, n})}, 0);
    frame_pending_ = at::cat({frame_pending_, block}, 1);
    while (frame_pending_.size(1) >= frame_length_ && static_cast<int64_t>(scores_.size()) < frames_) {
        at::Tensor frame = frame_pending_.narrow(1, 0, frame_length_);
        score_frame(frame.narrow(0, 0, count).reshape({sources_, channels_, frame_length_}),
                    frame.narrow(0, count, count).reshape({sources_, channels_, frame_length_}));
        frame_pending_ = frame_pending_.narrow(1, frame_length_, frame_pending_.size(1) - frame_length_);
    }
    // Past the last whole frame nothing is scored; keep no samples around.
    if (static_cast<int64_t>(scores_.size()) == frames_) frame_pending_ = frame_pending_.narrow(1, 0, 0);
    frame_pending_ = frame_pending_.clone();
}

void BssEvalStream::score_frame(const at::Tensor& references, const at::Tensor& estimates) {
    if (any_silent(references, estimates)) {
        scores_.push_back(silent_frame(sources_));
        return;
    }
    int64_t count = sources_ * channels_, taps = options_.filters_len, padded = frame_length_ + taps - 1;
    at::Tensor spectra = at::fft_rfft(references.reshape({count, frame_length_}), frame_fft_, -1);   // [a, F]
    at::Tensor projected = at::zeros({2 * count, spectra.size(1)}, spectra.options());
    for (int64_t a = 0; a < count; ++a) projected.addcmul_(filter_spectra_[a], spectra[a].unsqueeze(0));
    at::Tensor projections = at::fft_irfft(projected, frame_fft_, -1).narrow(1, 0, padded);
    at::Tensor projection_all = projections.narrow(0, 0, count).reshape({sources_, channels_, padded});
    at::Tensor projection_own = projections.narrow(0, count, count).reshape({sources_, channels_, padded});
    at::Tensor truth = at::constant_pad_nd(references, {0, taps - 1});
    at::Tensor estimate = at::constant_pad_nd(estimates, {0, taps - 1});
    scores_.push_back(frame_scores(truth, estimate, projection_all, projection_own));
}

BssEvalResult BssEvalStream::result() const {
    TORCH_CHECK(fitted_, "BssEvalStream::result before fit_filters");
    if (skipped_) return skipped_result(options_, frames_, true);
    TORCH_CHECK(static_cast<int64_t>(scores_.size()) == frames_, "BssEvalStream: ", scores_.size(), " of ", frames_,
                " frames scored; give pass 2 the whole track");
    BssEvalResult result;
    result.full = true;
    result.used_lstsq = used_lstsq_;
    result.win = options_.win;
    result.frames = frames_;
    result.targets.assign(sources_, std::vector<BssEvalFrameScores>(frames_));
    for (int64_t t = 0; t < frames_; ++t)
        for (int64_t j = 0; j < sources_; ++j) result.targets[j][t] = scores_[t][j];
    return result;
}

// ---- whole-array paths ---------------------------------------------------------------------

namespace {

// Checks [J, C, N] inputs; the result is skipped for a silent source, else all frames NaN.
BssEvalResult whole_array_result(const at::Tensor& references, const at::Tensor& estimates,
                                 const BssEvalOptions& options, bool full, const char* where) {
    check_options(options);
    TORCH_CHECK(references.dim() == 3, where, ": references must be [J, C, N]");
    check_blocks(references, estimates, references.size(0), references.size(1), where);
    int64_t frames = bsseval_frame_count(references.size(2), options.win);
    if (references.size(2) == 0 || any_silent(references, estimates)) return skipped_result(options, frames, full);
    BssEvalResult result;
    result.full = full;
    result.win = options.win;
    result.frames = frames;
    result.targets.assign(references.size(0), std::vector<BssEvalFrameScores>(frames));
    return result;
}

}  // namespace

BssEvalResult bsseval_reference(const at::Tensor& references, const at::Tensor& estimates,
                                const BssEvalOptions& options) {
    BssEvalResult result = whole_array_result(references, estimates, options, true, "bsseval_reference");
    if (result.skipped) return result;
    int64_t sources = references.size(0), channels = references.size(1), length = references.size(2);
    at::Tensor reference = references.to(at::kDouble), estimate = estimates.to(at::kDouble);

    // Correlations from one FFT over the whole track, like museval's _compute_reference_correlations.
    int64_t count = sources * channels, taps = options.filters_len;
    int64_t fft = next_pow2(length + taps - 1);
    at::Tensor reference_spectra = at::fft_rfft(reference.reshape({count, length}), fft, -1);
    at::Tensor all_spectra = at::cat({reference_spectra, at::fft_rfft(estimate.reshape({count, length}), fft, -1)}, 0);
    std::vector<at::Tensor> rows;
    for (int64_t a = 0; a < count; ++a) {
        at::Tensor cross = at::conj_physical(reference_spectra[a]).unsqueeze(0) * all_spectra;
        rows.push_back(at::fft_irfft(cross, fft, -1).narrow(1, 0, taps));
    }
    Filters filters = fit(at::stack(rows), sources, channels, options.eps);

    // Projections by direct convolution: conv1d correlates, so the taps are flipped.
    at::Tensor weight_all = filters.all.permute({0, 3, 1, 2}).reshape({count, count, taps}).flip(2);
    at::Tensor weight_own = filters.own.permute({0, 3, 1, 2}).reshape({count, channels, taps}).flip(2);
    int64_t frame_length = std::min(options.win, length);
    result.used_lstsq = filters.used_lstsq;
    for (int64_t t = 0; t < result.frames; ++t) {
        at::Tensor ref_slice = reference.narrow(2, t * options.win, frame_length);
        at::Tensor est_slice = estimate.narrow(2, t * options.win, frame_length);
        std::vector<BssEvalFrameScores> scores = silent_frame(sources);
        if (!any_silent(ref_slice, est_slice)) {
            at::Tensor input = at::constant_pad_nd(ref_slice.reshape({1, count, frame_length}), {taps - 1, taps - 1});
            int64_t padded = frame_length + taps - 1;
            at::Tensor projection_all = at::conv1d(input, weight_all).reshape({sources, channels, padded});
            // One group per source: B_j maps source j's channels to estimate j's.
            at::Tensor projection_own = at::conv1d(input, weight_own, {}, at::IntArrayRef{1}, at::IntArrayRef{0},
                                                   at::IntArrayRef{1}, sources)
                                            .reshape({sources, channels, padded});
            scores = frame_scores(at::constant_pad_nd(ref_slice, {0, taps - 1}),
                                  at::constant_pad_nd(est_slice, {0, taps - 1}), projection_all, projection_own);
        }
        for (int64_t j = 0; j < sources; ++j) result.targets[j][t] = scores[j];
    }
    return result;
}

BssEvalResult csdr_reference(const at::Tensor& references, const at::Tensor& estimates, const BssEvalOptions& options) {
    BssEvalResult result = whole_array_result(references, estimates, options, false, "csdr_reference");
    if (result.skipped) return result;
    int64_t sources = references.size(0), length = references.size(2);
    at::Tensor reference = references.to(at::kDouble), estimate = estimates.to(at::kDouble);
    int64_t frame_length = std::min(options.win, length);
    for (int64_t t = 0; t < result.frames; ++t) {
        at::Tensor s = reference.narrow(2, t * options.win, frame_length);
        at::Tensor e = estimate.narrow(2, t * options.win, frame_length);
        if (any_silent(s, e)) continue;
        for (int64_t j = 0; j < sources; ++j)
            result.targets[j][t].sdr = safe_db(s[j].pow(2).sum().item<double>(), (e[j] - s[j]).pow(2).sum().item<double>());
    }
    return result;
}

}  // namespace onestep
