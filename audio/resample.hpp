// Sample-rate conversion through libsamplerate, block by block, so a long file never has to be
// in memory; a whole-array helper sits beside it.
//
//   onestep::Resampler resampler(44100, 22050, 2);            // best sinc by default
//   at::Tensor out = resampler.process(block);               // [2, n] -> [2, ~n/2]
//   at::Tensor tail = resampler.finish();                    // what the filter still holds
//   at::Tensor whole = onestep::resample(signal, 44100, 22050);
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

namespace onestep {

// libsamplerate's converters, best to fastest.
enum class ResampleQuality { kBestSinc, kMediumSinc, kFastestSinc, kLinear };

// "best", "medium", "fastest", "linear"; anything else is a UserError listing them.
ResampleQuality resample_quality_from_name(const std::string& name);

class Resampler {
  public:
    Resampler(int64_t from_rate, int64_t to_rate, int64_t channels, ResampleQuality quality = ResampleQuality::kBestSinc);
    ~Resampler();
    Resampler(const Resampler&) = delete;
    Resampler& operator=(const Resampler&) = delete;

    // BLOCK: [channels, n], any floating dtype. Returns float32 [channels, m]; m follows the
    // ratio over the whole stream, not per block (the converter keeps a little history).
    at::Tensor process(const at::Tensor& block);
    // The last samples after the end of the input; call once.
    at::Tensor finish();

    int64_t from_rate() const { return from_rate_; }
    int64_t to_rate() const { return to_rate_; }
    // Frames a stream of FRAMES input frames becomes: round(FRAMES * to / from).
    int64_t output_frames(int64_t frames) const;

  private:
    at::Tensor run(const at::Tensor& block, bool end_of_input);
    struct State;
    int64_t from_rate_, to_rate_, channels_;
    int64_t frames_in_ = 0, frames_out_ = 0;
    std::unique_ptr<State> state_;
};

// SIGNAL [channels, frames] at FROM_RATE as float32 at TO_RATE, exactly round(frames * to / from)
// frames long (the converter's delay is compensated, so a sine keeps its phase). Equal rates
// return a float32 copy.
at::Tensor resample(const at::Tensor& signal, int64_t from_rate, int64_t to_rate,
                    ResampleQuality quality = ResampleQuality::kBestSinc);

}  // namespace onestep
