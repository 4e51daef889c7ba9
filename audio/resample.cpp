// libsamplerate behind the Resampler interface: interleaved float buffers in and out, the
// stream's total length kept at round(frames * to / from).
#include "audio/resample.hpp"

#include <samplerate.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"

namespace onestep {
namespace {

int converter_type(ResampleQuality quality) {
    switch (quality) {
        case ResampleQuality::kBestSinc: return SRC_SINC_BEST_QUALITY;
        case ResampleQuality::kMediumSinc: return SRC_SINC_MEDIUM_QUALITY;
        case ResampleQuality::kFastestSinc: return SRC_SINC_FASTEST;
        case ResampleQuality::kLinear: return SRC_LINEAR;
    }
    TORCH_CHECK(false, "unknown ResampleQuality");
}

}  // namespace

ResampleQuality resample_quality_from_name(const std::string& name) {
    if (name == "best") return ResampleQuality::kBestSinc;
    if (name == "medium") return ResampleQuality::kMediumSinc;
    if (name == "fastest") return ResampleQuality::kFastestSinc;
    if (name == "linear") return ResampleQuality::kLinear;
    throw UserError("unknown resampling quality '" + name + "' (accepted: best, medium, fastest, linear)");
}

struct Resampler::State {
    SRC_STATE* converter = nullptr;
    ~State() {
        if (converter) src_delete(converter);
    }
};

Resampler::Resampler(int64_t from_rate, int64_t to_rate, int64_t channels, ResampleQuality quality)
    : from_rate_(from_rate), to_rate_(to_rate), channels_(channels), state_(std::make_unique<State>()) {
    if (from_rate <= 0 || to_rate <= 0)
        throw UserError("sample rates must be positive (got " + std::to_string(from_rate) + " and " +
                        std::to_string(to_rate) + ")");
    TORCH_CHECK(channels > 0, "Resampler needs at least one channel");
    double ratio = static_cast<double>(to_rate) / from_rate;
    if (!src_is_valid_ratio(ratio))
        throw UserError("libsamplerate cannot convert " + std::to_string(from_rate) + " Hz to " +
                        std::to_string(to_rate) + " Hz (ratio outside 1/256..256)");
    int error = 0;
    state_->converter = src_new(converter_type(quality), static_cast<int>(channels), &error);
    if (!state_->converter) throw std::runtime_error(std::string("libsamplerate: ") + src_strerror(error));
}

Resampler::~Resampler() = default;

int64_t Resampler::output_frames(int64_t frames) const {
    return static_cast<int64_t>(std::llround(static_cast<double>(frames) * to_rate_ / from_rate_));
}

at::Tensor Resampler::process(const at::Tensor& block) {
    TORCH_CHECK(block.dim() == 2 && block.size(0) == channels_, "Resampler::process expects [", channels_,
                ", n], got ", block.sizes());
    frames_in_ += block.size(1);
    return run(block, false);
}

at::Tensor Resampler::finish() {
    at::Tensor tail = run(torch::zeros({channels_, 0}), true);
    int64_t produced_before = frames_out_ - tail.size(1);
    // The converter may stop a frame short of or past the exact length; the tail is cut or
    // zero-extended so that the stream's total is round(frames_in * ratio).
    int64_t wanted = std::max<int64_t>(0, output_frames(frames_in_) - produced_before);
    if (tail.size(1) > wanted) tail = tail.slice(1, 0, wanted).contiguous();
    if (tail.size(1) < wanted) tail = torch::cat({tail, torch::zeros({channels_, wanted - tail.size(1)})}, 1);
    frames_out_ = produced_before + tail.size(1);
    return tail;
}

at::Tensor Resampler::run(const at::Tensor& block, bool end_of_input) {
    at::Tensor interleaved = block.to(torch::kCPU, torch::kFloat).t().contiguous();   // [n, channels]
    const float* input = interleaved.data_ptr<float>();
    int64_t input_left = block.size(1);
    double ratio = static_cast<double>(to_rate_) / from_rate_;
    std::vector<float> output;
    std::vector<float> buffer(static_cast<size_t>((std::ceil(input_left * ratio) + 256) * channels_));
    while (true) {
        SRC_DATA data{};
        data.data_in = input;
        data.input_frames = static_cast<long>(input_left);
        data.data_out = buffer.data();
        data.output_frames = static_cast<long>(buffer.size() / channels_);
        data.end_of_input = end_of_input ? 1 : 0;
        data.src_ratio = ratio;
        int error = src_process(state_->converter, &data);
        if (error) throw std::runtime_error(std::string("libsamplerate: ") + src_strerror(error));
        output.insert(output.end(), buffer.begin(), buffer.begin() + data.output_frames_gen * channels_);
        input += data.input_frames_used * channels_;
        input_left -= data.input_frames_used;
        if (data.output_frames_gen == 0 && (input_left == 0 || data.input_frames_used == 0)) break;
    }
    int64_t frames = static_cast<int64_t>(output.size()) / channels_;
    frames_out_ += frames;
    if (frames == 0) return torch::zeros({channels_, 0});
    return torch::from_blob(output.data(), {frames, channels_}, torch::kFloat).t().contiguous();
}

at::Tensor resample(const at::Tensor& signal, int64_t from_rate, int64_t to_rate, ResampleQuality quality) {
    TORCH_CHECK(signal.dim() == 2, "resample expects [channels, frames], got ", signal.sizes());
    if (from_rate == to_rate) return signal.to(torch::kCPU, torch::kFloat).clone();
    Resampler resampler(from_rate, to_rate, signal.size(0), quality);
    at::Tensor head = resampler.process(signal);
    at::Tensor tail = resampler.finish();
    return torch::cat({head, tail}, 1);
}

}  // namespace onestep
