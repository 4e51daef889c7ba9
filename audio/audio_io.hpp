// Audio files through libsndfile (WAV, FLAC, OGG Vorbis; 16/24-bit PCM and float): a probe, a
// chunked reader and an atomic chunked writer, all on [channels, frames] tensors.
//
//   onestep::AudioReader reader("song/vocals.wav");          // reader.info().sample_rate, ...
//   while (true) {
//       at::Tensor block = reader.read(1 << 16);           // float32 [channels, <= 65536]
//       if (block.size(1) == 0) break;
//   }
//   onestep::AudioWriter writer("out.flac", 44100, 2, onestep::AudioFormat::kFlacPcm24);
//   writer.write(block);                                   // any float dtype, [channels, n]
//   writer.close();                                        // out.flac appears only now
//
// Every failure (missing, unreadable, corrupt or truncated file, unsupported format) is a
// onestep::UserError that names the file.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <string>

namespace onestep {

// What a file holds. FORMAT is "<container>-<encoding>", e.g. "wav-pcm16", "flac-pcm24",
// "wav-float", "ogg-vorbis"; other files libsndfile decodes get names in the same style.
struct AudioInfo {
    int64_t sample_rate = 0;
    int64_t channels = 0;
    int64_t frames = 0;
    std::string format;
};

// The formats the writer produces.
enum class AudioFormat { kWavPcm16, kWavPcm24, kWavFloat, kFlacPcm16, kFlacPcm24, kOggVorbis };

// "wav-pcm16", "wav-pcm24", "wav-float", "flac-pcm16", "flac-pcm24", "ogg-vorbis".
std::string audio_format_name(AudioFormat format);
// The inverse; throws UserError listing the accepted names.
AudioFormat audio_format_from_name(const std::string& name);

// Opens PATH just long enough to read its header.
AudioInfo probe_audio(const std::string& path);

// Reads a file front to back in blocks. PCM decodes to [-1, 1) (a 16-bit value k reads as
// k / 32768, a 24-bit value as k / 2^23); float files are returned unscaled.
class AudioReader {
  public:
    explicit AudioReader(const std::string& path);
    ~AudioReader();
    AudioReader(AudioReader&&) noexcept;
    AudioReader& operator=(AudioReader&&) noexcept;

    const AudioInfo& info() const { return info_; }
    const std::string& path() const { return path_; }
    int64_t position() const { return position_; }

    // The next min(MAX_FRAMES, frames left) frames as DTYPE (kFloat or kDouble) [channels, n];
    // n = 0 at the end. A file that ends before its header's frame count is a UserError.
    at::Tensor read(int64_t max_frames, at::ScalarType dtype = at::kFloat);
    // Exactly FRAMES frames, or a UserError saying the file ended early.
    at::Tensor read_exactly(int64_t frames, at::ScalarType dtype = at::kFloat);
    void seek(int64_t frame);

  private:
    struct Handle;
    std::string path_;
    AudioInfo info_;
    int64_t position_ = 0;
    std::unique_ptr<Handle> handle_;
};

// Writes PATH.tmp block by block; close() finalises the header, fsyncs, and renames it over
// PATH, so PATH is either absent/old or complete. Destroyed without close(), it removes
// PATH.tmp. PCM output is quantised by rounding (x * 32768 or x * 2^23) and clipped to the
// integer range; clipped_samples() counts the samples that were outside it.
class AudioWriter {
  public:
    AudioWriter(const std::string& path, int64_t sample_rate, int64_t channels, AudioFormat format);
    ~AudioWriter();
    AudioWriter(const AudioWriter&) = delete;
    AudioWriter& operator=(const AudioWriter&) = delete;

    // BLOCK: [channels, n], any floating dtype, any device.
    void write(const at::Tensor& block);
    void close();

    int64_t frames_written() const { return frames_written_; }
    int64_t clipped_samples() const { return clipped_samples_; }

  private:
    struct Handle;
    void discard();
    std::string path_;
    std::string temp_path_;
    int64_t channels_ = 0;
    AudioFormat format_;
    int64_t frames_written_ = 0;
    int64_t clipped_samples_ = 0;
    std::unique_ptr<Handle> handle_;
};

// A whole file as DTYPE [channels, frames].
struct AudioData {
    AudioInfo info;
    at::Tensor samples;
};
AudioData read_audio(const std::string& path, at::ScalarType dtype = at::kFloat);

// Writes SAMPLES [channels, frames] atomically; returns the number of clipped samples.
int64_t write_audio(const std::string& path, const at::Tensor& samples, int64_t sample_rate, AudioFormat format);

}  // namespace onestep
