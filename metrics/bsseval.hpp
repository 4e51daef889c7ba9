// BSSEval v4 as museval computes it in "images" mode (audio spec §1.2): per-frame SDR, ISR, SIR
// and SAR from 512-tap multichannel filters fitted once per track, plus the filter-free cSDR path.
//
//   onestep::BssEvalOptions options = onestep::bsseval_options(44100);   // 1 s frames, 512 taps
//   onestep::BssEvalStream stream(4, 2, length, options);   // 4 stereo sources, `length` samples
//   for (...) stream.add_correlations(references, estimates);   // pass 1: [J, C, n] blocks in order
//   stream.fit_filters();                                        // one Gram solve per track
//   for (...) stream.add_frames(references, estimates);          // pass 2: the same blocks again
//   onestep::BssEvalResult result = stream.result();             // result.targets[j][frame].sdr, ...
//   onestep::BssEvalMedians vocals = onestep::bsseval_medians(result.targets[0]);   // museval medians
//
// All arithmetic is float64. Memory does not grow with the track: pass 1 keeps the lagged
// correlations in the frequency domain, pass 2 holds one frame.
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

constexpr int64_t kBssEvalFilterLength = 512;        // museval filters_len
constexpr double kBssEvalEps = 2.220446049250313e-16;   // float64 machine epsilon on the Gram diagonal
constexpr const char* kBssEvalSilentSource = "skipped: silent source";

struct BssEvalOptions {
    int64_t win = 44100;                       // frame length and hop in samples (hop = win)
    int64_t filters_len = kBssEvalFilterLength;
    double eps = kBssEvalEps;
};

// museval's frames for SAMPLE_RATE: win = hop = round(1.0 * sr).
BssEvalOptions bsseval_options(int64_t sample_rate);

// museval's nwin with hop = win: floor(N / win) when win < N, else 1 (one frame of N samples).
int64_t bsseval_frame_count(int64_t length, int64_t win);

// One frame of one target. NaN: some source or estimate is silent in this frame; +inf: the
// denominator is exactly 0. Without the filters (cSDR path) ISR, SIR and SAR stay NaN.
struct BssEvalFrameScores {
    double sdr = NAN, isr = NAN, sir = NAN, sar = NAN;
};

struct BssEvalResult {
    bool skipped = false;           // a reference or estimate is silent over the whole track
    std::string skip_reason;        // kBssEvalSilentSource when skipped
    bool full = false;              // ISR, SIR, SAR computed (the filters were fitted)
    bool used_lstsq = false;        // the Gram solve was singular; least squares instead
    int64_t win = 0;
    int64_t frames = 0;
    std::vector<std::vector<BssEvalFrameScores>> targets;   // [source][frame]
};

// Per (track, target) medians as museval's aggregation sees them: every frame value goes through
// museval_quantize first, so infinite frames count as NaN and are left out like silent ones.
struct BssEvalMedians {
    double sdr = NAN, isr = NAN, sir = NAN, sar = NAN;
    int64_t frames_nan = 0;      // frames whose SDR is NaN after quantizing (silent or infinite)
    int64_t frames_total = 0;
};

// museval's JSON writer: +-inf -> NaN, else rounded to 5 decimals (half to even on the exact value).
double museval_quantize(double value);
// numpy.nanmedian: the median of the non-NaN values (mean of the middle two), NaN if none.
double nan_median(std::vector<double> values);
BssEvalMedians bsseval_medians(const std::vector<BssEvalFrameScores>& frames);

// The cSDR path in one pass: frame SDR = 10 log10(|y_j|^2 / |s^_j - y_j|^2), which is what the
// full decomposition gives (e_spat + e_interf + e_artif = s^_j - y_j), with museval's silent-frame
// and silent-track rules. Blocks are [J, C, n] references and estimates, consecutive from sample 0.
class FrameSnrAccumulator {
  public:
    FrameSnrAccumulator(int64_t sources, int64_t channels, int64_t length, const BssEvalOptions& options);
    void add(const at::Tensor& references, const at::Tensor& estimates);
    BssEvalResult result() const;

  private:
    int64_t sources_, channels_, length_, win_, frames_;
    int64_t position_ = 0;
    at::Tensor reference_energy_, error_energy_;   // [J, frames] float64
    at::Tensor active_;                            // [2J, frames]: samples with a nonzero channel sum
    std::vector<bool> track_active_;               // [2J] over the whole track, partial second included
};

// The full decomposition, streaming (see the example at the top). Pass 1 accumulates
// r[tau] = sum_n x[n] y[n + tau] for every (reference channel, reference or estimate channel)
// pair over segments of nfft - L + 1 samples (nfft = next_pow2(8 L)) aligned to the track start,
// summing the cross-spectra and inverting once, so the result does not depend on how the caller
// cuts its blocks. fit_filters() builds the block-Toeplitz Gram matrix, solves
// A_j = (G + eps I)^-1 D_j and B_j = (G_jj + eps I)^-1 D_j|_j (least squares if LU fails).
// Pass 2 projects each frame slice with the global filters through FFTs of next_pow2(W + L - 1).
class BssEvalStream {
  public:
    BssEvalStream(int64_t sources, int64_t channels, int64_t length, const BssEvalOptions& options);
    void add_correlations(const at::Tensor& references, const at::Tensor& estimates);
    void fit_filters();
    bool skipped() const { return skipped_; }
    void add_frames(const at::Tensor& references, const at::Tensor& estimates);
    BssEvalResult result() const;

    // The fitted filters, [J, J C, L, C] (all sources) and [J, C, L, C] (own source), for tests.
    const at::Tensor& all_source_filters() const { return filters_all_; }
    const at::Tensor& own_source_filters() const { return filters_own_; }

  private:
    void consume_segments(bool final);
    void score_frame(const at::Tensor& references, const at::Tensor& estimates);

    int64_t sources_, channels_, length_;
    BssEvalOptions options_;
    int64_t frames_, frame_length_;
    int64_t segment_, correlation_fft_;
    int64_t fed_ = 0;                     // samples given to pass 1
    at::Tensor pending_;                  // pass-1 samples not yet in a segment, [2 J C, m]
    at::Tensor cross_spectra_;            // [F, J C, 2 J C] complex128
    std::vector<bool> track_active_;      // [2J]
    bool fitted_ = false, skipped_ = false, used_lstsq_ = false;
    at::Tensor filters_all_, filters_own_;
    int64_t frame_fft_ = 0;
    at::Tensor filter_spectra_;           // [J C (input), 2 J C (A outputs, then B outputs), F]
    at::Tensor frame_pending_;            // pass-2 samples of the current frame, [2 J C, m]
    int64_t frame_fed_ = 0;
    std::vector<std::vector<BssEvalFrameScores>> scores_;
};

// Whole-array paths the streaming ones are tested against: REFERENCES and ESTIMATES are
// [J, C, N]. The correlations come from one FFT over the whole track (as museval does) and the
// projections from a time-domain convolution.
BssEvalResult bsseval_reference(const at::Tensor& references, const at::Tensor& estimates,
                                const BssEvalOptions& options);
BssEvalResult csdr_reference(const at::Tensor& references, const at::Tensor& estimates, const BssEvalOptions& options);

}  // namespace onestep
