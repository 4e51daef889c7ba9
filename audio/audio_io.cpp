// libsndfile behind the AudioReader/AudioWriter interface. The writer quantises PCM itself
// (round, clip, count) so that reading back gives k / 32768 exactly, which libsndfile's own
// float-to-PCM path (scale 0x7FFF on write, 0x8000 on read) would not.
#include "audio/audio_io.hpp"

#include <sndfile.h>
#include <torch/torch.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

struct FormatName {
    AudioFormat format;
    const char* name;
    int sndfile_format;
};

const FormatName kFormats[] = {
    {AudioFormat::kWavPcm16, "wav-pcm16", SF_FORMAT_WAV | SF_FORMAT_PCM_16},
    {AudioFormat::kWavPcm24, "wav-pcm24", SF_FORMAT_WAV | SF_FORMAT_PCM_24},
    {AudioFormat::kWavFloat, "wav-float", SF_FORMAT_WAV | SF_FORMAT_FLOAT},
    {AudioFormat::kFlacPcm16, "flac-pcm16", SF_FORMAT_FLAC | SF_FORMAT_PCM_16},
    {AudioFormat::kFlacPcm24, "flac-pcm24", SF_FORMAT_FLAC | SF_FORMAT_PCM_24},
    {AudioFormat::kOggVorbis, "ogg-vorbis", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
};

const FormatName& format_entry(AudioFormat format) {
    for (const auto& entry : kFormats)
        if (entry.format == format) return entry;
    TORCH_CHECK(false, "unknown AudioFormat");
}

std::string container_name(int major) {
    switch (major) {
        case SF_FORMAT_WAV:
        case SF_FORMAT_WAVEX: return "wav";
        case SF_FORMAT_RF64: return "rf64";
        case SF_FORMAT_W64: return "w64";
        case SF_FORMAT_FLAC: return "flac";
        case SF_FORMAT_OGG: return "ogg";
        case SF_FORMAT_AIFF: return "aiff";
        case SF_FORMAT_AU: return "au";
        case SF_FORMAT_CAF: return "caf";
        default: return "sndfile" + std::to_string(major >> 16);
    }
}

std::string encoding_name(int subtype) {
    switch (subtype) {
        case SF_FORMAT_PCM_S8:
        case SF_FORMAT_PCM_U8: return "pcm8";
        case SF_FORMAT_PCM_16: return "pcm16";
        case SF_FORMAT_PCM_24: return "pcm24";
        case SF_FORMAT_PCM_32: return "pcm32";
        case SF_FORMAT_FLOAT: return "float";
        case SF_FORMAT_DOUBLE: return "double";
        case SF_FORMAT_VORBIS: return "vorbis";
        case SF_FORMAT_OPUS: return "opus";
        default: return "encoding" + std::to_string(subtype);
    }
}

std::string os_reason(int error_number) { return std::strerror(error_number); }

// Opens PATH for reading with a message that says which of missing / not a file / not audio.
SNDFILE* open_for_reading(const std::string& path, SF_INFO* info) {
    std::error_code error;
    if (!fs::exists(path, error)) throw UserError("cannot read audio file " + path + ": no such file");
    if (fs::is_directory(path, error)) throw UserError("cannot read audio file " + path + ": it is a folder");
    *info = SF_INFO{};
    SNDFILE* file = sf_open(path.c_str(), SFM_READ, info);
    if (file == nullptr) {
        int code = sf_error(nullptr);
        std::string reason = sf_strerror(nullptr);
        if (code == SF_ERR_UNRECOGNISED_FORMAT || code == SF_ERR_MALFORMED_FILE || code == SF_ERR_UNSUPPORTED_ENCODING)
            throw UserError("cannot read audio file " + path + ": corrupt or unsupported format (" + reason + ")");
        throw UserError("cannot read audio file " + path + ": " + reason);
    }
    if (info->channels <= 0 || info->samplerate <= 0 || info->frames < 0) {
        sf_close(file);
        throw UserError("cannot read audio file " + path + ": corrupt header (" + std::to_string(info->channels) +
                        " channels, " + std::to_string(info->samplerate) + " Hz)");
    }
    return file;
}

AudioInfo to_audio_info(const SF_INFO& info) {
    AudioInfo out;
    out.sample_rate = info.samplerate;
    out.channels = info.channels;
    out.frames = info.frames;
    out.format = container_name(info.format & SF_FORMAT_TYPEMASK) + "-" + encoding_name(info.format & SF_FORMAT_SUBMASK);
    return out;
}

void fsync_path(const std::string& path, int flags, const std::string& what) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw UserError("cannot write " + what + ": opening " + path + " failed: " + os_reason(errno));
    int result = ::fsync(fd);
    int error_number = errno;
    ::close(fd);
    // Some file systems refuse fsync on folders; the rename itself has already happened then.
    if (result != 0 && error_number != EINVAL)
        throw UserError("cannot write " + what + ": fsync of " + path + " failed: " + os_reason(error_number));
}

}  // namespace

