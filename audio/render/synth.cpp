// Rendering one source with libfluidsynth: note lists become frame-exact events, and
// fluid_synth_write_float is split at every event so each one lands where the song puts it.
#include "audio/render/synth.hpp"

#include <fluidsynth.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace onestep::render {
namespace {

constexpr int kMelodicChannel = 0;
constexpr int kDrumChannel = 9;
constexpr double kSilencePeak = 1e-6;        // -120 dBFS
constexpr double kFlushCapSeconds = 10.0;
constexpr int kVibratoUpdateFrames = 256;
constexpr double kVibratoOnsetSeconds = 0.150;
constexpr int kBendRangeSemitones = 2;

enum EventType { kNoteOff = 0, kPitchBend = 1, kNoteOn = 2 };

struct Event {
    int64_t frame;
    int type;   // at equal frames: note-offs first, then bends, then note-ons
    int key;
    int value;
};

// Silences fluidsynth's informational chatter; errors still reach stderr.
void quiet_fluidsynth_logs() {
    static bool done = [] {
        fluid_set_log_function(FLUID_WARN, nullptr, nullptr);
        fluid_set_log_function(FLUID_INFO, nullptr, nullptr);
        fluid_set_log_function(FLUID_DBG, nullptr, nullptr);
        return true;
    }();
    (void)done;
}

std::vector<Event> note_events(const std::vector<Note>& notes, double start_seconds, int64_t frames, int64_t sample_rate,
                               const ChannelSettings& channel) {
    std::vector<Event> events;
    const double sr = static_cast<double>(sample_rate);
    for (const Note& note : notes) {
        int64_t on = std::llround((note.onset - start_seconds) * sr);
        int64_t off = std::llround((note.onset + note.duration - start_seconds) * sr);
        if (off <= 0 || on >= frames) continue;
        on = std::max<int64_t>(on, 0);
        events.push_back({on, kNoteOn, note.key, note.velocity});
        if (off < frames) events.push_back({off, kNoteOff, note.key, 0});
        if (!channel.vibrato) continue;
        // 8192 is the centre; a full bend is kBendRangeSemitones = 200 cents * range.
        events.push_back({on, kPitchBend, 0, 8192});
        double depth = channel.vibrato_cents / (100.0 * kBendRangeSemitones) * 8191.0;
        int64_t first = std::llround((note.onset + kVibratoOnsetSeconds - start_seconds) * sr);
        for (int64_t frame = std::max<int64_t>(first, on); frame < std::min(off, frames); frame += kVibratoUpdateFrames) {
            double t = (frame - first) / sr;
            int value = 8192 + static_cast<int>(std::lround(depth * std::sin(2 * M_PI * channel.vibrato_hz * t)));
            events.push_back({frame, kPitchBend, 0, std::clamp(value, 0, 16383)});
        }
    }
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
        return a.frame != b.frame ? a.frame < b.frame : a.type < b.type;
    });
    return events;
}

}  // namespace

FluidRenderer::FluidRenderer(const std::string& soundfont_path, int64_t sample_rate)
    : path_(soundfont_path), sample_rate_(sample_rate) {
    quiet_fluidsynth_logs();
    settings_ = new_fluid_settings();
    fluid_settings_setnum(settings_, "synth.sample-rate", static_cast<double>(sample_rate));
    fluid_settings_setint(settings_, "synth.cpu-cores", 1);   // one thread: bit-identical output
    fluid_settings_setint(settings_, "synth.polyphony", 256);
    fluid_settings_setnum(settings_, "synth.gain", 0.5);
    fluid_settings_setint(settings_, "synth.reverb.active", 1);
    fluid_settings_setint(settings_, "synth.chorus.active", 1);
    loader_ = new_fluid_synth(settings_);
    if (loader_ == nullptr) {
        delete_fluid_settings(settings_);
        throw UserError("fluidsynth: cannot create a synthesizer at " + std::to_string(sample_rate) + " Hz");
    }
    int sfont_id = fluid_synth_sfload(loader_, soundfont_path.c_str(), 1);
    if (sfont_id == FLUID_FAILED) {
        delete_fluid_synth(loader_);
        delete_fluid_settings(settings_);
        throw UserError(soundfont_path + ": fluidsynth cannot load this soundfont");
    }
    sfont_ = fluid_synth_get_sfont_by_id(loader_, sfont_id);
    presets_ = enumerate_presets(sfont_);
}

FluidRenderer::~FluidRenderer() {
    delete_fluid_synth(loader_);
    delete_fluid_settings(settings_);
}

