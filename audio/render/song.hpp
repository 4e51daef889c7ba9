// The procedural symbolic song generator of the stems renderer: tempo, meter, key, form, chord
// progressions and the note lists of bass, piano, guitar, drums, lead melody and extra parts.
//
//   onestep::render::SongRecipe recipe;                    // which parts to write
//   onestep::render::Song song = onestep::render::generate_song(seed, recipe);
//   for (const auto& part : song.parts) ...                // part.notes in seconds, humanised
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace onestep::render {

// General MIDI instrument classes (0-based programs in soundfonts.hpp).
enum class InstrumentClass {
    kPiano,
    kChromaticPercussion,
    kOrgan,
    kGuitar,
    kBass,
    kStrings,
    kVoice,
    kBrass,
    kReed,
    kPipe,
    kSynthLead,
    kSynthPad,
    kDrums
};
std::string instrument_class_name(InstrumentClass instrument_class);

// One note in seconds from the start of the song; humanisation already applied.
struct Note {
    double onset = 0;
    double duration = 0;
    int key = 60;
    int velocity = 100;
};

// What a part does in the song: "drums", "bass", "piano", "guitar", "lead", "pad", "stabs",
// "counter", "arpeggio". Its class and the programs it may be played with are fixed here
// (e.g. a power-chord guitar only takes programs 29-30); the soundfont then narrows them.
struct Part {
    std::string role;
    InstrumentClass instrument_class = InstrumentClass::kPiano;
    std::vector<int> programs;
    std::vector<Note> notes;
};

struct Section {
    std::string name;   // intro, verse, chorus, bridge, outro
    int first_bar = 0;
    int bars = 0;
};

// Which parts to write: slakh4 wants exactly bass, drums, guitar and piano.
struct SongRecipe {
    bool lead = true;
    bool extras = true;
};

struct Song {
    uint64_t seed = 0;
    int tempo_bpm = 120;
    int beats_per_bar = 4;
    double swing = 0;      // delay of off-beat 8ths as a fraction of an 8th
    int tonic = 0;         // pitch class, 0 = C
    bool minor = false;
    std::vector<Section> form;
    std::map<std::string, std::vector<std::string>> progressions;   // section name -> roman numerals
    int total_bars = 0;
    std::vector<Part> parts;

    double seconds_per_beat() const { return 60.0 / tempo_bpm; }
    double seconds_per_bar() const { return beats_per_bar * seconds_per_beat(); }
    double length_seconds() const { return total_bars * seconds_per_bar(); }
    std::string key_name() const;   // e.g. "A"
};

// Everything drawn from Rng(SEED); the same seed gives the same song.
Song generate_song(uint64_t seed, const SongRecipe& recipe);

// FNV-1a over every part's role and notes (keys, velocities, onsets in ms); equal songs hash equal.
uint64_t note_hash(const Song& song);

// The first bar of a window of WINDOW_SECONDS: uniform over the bar lines where the window fits
// and overlaps a verse or chorus (so the lead is heard); 0 when the song is shorter.
int pick_window_start_bar(const Song& song, double window_seconds, uint64_t seed);

}  // namespace onestep::render