std::string audio_format_name(AudioFormat format) { return format_entry(format).name; }

AudioFormat audio_format_from_name(const std::string& name) {
    std::string accepted;
    for (const auto& entry : kFormats) {
        if (name == entry.name) return entry.format;
        accepted += (accepted.empty() ? "" : ", ") + std::string(entry.name);
    }
    throw UserError("unknown audio format '" + name + "'; accepted: " + accepted);
}

AudioInfo probe_audio(const std::string& path) {
    SF_INFO info;
    SNDFILE* file = open_for_reading(path, &info);
    sf_close(file);
    return to_audio_info(info);
}

// ---------------------------------------------------------------------------------------------
// Reader

struct AudioReader::Handle {
    SNDFILE* file = nullptr;
    ~Handle() {
        if (file != nullptr) sf_close(file);
    }
};

AudioReader::AudioReader(const std::string& path) : path_(path), handle_(std::make_unique<Handle>()) {
    SF_INFO info;
    handle_->file = open_for_reading(path, &info);
    info_ = to_audio_info(info);
}

AudioReader::~AudioReader() = default;
AudioReader::AudioReader(AudioReader&&) noexcept = default;
AudioReader& AudioReader::operator=(AudioReader&&) noexcept = default;

at::Tensor AudioReader::read(int64_t max_frames, at::ScalarType dtype) {
    TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "AudioReader reads float32 or float64");
    TORCH_CHECK(max_frames >= 0, "AudioReader::read: negative frame count");
    TORCH_CHECK(handle_, "AudioReader used after a move");
    int64_t wanted = std::min(max_frames, info_.frames - position_);
    if (wanted <= 0) return at::empty({info_.channels, 0}, at::TensorOptions().dtype(dtype));
    // libsndfile reads interleaved frames: [n, channels], transposed afterwards.
    at::Tensor interleaved = at::empty({wanted, info_.channels}, at::TensorOptions().dtype(dtype));
    sf_count_t got = dtype == at::kFloat ? sf_readf_float(handle_->file, interleaved.data_ptr<float>(), wanted)
                                         : sf_readf_double(handle_->file, interleaved.data_ptr<double>(), wanted);
    if (got < wanted) {
        std::string reason = sf_error(handle_->file) != SF_ERR_NO_ERROR ? sf_strerror(handle_->file) : "unexpected end of data";
        throw UserError("cannot read audio file " + path_ + ": corrupt or truncated, read failed after frame " +
                        std::to_string(position_ + std::max<sf_count_t>(got, 0)) + " of " + std::to_string(info_.frames) +
                        " (" + reason + ")");
    }
    position_ += got;
    return interleaved.t().contiguous();
}

at::Tensor AudioReader::read_exactly(int64_t frames, at::ScalarType dtype) {
    if (position_ + frames > info_.frames)
        throw UserError("audio file " + path_ + " ends at frame " + std::to_string(info_.frames) + "; asked for frames " +
                        std::to_string(position_) + " to " + std::to_string(position_ + frames));
    return read(frames, dtype);
}

void AudioReader::seek(int64_t frame) {
    TORCH_CHECK(handle_, "AudioReader used after a move");
    if (frame < 0 || frame > info_.frames)
        throw UserError("cannot seek to frame " + std::to_string(frame) + " in " + path_ + " (" +
                        std::to_string(info_.frames) + " frames)");
    if (sf_seek(handle_->file, frame, SEEK_SET) < 0)
        throw UserError("cannot seek in audio file " + path_ + ": " + sf_strerror(handle_->file));
    position_ = frame;
}

// ---------------------------------------------------------------------------------------------
// Writer

struct AudioWriter::Handle {
    SNDFILE* file = nullptr;
};

AudioWriter::AudioWriter(const std::string& path, int64_t sample_rate, int64_t channels, AudioFormat format)
    : path_(path), temp_path_(path + ".tmp"), channels_(channels), format_(format), handle_(std::make_unique<Handle>()) {
    if (sample_rate <= 0 || channels <= 0)
        throw UserError("cannot write audio file " + path + ": " + std::to_string(channels) + " channels at " +
                        std::to_string(sample_rate) + " Hz");
    SF_INFO info{};
    info.samplerate = static_cast<int>(sample_rate);
    info.channels = static_cast<int>(channels);
    info.format = format_entry(format).sndfile_format;
    if (!sf_format_check(&info))
        throw UserError("cannot write audio file " + path + ": " + audio_format_name(format) + " does not support " +
                        std::to_string(channels) + " channels at " + std::to_string(sample_rate) + " Hz");
    handle_->file = sf_open(temp_path_.c_str(), SFM_WRITE, &info);
    if (handle_->file == nullptr) {
        std::string reason = sf_strerror(nullptr);
        ::unlink(temp_path_.c_str());
        throw UserError("cannot write audio file " + path + ": " + reason);
    }
    // The PEAK chunk of float WAV files carries a time stamp: without it equal samples give
    // byte-identical files.
    sf_command(handle_->file, SFC_SET_ADD_PEAK_CHUNK, nullptr, SF_FALSE);
}

