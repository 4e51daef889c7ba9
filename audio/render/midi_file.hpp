// Standard MIDI Files of the rendered parts (one per source plus one with every source), so the
// stems come with their exact note lists for transcription tasks.
//
//   onestep::render::MidiTrack track{"S01 bass", 0, 33, false, part.notes};
//   std::string bytes = onestep::render::standard_midi_file({track}, 120, 4, window_start, window_seconds);
#pragma once
#include <string>
#include <vector>

#include "audio/render/song.hpp"

namespace onestep::render {

struct MidiTrack {
    std::string name;
    int channel = 0;   // 9 for drums
    int program = 0;   // ignored for drums
    bool is_drum = false;
    std::vector<Note> notes;
};

// A format-1 file at 480 ticks per quarter: a tempo/meter track, then one track per entry of
// TRACKS. Only the window [START_SECONDS, START_SECONDS + SECONDS) is kept, shifted to time 0,
// with notes clipped to it, so the file lines up with the audio.
std::string standard_midi_file(const std::vector<MidiTrack>& tracks, int tempo_bpm, int beats_per_bar,
                               double start_seconds, double seconds);

}  // namespace onestep::render
