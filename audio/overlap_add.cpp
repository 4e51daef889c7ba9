// Overlap-add over a virtual padded track: chunk inputs are gathered from the file by index
// (reflection at both ends), outputs accumulate in a window that slides as samples become final.
#include "audio/overlap_add.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "audio/audio_io.hpp"
#include "core/error.hpp"

namespace onestep {
namespace {

// Random access to the input: frames [start, start + n) as float32 [C, n].
struct Source {
    int64_t frames = 0;
    int64_t channels = 0;
    std::function<at::Tensor(int64_t, int64_t)> read_at;
};

// Input of the chunk that starts at padded position START: the track reflected by BORDER at
// both ends when it is long enough (else zero-padded), zeros past the padded end.
at::Tensor chunk_input(const Source& source, int64_t start, int64_t length, int64_t border) {
    const int64_t frames = source.frames, padded = frames + 2 * border;
    const bool reflect = frames > 2 * border;
    at::Tensor position = torch::arange(start, start + length, torch::kLong);
    at::Tensor index = position - border;   // file frame, for the middle
    if (reflect) {
        index = torch::where(position < border, border - position, index);
        index = torch::where(position >= border + frames, 2 * (frames - 1) - (position - border), index);
    }
    at::Tensor valid = (index >= 0) & (index < frames) & (position < padded);
    at::Tensor chunk = torch::zeros({source.channels, length});
    if (!valid.any().item<bool>()) return chunk;
    at::Tensor used = index.masked_select(valid);
    int64_t low = used.min().item<int64_t>(), high = used.max().item<int64_t>() + 1;
    at::Tensor block = source.read_at(low, high - low);
    chunk.index_put_({torch::indexing::Slice(), valid}, block.index_select(1, used - low));
    return chunk;
}

void run_overlap_add(const Source& source, const SeparatorFn& separator, int64_t stems,
                     const OverlapAddSettings& settings, const StemSink& sink) {
    settings.validate();
    const int64_t length = settings.chunk, step = settings.step(), border = settings.border();
    const int64_t frames = source.frames, padded = frames + 2 * border;
    if (frames == 0) return;
    const int64_t chunks = padded <= length ? 1 : (padded - length + step - 1) / step + 1;

    at::Tensor numerator = torch::zeros({stems, source.channels, 0});
    at::Tensor weight = torch::zeros({0});
    int64_t accumulated_from = 0;   // padded position of numerator[..., 0]
    int64_t emitted = 0;            // output frames handed to the sink
    for (int64_t first = 0; first < chunks; first += settings.batch) {
        int64_t last = std::min(chunks, first + settings.batch);
        std::vector<at::Tensor> inputs;
        for (int64_t k = first; k < last; ++k) inputs.push_back(chunk_input(source, k * step, length, border));
        at::Tensor outputs = separator(torch::stack(inputs));
        TORCH_CHECK(outputs.dim() == 4 && outputs.size(0) == last - first && outputs.size(1) == stems &&
                        outputs.size(2) == source.channels && outputs.size(3) == length,
                    "separator returned ", outputs.sizes(), " for ", last - first, " chunks of ", length, " frames");
        outputs = outputs.to(torch::kCPU, torch::kFloat);
        int64_t needed = (last - 1) * step + length - accumulated_from;
        if (needed > weight.size(0)) {
            int64_t extra = needed - weight.size(0);
            numerator = torch::cat({numerator, torch::zeros({stems, source.channels, extra})}, 2);
            weight = torch::cat({weight, torch::zeros({extra})});
        }
        for (int64_t k = first; k < last; ++k) {
            at::Tensor window = overlap_window(settings, k == 0, k == chunks - 1);
            int64_t offset = k * step - accumulated_from;
            numerator.slice(2, offset, offset + length).add_(outputs[k - first] * window);
            weight.slice(0, offset, offset + length).add_(window);
        }
        // Everything before the next chunk's start is final.
        int64_t frontier = last < chunks ? last * step : padded;
        int64_t count = frontier - accumulated_from;
        at::Tensor final_weight = weight.slice(0, 0, count);
        at::Tensor final_values = numerator.slice(2, 0, count) / final_weight.clamp_min(1e-20);
        // Keep the track's own frames [border, border + frames) of the padded axis.
        int64_t keep_from = std::max<int64_t>(border, accumulated_from) - accumulated_from;
        int64_t keep_to = std::min<int64_t>(border + frames, frontier) - accumulated_from;
        if (keep_to > keep_from) {
            sink(final_values.slice(2, keep_from, keep_to).contiguous());
            emitted += keep_to - keep_from;
        }
        numerator = numerator.slice(2, count).contiguous();
        weight = weight.slice(0, count).contiguous();
        accumulated_from = frontier;
    }
    TORCH_CHECK(emitted == frames, "overlap-add emitted ", emitted, " of ", frames, " frames");
}

}  // namespace

OverlapWindow overlap_window_from_name(const std::string& name) {
    if (name == "triangle") return OverlapWindow::kTriangle;
    if (name == "fade") return OverlapWindow::kFade;
    throw UserError("unknown window '" + name + "' (accepted: triangle, fade)");
}

int64_t OverlapAddSettings::step() const {
    return std::max<int64_t>(1, static_cast<int64_t>(std::llround(chunk * (1.0 - overlap))));
}

void OverlapAddSettings::validate() const {
    if (chunk < 2) throw UserError("--chunk must be at least 2 frames (got " + std::to_string(chunk) + ")");
    if (!(overlap >= 0 && overlap <= 0.9)) throw UserError("--overlap must be in [0, 0.9] (got " + std::to_string(overlap) + ")");
    if (window == OverlapWindow::kFade && overlap < 0.1)
        throw UserError("--window fade needs --overlap of at least 0.1 (got " + std::to_string(overlap) + ")");
    if (batch < 1) throw UserError("--batch must be at least 1 (got " + std::to_string(batch) + ")");
    if (!(transition_power > 0)) throw UserError("the window's transition power must be positive");
}

at::Tensor overlap_window(const OverlapAddSettings& settings, bool first, bool last) {
    const int64_t length = settings.chunk;
    if (settings.window == OverlapWindow::kTriangle) {
        // Demucs: i + 1 rising to the middle, then length - i; never zero.
        at::Tensor i = torch::arange(length, torch::kFloat);
        at::Tensor window = torch::where(i < length / 2, i + 1, length - i);
        return (window / window.max()).pow(settings.transition_power);
    }
    // MSST: ones with linear fades of F frames, none at the track's ends.
    int64_t fade = std::min(length / 10, length - settings.step());
    at::Tensor window = torch::ones({length});
    if (fade >= 2) {
        at::Tensor ramp = torch::arange(fade, torch::kFloat) / static_cast<float>(fade - 1);
        if (!first) window.slice(0, 0, fade).copy_(ramp);
        if (!last) window.slice(0, length - fade).copy_(ramp.flip({0}));
    }
    return window;
}

void separate_stream(AudioReader& reader, const SeparatorFn& separator, int64_t stems,
                     const OverlapAddSettings& settings, const StemSink& sink) {
    Source source;
    source.frames = reader.info().frames;
    source.channels = reader.info().channels;
    source.read_at = [&reader](int64_t start, int64_t count) {
        reader.seek(start);
        return reader.read_exactly(count);
    };
    run_overlap_add(source, separator, stems, settings, sink);
}

at::Tensor separate_tensor(const at::Tensor& signal, const SeparatorFn& separator, int64_t stems,
                           const OverlapAddSettings& settings) {
    TORCH_CHECK(signal.dim() == 2, "separate_tensor expects [C, T], got ", signal.sizes());
    at::Tensor input = signal.to(torch::kCPU, torch::kFloat).contiguous();
    Source source;
    source.frames = input.size(1);
    source.channels = input.size(0);
    source.read_at = [&input](int64_t start, int64_t count) { return input.slice(1, start, start + count); };
    std::vector<at::Tensor> parts;
    run_overlap_add(source, separator, stems, settings, [&parts](const at::Tensor& block) { parts.push_back(block); });
    return parts.empty() ? torch::zeros({stems, input.size(0), 0}) : torch::cat(parts, 2);
}

SeparatorFn with_tta(SeparatorFn separator, bool channel_swap, bool polarity) {
    if (!channel_swap && !polarity) return separator;
    return [separator, channel_swap, polarity](const at::Tensor& chunks) {
        at::Tensor total = separator(chunks);
        int64_t passes = 1;
        if (channel_swap && chunks.size(1) == 2) {
            total = total + separator(chunks.flip({1})).flip({2});
            ++passes;
        }
        if (polarity) {
            total = total - separator(-chunks);
            ++passes;
        }
        return total / static_cast<double>(passes);
    };
}

SeparatorFn ensemble(std::vector<SeparatorFn> members, std::vector<std::vector<double>> weights, int64_t stems) {
    if (members.empty()) throw UserError("an ensemble needs at least one model");
    if (weights.empty()) weights.assign(members.size(), std::vector<double>(stems, 1.0));
    if (weights.size() != members.size())
        throw UserError("--weights gives " + std::to_string(weights.size()) + " rows for " + std::to_string(members.size()) +
                        " models");
    at::Tensor table = torch::zeros({static_cast<int64_t>(members.size()), stems});
    for (size_t m = 0; m < weights.size(); ++m) {
        if (static_cast<int64_t>(weights[m].size()) != stems)
            throw UserError("--weights row " + std::to_string(m + 1) + " has " + std::to_string(weights[m].size()) +
                            " values for " + std::to_string(stems) + " stems");
        for (int64_t k = 0; k < stems; ++k) {
            if (weights[m][k] < 0) throw UserError("--weights must not be negative");
            table[m][k] = weights[m][k];
        }
    }
    if ((table.sum(0) <= 0).any().item<bool>()) throw UserError("--weights gives some stem no weight in any model");
    at::Tensor normalised = table / table.sum(0, /*keepdim=*/true);
    return [members, normalised](const at::Tensor& chunks) {
        at::Tensor total;
        for (size_t m = 0; m < members.size(); ++m) {
            at::Tensor weighted = members[m](chunks) * normalised[m].view({1, -1, 1, 1});
            total = m == 0 ? weighted : total + weighted;
        }
        return total;
    };
}

SeparatorFn with_residual_stem(SeparatorFn separator, int64_t residual) {
    return [separator, residual](const at::Tensor& chunks) {
        at::Tensor stems = separator(chunks);
        TORCH_CHECK(residual >= 0 && residual < stems.size(1), "residual stem index out of range");
        at::Tensor others = stems.sum(1) - stems.select(1, residual);
        stems.select(1, residual).copy_(chunks - others);
        return stems;
    };
}

SeparatorFn with_mixture_consistency(SeparatorFn separator) {
    return [separator](const at::Tensor& chunks) {
        at::Tensor stems = separator(chunks);
        return stems + ((chunks - stems.sum(1)) / static_cast<double>(stems.size(1))).unsqueeze(1);
    };
}

}  // namespace onestep