AudioWriter::~AudioWriter() { discard(); }

void AudioWriter::discard() {
    if (handle_ && handle_->file != nullptr) {
        sf_close(handle_->file);
        handle_->file = nullptr;
        ::unlink(temp_path_.c_str());
    }
}

void AudioWriter::write(const at::Tensor& block) {
    TORCH_CHECK(handle_->file != nullptr, "AudioWriter used after close");
    if (block.dim() != 2 || block.size(0) != channels_ || !block.is_floating_point()) {
        discard();
        throw UserError("cannot write audio file " + path_ + ": expected a float block [" + std::to_string(channels_) +
                        ", frames], got " + std::string(block.toString()) + " " + c10::str(block.sizes()));
    }
    int64_t frames = block.size(1);
    if (frames == 0) return;
    bool wide = block.scalar_type() == at::kDouble;
    at::Tensor interleaved = block.detach().to(at::kCPU, wide ? at::kDouble : at::kFloat).t().contiguous();
    sf_count_t written = 0;
    if (format_ == AudioFormat::kOggVorbis || format_ == AudioFormat::kWavFloat) {
        written = wide ? sf_writef_double(handle_->file, interleaved.data_ptr<double>(), frames)
                       : sf_writef_float(handle_->file, interleaved.data_ptr<float>(), frames);
    } else {
        if (!torch::isfinite(interleaved).all().item<bool>()) {
            discard();
            throw UserError("cannot write audio file " + path_ + ": the signal has NaN or infinite samples, which " +
                            audio_format_name(format_) + " cannot store");
        }
        bool pcm16 = format_ == AudioFormat::kWavPcm16 || format_ == AudioFormat::kFlacPcm16;
        double full_scale = pcm16 ? 32768.0 : 8388608.0;
        at::Tensor levels = (interleaved.to(at::kDouble) * full_scale).round();
        clipped_samples_ += ((levels > full_scale - 1) | (levels < -full_scale)).sum().item<int64_t>();
        levels = levels.clamp(-full_scale, full_scale - 1);
        if (pcm16) {
            at::Tensor shorts = levels.to(at::kShort);
            written = sf_writef_short(handle_->file, shorts.data_ptr<int16_t>(), frames);
        } else {
            // libsndfile stores the top 24 bits of each int32.
            at::Tensor ints = levels.to(at::kInt) * 256;
            written = sf_writef_int(handle_->file, ints.data_ptr<int32_t>(), frames);
        }
    }
    if (written != frames) {
        std::string reason = sf_strerror(handle_->file);
        discard();
        throw UserError("cannot write audio file " + path_ + ": " + reason);
    }
    frames_written_ += frames;
}

void AudioWriter::close() {
    TORCH_CHECK(handle_->file != nullptr, "AudioWriter closed twice");
    int code = sf_close(handle_->file);
    handle_->file = nullptr;
    if (code != SF_ERR_NO_ERROR) {
        ::unlink(temp_path_.c_str());
        throw UserError("cannot write audio file " + path_ + ": " + sf_error_number(code));
    }
    try {
        fsync_path(temp_path_, O_RDONLY, path_);
    } catch (...) {
        ::unlink(temp_path_.c_str());
        throw;
    }
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        int error_number = errno;
        ::unlink(temp_path_.c_str());
        throw UserError("cannot write audio file " + path_ + ": renaming " + temp_path_ + " failed: " + os_reason(error_number));
    }
    std::string folder = fs::path(path_).parent_path().string();
    fsync_path(folder.empty() ? "." : folder, O_RDONLY | O_DIRECTORY, path_);
}

// ---------------------------------------------------------------------------------------------
// Whole files

AudioData read_audio(const std::string& path, at::ScalarType dtype) {
    AudioReader reader(path);
    AudioData data;
    data.info = reader.info();
    data.samples = reader.read_exactly(reader.info().frames, dtype);
    return data;
}

int64_t write_audio(const std::string& path, const at::Tensor& samples, int64_t sample_rate, AudioFormat format) {
    if (samples.dim() != 2)
        throw UserError("cannot write audio file " + path + ": expected [channels, frames], got " + c10::str(samples.sizes()));
    AudioWriter writer(path, sample_rate, samples.size(0), format);
    writer.write(samples);
    writer.close();
    return writer.clipped_samples();
}

}  // namespace onestep