namespace {

// A synth that borrows SFONT for one source and hands it back when it goes.
class BorrowingSynth {
  public:
    BorrowingSynth(fluid_settings_t* settings, fluid_sfont_t* sfont) : sfont_(sfont) {
        synth_ = new_fluid_synth(settings);
        if (synth_ == nullptr) throw UserError("fluidsynth: cannot create a synthesizer");
        sfont_id_ = fluid_synth_add_sfont(synth_, sfont_);
        if (sfont_id_ == FLUID_FAILED) {
            delete_fluid_synth(synth_);
            throw UserError("fluidsynth: cannot share a loaded soundfont");
        }
    }
    ~BorrowingSynth() {
        // Voices reference the soundfont's samples: silence them before handing it back.
        fluid_synth_all_sounds_off(synth_, -1);
        fluid_synth_remove_sfont(synth_, sfont_);
        delete_fluid_synth(synth_);
    }
    BorrowingSynth(const BorrowingSynth&) = delete;
    BorrowingSynth& operator=(const BorrowingSynth&) = delete;
    fluid_synth_t* get() const { return synth_; }
    int sfont_id() const { return sfont_id_; }

  private:
    fluid_sfont_t* sfont_;
    fluid_synth_t* synth_ = nullptr;
    int sfont_id_ = -1;
};

// Stops every note and renders 100 ms blocks until one is below -120 dBFS (10 s cap), so the
// reverb and chorus tails have died before the synth is dropped.
void flush_until_silent(fluid_synth_t* synth, int64_t sample_rate) {
    fluid_synth_all_sounds_off(synth, -1);
    const int block = static_cast<int>(sample_rate / 10);
    std::vector<float> left(block), right(block);
    for (int64_t rendered = 0; rendered < kFlushCapSeconds * sample_rate; rendered += block) {
        fluid_synth_write_float(synth, block, left.data(), 0, 1, right.data(), 0, 1);
        float peak = 0;
        for (int i = 0; i < block; ++i) peak = std::max({peak, std::abs(left[i]), std::abs(right[i])});
        if (peak < kSilencePeak) break;
    }
}

}  // namespace

StereoAudio FluidRenderer::render(const std::vector<Note>& notes, double start_seconds, int64_t frames,
                                  const ChannelSettings& channel, const EffectSettings& effects) {
    BorrowingSynth borrowed(settings_, sfont_);
    fluid_synth_t* synth = borrowed.get();
    fluid_synth_reverb_on(synth, -1, 1);
    fluid_synth_chorus_on(synth, -1, 1);
    fluid_synth_set_reverb_group_roomsize(synth, -1, effects.room_size);
    fluid_synth_set_reverb_group_damp(synth, -1, effects.damp);
    fluid_synth_set_reverb_group_width(synth, -1, effects.width);
    fluid_synth_set_reverb_group_level(synth, -1, effects.level);

    const int midi_channel = channel.is_drum ? kDrumChannel : kMelodicChannel;
    if (fluid_synth_program_select(synth, midi_channel, borrowed.sfont_id(), channel.bank, channel.program) != FLUID_OK)
        throw UserError(path_ + ": no preset " + std::to_string(channel.bank) + ":" + std::to_string(channel.program));
    fluid_synth_cc(synth, midi_channel, 7, 100);
    fluid_synth_cc(synth, midi_channel, 11, 127);
    fluid_synth_cc(synth, midi_channel, 10, channel.pan);
    fluid_synth_cc(synth, midi_channel, 91, channel.reverb_send);
    fluid_synth_cc(synth, midi_channel, 93, channel.chorus_send);
    fluid_synth_pitch_wheel_sens(synth, midi_channel, kBendRangeSemitones);

    StereoAudio audio;
    audio.left.assign(frames, 0.0f);
    audio.right.assign(frames, 0.0f);
    int64_t position = 0;
    auto write_until = [&](int64_t end) {
        while (position < end) {
            int count = static_cast<int>(std::min<int64_t>(end - position, 1 << 14));
            fluid_synth_write_float(synth, count, audio.left.data(), static_cast<int>(position), 1, audio.right.data(),
                                    static_cast<int>(position), 1);
            position += count;
        }
    };
    for (const Event& event : note_events(notes, start_seconds, frames, sample_rate_, channel)) {
        write_until(event.frame);
        if (event.type == kNoteOn)
            fluid_synth_noteon(synth, midi_channel, event.key, event.value);
        else if (event.type == kNoteOff)
            fluid_synth_noteoff(synth, midi_channel, event.key);
        else
            fluid_synth_pitch_bend(synth, midi_channel, event.value);
    }
    write_until(frames);
    flush_until_silent(synth, sample_rate_);
    return audio;
}

}  // namespace onestep::render
