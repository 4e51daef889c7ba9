// Spectrogram PNGs through torch::stft and OpenCV's colour maps.
#include "audio/spectrogram.hpp"

#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "audio/audio_io.hpp"
#include "core/error.hpp"

namespace onestep {

void write_spectrogram_png(const std::string& audio_path, const std::string& png_path, const SpectrogramOptions& options) {
    AudioReader reader(audio_path);
    const int64_t sample_rate = reader.info().sample_rate;
    const int64_t first = std::llround(options.start_seconds * sample_rate);
    const int64_t wanted = std::llround(options.seconds * sample_rate);
    if (first < 0 || first >= reader.info().frames)
        throw UserError(audio_path + ": --start " + std::to_string(options.start_seconds) + " s is outside the file (" +
                        std::to_string(static_cast<double>(reader.info().frames) / sample_rate) + " s)");
    reader.seek(first);
    at::Tensor mono = reader.read(wanted, torch::kFloat).mean(0);
    if (mono.size(0) < options.n_fft) throw UserError(audio_path + ": the excerpt is shorter than one STFT frame");

    at::Tensor window = torch::hann_window(options.n_fft);
    at::Tensor spectrum = torch::stft(mono, options.n_fft, options.hop, options.n_fft, window, /*normalized=*/false,
                                      /*onesided=*/true, /*return_complex=*/true);
    at::Tensor db = 20 * torch::log10(spectrum.abs() + 1e-10);   // [freq, frames]
    if (options.rows > 0) {
        // Linear interpolation between the two STFT bins around each log-spaced frequency.
        const double bin_hz = static_cast<double>(sample_rate) / options.n_fft;
        at::Tensor hz = torch::logspace(std::log10(options.min_hz), std::log10(sample_rate / 2.0), options.rows, 10.0,
                                        torch::kDouble);
        at::Tensor position = (hz / bin_hz).clamp(0, db.size(0) - 1.001);
        at::Tensor lower = position.floor().to(torch::kLong);
        at::Tensor fraction = (position - lower).to(torch::kFloat).unsqueeze(1);
        db = db.index_select(0, lower) * (1 - fraction) + db.index_select(0, lower + 1) * fraction;
    }
    double top = db.max().item<double>();
    at::Tensor level = ((db - (top - options.range_db)) / options.range_db).clamp(0, 1);
    // Row 0 of an image is its top: flip so low frequencies sit at the bottom.
    at::Tensor pixels = (level.flip({0}) * 255).round().to(torch::kUInt8).contiguous();
    cv::Mat gray(static_cast<int>(pixels.size(0)), static_cast<int>(pixels.size(1)), CV_8UC1, pixels.data_ptr<uint8_t>());
    cv::Mat coloured;
    cv::applyColorMap(gray, coloured, cv::COLORMAP_MAGMA);

    std::string extension = std::filesystem::path(png_path).extension().string();
    if (extension.empty()) extension = ".png";
    const std::string temp_path = png_path + ".tmp" + extension;
    bool written = false;
    try {
        written = cv::imwrite(temp_path, coloured);
    } catch (const cv::Exception&) {
    }
    if (!written || std::rename(temp_path.c_str(), png_path.c_str()) != 0) {
        std::remove(temp_path.c_str());
        throw UserError("cannot write " + png_path);
    }
}

}  // namespace onestep
