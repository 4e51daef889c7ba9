// One source through libfluidsynth: a soundfont loaded once, a fresh synth per source (so no
// reverb, chorus or channel state leaks between sources), and sample-accurate note events.
//
//   onestep::render::FluidRenderer renderer("/usr/share/sounds/sf2/TimGM6mb.sf2", 44100);
//   onestep::render::ChannelSettings channel;                 // program, pan, sends, vibrato
//   onestep::render::StereoAudio audio = renderer.render(part.notes, 12.0, 44100 * 30, channel, effects);
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "audio/render/song.hpp"
#include "audio/render/soundfonts.hpp"

typedef struct _fluid_hashtable_t fluid_settings_t;
typedef struct _fluid_synth_t fluid_synth_t;

namespace onestep::render {

// Planar float32 stereo.
struct StereoAudio {
    std::vector<float> left, right;
    int64_t frames() const { return static_cast<int64_t>(left.size()); }
};

// Per-source MIDI channel set-up (CC7 = 100 and CC11 = 127 always).
struct ChannelSettings {
    bool is_drum = false;
    int bank = 0;
    int program = 0;
    int pan = 64;           // CC10
    int reverb_send = 0;    // CC91
    int chorus_send = 0;    // CC93
    bool vibrato = false;   // pitch-bend vibrato for the voice-like lead
    double vibrato_hz = 5.5;
    double vibrato_cents = 30;
};

// Song-level reverb settings, shared by every source so the sum of sources is one room.
struct EffectSettings {
    double room_size = 0.5;
    double damp = 0.3;
    double width = 0.75;
    double level = 0.7;
};

class FluidRenderer {
  public:
    // Loads SOUNDFONT_PATH into a synth at SAMPLE_RATE (cpu-cores 1, polyphony 256, gain 0.5);
    // UserError naming the file when it cannot be loaded.
    FluidRenderer(const std::string& soundfont_path, int64_t sample_rate);
    ~FluidRenderer();
    FluidRenderer(const FluidRenderer&) = delete;
    FluidRenderer& operator=(const FluidRenderer&) = delete;

    const std::string& path() const { return path_; }
    const std::vector<PresetInfo>& presets() const { return presets_; }

    // FRAMES frames starting at START_SECONDS of the song: notes sounding at the start are
    // struck at frame 0, events land on their exact frame. Each call runs on a new synth that
    // shares the loaded soundfont: the output depends on the arguments only, never on what was
    // rendered before (fluidsynth's system reset keeps chorus and reverb modulation phases).
    StereoAudio render(const std::vector<Note>& notes, double start_seconds, int64_t frames,
                       const ChannelSettings& channel, const EffectSettings& effects);

  private:
    std::string path_;
    int64_t sample_rate_ = 0;
    fluid_settings_t* settings_ = nullptr;
    fluid_synth_t* loader_ = nullptr;   // owns the loaded soundfont
    fluid_sfont_t* sfont_ = nullptr;
    std::vector<PresetInfo> presets_;
};

}  // namespace onestep::render
