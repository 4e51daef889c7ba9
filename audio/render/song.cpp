// The procedural song generator: a seeded recipe (tempo, meter, key, form, progressions) and one
// note list per part, written on a beat grid and then swung and humanised into seconds.
#include "audio/render/song.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "audio/render/random.hpp"

namespace onestep::render {
namespace {

constexpr int kMajorScale[7] = {0, 2, 4, 5, 7, 9, 11};
constexpr int kMinorScale[7] = {0, 2, 3, 5, 7, 8, 10};
const char* const kKeyNames[12] = {"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"};

const std::vector<std::vector<std::string>> kMajorProgressions = {
    {"I", "V", "vi", "IV"},   {"I", "vi", "IV", "V"},  {"vi", "IV", "I", "V"},   {"I", "IV", "V", "IV"},
    {"ii", "V", "I", "I"},    {"I", "IV", "I", "V"},   {"I", "iii", "IV", "V"},
    {"I7", "I7", "I7", "I7", "IV7", "IV7", "I7", "I7", "V7", "IV7", "I7", "V7"}};
const std::vector<std::vector<std::string>> kMinorProgressions = {
    {"i", "VI", "III", "VII"}, {"i", "iv", "v", "i"}, {"i", "VII", "VI", "VII"}, {"i", "iv", "VII", "III"},
    {"iiø", "V7", "i", "i"}};

// A chord as a root (semitones above the tonic) and intervals above the root.
struct Chord {
    int root = 0;
    std::vector<int> intervals;
    double start = 0;   // beats
    double length = 0;  // beats
};

// A note on the beat grid before swing and humanisation; SHIFT is a fixed offset in seconds
// (the spread of a strum).
struct GridNote {
    double beat = 0;
    double length = 0;
    int key = 60;
    int velocity = 100;
    double shift = 0;
};

Chord chord_from_numeral(const std::string& numeral) {
    struct Entry {
        const char* name;
        int root;
        std::vector<int> intervals;
    };
    static const std::vector<Entry> kTable = {
        {"I", 0, {0, 4, 7}},       {"ii", 2, {0, 3, 7}},       {"iii", 4, {0, 3, 7}},   {"IV", 5, {0, 4, 7}},
        {"V", 7, {0, 4, 7}},       {"vi", 9, {0, 3, 7}},       {"I7", 0, {0, 4, 7, 10}}, {"IV7", 5, {0, 4, 7, 10}},
        {"V7", 7, {0, 4, 7, 10}},  {"i", 0, {0, 3, 7}},        {"iiø", 2, {0, 3, 6, 10}}, {"III", 3, {0, 4, 7}},
        {"iv", 5, {0, 3, 7}},      {"v", 7, {0, 3, 7}},        {"VI", 8, {0, 4, 7}},    {"VII", 10, {0, 4, 7}}};
    // Colour suffixes written by colour_progression: "+7", "sus2", "sus4".
    std::string base = numeral;
    std::string colour;
    for (const char* suffix : {"+7", "sus2", "sus4"}) {
        size_t at = base.find(suffix);
        if (at != std::string::npos) {
            colour = suffix;
            base = base.substr(0, at);
        }
    }
    Chord chord;
    for (const Entry& entry : kTable)
        if (base == entry.name) {
            chord.root = entry.root;
            chord.intervals = entry.intervals;
        }
    if (colour == "+7") {
        bool major_third = chord.intervals[1] == 4;
        bool dominant = chord.root == 7 || chord.root == 10;
        chord.intervals.push_back(major_third && !dominant ? 11 : 10);
    } else if (colour == "sus2") {
        chord.intervals[1] = 2;
    } else if (colour == "sus4") {
        chord.intervals[1] = 5;
    }
    return chord;
}

// Add 7th p 0.3, sus2/sus4 p 0.1 per chord of the progression (not on chords that carry a 7th).
std::vector<std::string> colour_progression(std::vector<std::string> numerals, Rng& rng) {
    for (std::string& numeral : numerals) {
        bool has_seventh = numeral.find('7') != std::string::npos || numeral == "iiø";
        double r = rng.uniform();
        if (has_seventh) continue;
        if (r < 0.3)
            numeral += "+7";
        else if (r < 0.4)
            numeral += rng.bernoulli(0.5) ? "sus2" : "sus4";
    }
    return numerals;
}

// The pitch classes of a chord in the song's key.
std::vector<int> chord_pitch_classes(const Chord& chord, int tonic) {
    std::vector<int> classes;
    for (int interval : chord.intervals) classes.push_back((tonic + chord.root + interval) % 12);
    return classes;
}

bool in_chord(int key, const std::vector<int>& classes) {
    return std::find(classes.begin(), classes.end(), ((key % 12) + 12) % 12) != classes.end();
}

// The lowest key >= LOW with pitch class PC.
int key_at_or_above(int pitch_class, int low) {
    int key = low + ((pitch_class - low) % 12 + 12) % 12;
    return key;
}

// Close-position voicings of COUNT notes inside [LOW, HIGH]; the one that moves least from
// PREVIOUS (sum of distances of sorted notes) wins, the one nearest CENTRE when there is none.
std::vector<int> voice_chord(const std::vector<int>& classes, int count, int low, int high,
                             const std::vector<int>& previous, int centre) {
    std::vector<int> best;
    double best_cost = std::numeric_limits<double>::infinity();
    for (int bass = low; bass < low + 24 && bass <= high; ++bass) {
        if (!in_chord(bass, classes)) continue;
        std::vector<int> voicing = {bass};
        int key = bass;
        while (static_cast<int>(voicing.size()) < count) {
            ++key;
            if (key > high) break;
            if (in_chord(key, classes) &&
                (static_cast<int>(classes.size()) >= count || voicing.size() < classes.size() ||
                 key - voicing.back() >= 3))
                voicing.push_back(key);
        }
        if (static_cast<int>(voicing.size()) < count) continue;
        double cost = 0;
        if (previous.size() == voicing.size()) {
            for (size_t i = 0; i < voicing.size(); ++i) cost += std::abs(voicing[i] - previous[i]);
        } else {
            double mean = 0;
            for (int v : voicing) mean += v;
            cost = std::abs(mean / voicing.size() - centre) * voicing.size();
        }
        if (cost < best_cost) {
            best_cost = cost;
            best = voicing;
        }
    }
    return best;
}

struct Grid {
    const Song& song;
    std::vector<Chord> chords;                  // the whole song, in order
    std::vector<std::vector<int>> kick_steps;   // per section: 16th positions of the kick
};

// Chords of the song on the beat axis, one progression per section with the harmonic rhythm.
std::vector<Chord> lay_out_chords(const Song& song, Rng& rng) {
    std::vector<Chord> chords;
    double bar = song.beats_per_bar;
    double chord_beats;
    double r = rng.uniform();
    if (r < 0.7)
        chord_beats = bar;
    else if (r < 0.9)
        chord_beats = 2 * bar;
    else
        chord_beats = song.beats_per_bar == 4 ? bar / 2 : bar;
    for (const Section& section : song.form) {
        const std::vector<std::string>& numerals = song.progressions.at(section.name);
        double start = section.first_bar * bar;
        double end = (section.first_bar + section.bars) * bar;
        size_t index = 0;
        for (double t = start; t < end - 1e-9; t += chord_beats, ++index) {
            Chord chord = chord_from_numeral(numerals[index % numerals.size()]);
            chord.start = t;
            chord.length = std::min(chord_beats, end - t);
            chords.push_back(chord);
        }
    }
    return chords;
}

const Chord& chord_at(const std::vector<Chord>& chords, double beat) {
    for (const Chord& chord : chords)
        if (beat < chord.start + chord.length - 1e-9) return chord;
    return chords.back();
}

// ---- drums -------------------------------------------------------------------------------

struct DrumHit {
    int step;   // 16th within the bar
    int key;
    int low_velocity, high_velocity;
};

std::vector<DrumHit> drum_pattern(const std::string& style, bool ride, Rng& rng, int steps) {
    std::vector<DrumHit> hits;
    int hat = ride ? 51 : 42;
    auto hats = [&](int every) {
        for (int step = 0; step < steps; step += every)
            hits.push_back({step, hat, step % 4 == 0 ? 90 : 60, step % 4 == 0 ? 110 : 80});
    };
    auto kick = [&](int step) { hits.push_back({step, 36, 100, 120}); };
    auto snare = [&](int step, int key = 38) { hits.push_back({step, key, 95, 115}); };
    if (style == "rock") {
        kick(0);
        kick(8);
        if (rng.bernoulli(0.5)) kick(10);
        snare(4);
        snare(12);
        hats(2);
    } else if (style == "pop") {
        kick(0);
        kick(6);
        kick(8);
        snare(4, 40);
        snare(12, 40);
        hats(1);
    } else if (style == "four-on-floor") {
        for (int step : {0, 4, 8, 12}) kick(step);
        snare(4, 39);
        snare(12, 39);
        for (int step : {2, 6, 10, 14}) hits.push_back({step, 46, 75, 95});
        if (ride)
            for (int step : {0, 4, 8, 12}) hits.push_back({step, 51, 80, 100});
    } else if (style == "half-time") {
        kick(0);
        kick(10);
        snare(8);
        hats(2);
    } else if (style == "funk") {
        kick(0);
        kick(3);
        kick(10);
        snare(4);
        snare(12);
        for (int step : {7, 9, 15}) hits.push_back({step, 38, 30, 45});
        hats(1);
    } else if (style == "shuffle") {
        kick(0);
        kick(8);
        snare(4);
        snare(12);
        for (int step = 0; step < steps; step += 2) hits.push_back({step, 51, step % 4 == 0 ? 90 : 60, step % 4 == 0 ? 110 : 80});
    } else {   // 3/4
        kick(0);
        snare(4);
        snare(8);
        hats(2);
    }
    return hits;
}

std::vector<int> kick_steps_of(const std::vector<DrumHit>& pattern) {
    std::vector<int> steps;
    for (const DrumHit& hit : pattern)
        if (hit.key == 36) steps.push_back(hit.step);
    std::sort(steps.begin(), steps.end());
    return steps;
}

std::vector<GridNote> write_drums(const Song& song, Rng& rng, std::vector<std::vector<int>>& kick_steps) {
    std::vector<GridNote> notes;
    int steps = song.beats_per_bar * 4;
    std::string style;
    if (song.beats_per_bar == 3) {
        style = "3/4";
    } else {
        static const std::vector<std::string> kStyles = {"rock", "pop", "four-on-floor", "half-time", "funk", "shuffle"};
        style = song.swing > 0 && rng.bernoulli(0.5) ? "shuffle" : rng.pick(kStyles);
    }
    bool chorus_ride = rng.bernoulli(0.3);
    for (const Section& section : song.form) {
        std::vector<DrumHit> pattern = drum_pattern(style, chorus_ride && section.name == "chorus", rng, steps);
        kick_steps.push_back(kick_steps_of(pattern));
        bool fill = rng.bernoulli(0.6);
        bool crash = rng.bernoulli(0.8);
        for (int bar = 0; bar < section.bars; ++bar) {
            double bar_beat = (section.first_bar + bar) * song.beats_per_bar;
            bool last_bar = bar == section.bars - 1;
            int fill_from = fill && last_bar ? steps - 8 : steps;
            for (const DrumHit& hit : pattern) {
                if (hit.step >= fill_from) continue;
                int key = hit.key;
                if (bar == 0 && hit.step == 0 && crash && (key == 42 || key == 51)) key = 49;
                notes.push_back({bar_beat + hit.step / 4.0, 0.25, key, rng.uniform_int(hit.low_velocity, hit.high_velocity)});
            }
            if (bar == 0 && crash) notes.push_back({bar_beat, 0.25, rng.bernoulli(0.7) ? 49 : 57, rng.uniform_int(100, 120)});
            if (fill_from < steps) {
                // Descending 16ths over the last two beats: snare, then high to low toms.
                static const int kFill[8] = {38, 38, 50, 48, 47, 45, 43, 41};
                for (int i = 0; i < 8; ++i)
                    notes.push_back({bar_beat + (fill_from + i) / 4.0, 0.25, kFill[i], rng.uniform_int(85, 115)});
            }
        }
    }
    return notes;
}

// ---- bass --------------------------------------------------------------------------------

int bass_key(int pitch_class) {
    int key = key_at_or_above(pitch_class, 28);
    return key;
}

std::vector<GridNote> write_bass(const Song& song, const std::vector<Chord>& chords,
                                 const std::vector<std::vector<int>>& kick_steps, Rng& rng) {
    std::vector<GridNote> notes;
    std::map<std::string, int> style_of_section;
    const int beats = song.beats_per_bar;
    for (size_t s = 0; s < song.form.size(); ++s) {
        const Section& section = song.form[s];
        if (!style_of_section.count(section.name)) style_of_section[section.name] = rng.uniform_int(0, 5);
        int style = style_of_section[section.name];
        double start = section.first_bar * beats;
        double end = (section.first_bar + section.bars) * beats;
        // Slots (onset, length, key chooser) for each style.
        std::vector<std::pair<double, double>> slots;
        if (style == 0) {
            // Beats 1 and 3 in 4/4; a dotted half on beat 1 in 3/4.
            for (int bar = 0; bar < section.bars; ++bar) {
                double bar_beat = start + bar * beats;
                if (beats == 4) {
                    slots.push_back({bar_beat, 2});
                    slots.push_back({bar_beat + 2, 2});
                } else {
                    slots.push_back({bar_beat, 3});
                }
            }
        } else if (style == 1 || style == 3) {
            for (double t = start; t < end - 1e-9; t += 0.5) slots.push_back({t, 0.5});
        } else if (style == 2 || style == 4) {
            for (double t = start; t < end - 1e-9; t += 1) slots.push_back({t, 1});
        } else {
            const std::vector<int>& steps = kick_steps[s];
            for (int bar = 0; bar < section.bars; ++bar)
                for (size_t i = 0; i < steps.size(); ++i) {
                    int next = i + 1 < steps.size() ? steps[i + 1] : beats * 4;
                    slots.push_back({start + bar * beats + steps[i] / 4.0, (next - steps[i]) / 4.0});
                }
        }
        int index = 0;
        for (const auto& [onset, slot] : slots) {
            const Chord& chord = chord_at(chords, onset);
            std::vector<int> classes = chord_pitch_classes(chord, song.tonic);
            int root = bass_key(classes[0]);
            int key = root;
            if (style == 2 && index % 2 == 1) key = root + 7;
            if (style == 3 && index % 2 == 1) key = root + 12;
            if (style == 4) {
                double chord_end = chord.start + chord.length;
                if (onset + slot >= chord_end - 1e-9 && onset > chord.start + 1e-9) {
                    // Chromatic approach to the next chord's root from a semitone below or above.
                    const Chord& next = chord_at(chords, std::min(chord_end, end - 0.01));
                    int target = bass_key(chord_pitch_classes(next, song.tonic)[0]);
                    key = target + (rng.bernoulli(0.5) ? -1 : 1);
                } else if (onset > chord.start + 1e-9) {
                    int tone = classes[rng.uniform_int(0, static_cast<int>(classes.size()) - 1)];
                    key = key_at_or_above(tone, root);
                }
            }
            while (key > 50) key -= 12;
            while (key < 28) key += 12;
            notes.push_back({onset, slot * rng.uniform(0.80, 0.95), key, rng.uniform_int(85, 110)});
            ++index;
        }
    }
    return notes;
}

// ---- piano, guitar, pads, arpeggios --------------------------------------------------------

std::vector<GridNote> write_piano(const Song& song, const std::vector<Chord>& chords, Rng& rng) {
    std::vector<GridNote> notes;
    std::map<std::string, int> style_of_section;
    std::vector<int> previous;
    for (const Section& section : song.form) {
        if (!style_of_section.count(section.name))
            style_of_section[section.name] = rng.uniform_int(0, song.tempo_bpm < 100 ? 4 : 3);
        int style = style_of_section[section.name];
        double start = section.first_bar * song.beats_per_bar;
        double end = (section.first_bar + section.bars) * song.beats_per_bar;
        for (const Chord& chord : chords) {
            if (chord.start < start - 1e-9 || chord.start >= end - 1e-9) continue;
            std::vector<int> classes = chord_pitch_classes(chord, song.tonic);
            int count = classes.size() >= 4 ? 4 : rng.uniform_int(3, 4);
            std::vector<int> voicing = voice_chord(classes, count, 48, 76, previous, 62);
            if (voicing.empty()) continue;
            previous = voicing;
            double chord_end = chord.start + chord.length;
            auto block = [&](double t, double length, int velocity) {
                for (int key : voicing) notes.push_back({t, length, key, velocity});
            };
            if (style == 0) {
                for (double t = chord.start; t < chord_end - 1e-9; t += 1) block(t, 0.9, rng.uniform_int(70, 90));
            } else if (style == 1) {
                for (double t = chord.start; t < chord_end - 1e-9; t += 2)
                    block(t, std::min(2.0, chord_end - t) * 0.95, rng.uniform_int(60, 80));
            } else if (style == 2) {
                bool up = rng.bernoulli(0.5);
                int i = 0;
                for (double t = chord.start; t < chord_end - 1e-9; t += 0.5, ++i) {
                    int n = voicing.size();
                    int step = i % (2 * n - 2);
                    int index = step < n ? step : 2 * n - 2 - step;
                    if (!up) index = n - 1 - index;
                    notes.push_back({t, 0.5, voicing[index], rng.uniform_int(65, 85)});
                }
            } else if (style == 3) {
                for (double t = chord.start; t < chord_end - 1e-9; t += 0.5) {
                    bool on_beat = std::fmod(t, 1.0) < 1e-9;
                    block(t, 0.4, on_beat ? rng.uniform_int(80, 95) : rng.uniform_int(55, 70));
                }
            } else {
                int i = 0;
                static const int kBroken[4] = {0, 2, 1, 3};
                for (double t = chord.start; t < chord_end - 1e-9; t += 0.25, ++i) {
                    int index = kBroken[i % 4] % voicing.size();
                    notes.push_back({t, 0.3, voicing[index], rng.uniform_int(60, 80)});
                }
            }
        }
    }
    return notes;
}

std::vector<int> guitar_voicing(const std::vector<int>& classes, bool power_chord, int count) {
    int root = key_at_or_above(classes[0], 40);
    if (power_chord) return {root, root + 7, root + 12};
    // Open-position-like stack: root low, then chord tones at least a third apart.
    std::vector<int> voicing = {root};
    for (int key = root + 3; key <= 76 && static_cast<int>(voicing.size()) < count; ++key)
        if (in_chord(key, classes) && key - voicing.back() >= 3) voicing.push_back(key);
    return voicing;
}

std::vector<GridNote> write_guitar(const Song& song, const std::vector<Chord>& chords, bool power_chords, Rng& rng) {
    static const std::vector<std::string> kStrums = {"D-D-UDU-", "D-DU-UD-", "DDUUDU--", "D---D---"};
    std::vector<GridNote> notes;
    struct Style {
        std::string strum;
        bool palm_muted;
        int strings;
    };
    std::map<std::string, Style> style_of_section;
    const int eighths = song.beats_per_bar * 2;
    for (const Section& section : song.form) {
        if (!style_of_section.count(section.name))
            style_of_section[section.name] = {rng.pick(kStrums), rng.bernoulli(0.3), rng.uniform_int(4, 6)};
        const auto& [strum, palm_muted, strings] = style_of_section[section.name];
        for (int bar = 0; bar < section.bars; ++bar) {
            double bar_beat = (section.first_bar + bar) * song.beats_per_bar;
            for (int e = 0; e < eighths; ++e) {
                char stroke = palm_muted ? 'D' : strum[e % strum.size()];
                if (stroke == '-') continue;
                double t = bar_beat + e * 0.5;
                const Chord& chord = chord_at(chords, t);
                std::vector<int> voicing = guitar_voicing(chord_pitch_classes(chord, song.tonic), power_chords, strings);
                if (palm_muted) voicing.resize(std::min<size_t>(voicing.size(), 3));
                // Hold until the next stroke (or the chord change), 30 % of an 8th when muted.
                double length = 0.5;
                for (int n = e + 1; n < eighths && strum[n % strum.size()] == '-' && !palm_muted; ++n) length += 0.5;
                length = std::min(length, chord.start + chord.length - t);
                if (palm_muted) length = 0.15;
                bool up = stroke == 'U';
                int velocity = rng.uniform_int(75, 100) - (up ? rng.uniform_int(10, 20) : 0);
                double spread = rng.uniform(0.008, 0.025);
                for (size_t i = 0; i < voicing.size(); ++i) {
                    size_t string = up ? voicing.size() - 1 - i : i;
                    notes.push_back({t, length * 0.95, voicing[string], velocity, i * spread});
                }
            }
        }
    }
    return notes;
}

// Sustained chords for pads and organ.
std::vector<GridNote> write_pad(const Song& song, const std::vector<Chord>& chords, const std::vector<bool>& active,
                                Rng& rng) {
    std::vector<GridNote> notes;
    std::vector<int> previous;
    for (size_t s = 0; s < song.form.size(); ++s) {
        if (!active[s]) continue;
        const Section& section = song.form[s];
        double start = section.first_bar * song.beats_per_bar;
        double end = start + section.bars * song.beats_per_bar;
        for (const Chord& chord : chords) {
            if (chord.start < start - 1e-9 || chord.start >= end - 1e-9) continue;
            std::vector<int> voicing = voice_chord(chord_pitch_classes(chord, song.tonic), 3, 52, 72, previous, 62);
            if (voicing.empty()) continue;
            previous = voicing;
            int velocity = rng.uniform_int(65, 85);
            for (int key : voicing) notes.push_back({chord.start, chord.length * 0.98, key, velocity});
        }
    }
    return notes;
}

std::vector<GridNote> write_stabs(const Song& song, const std::vector<Chord>& chords, const std::vector<bool>& active,
                                  Rng& rng) {
    std::vector<GridNote> notes;
    std::vector<double> rhythm = song.beats_per_bar == 4 ? std::vector<double>{0, 1.5, 3} : std::vector<double>{0, 1.5};
    if (rng.bernoulli(0.5)) rhythm = song.beats_per_bar == 4 ? std::vector<double>{0.5, 2.5} : std::vector<double>{1};
    std::vector<int> previous;
    for (size_t s = 0; s < song.form.size(); ++s) {
        if (!active[s]) continue;
        const Section& section = song.form[s];
        for (int bar = 0; bar < section.bars; ++bar) {
            double bar_beat = (section.first_bar + bar) * song.beats_per_bar;
            for (double offset : rhythm) {
                double t = bar_beat + offset;
                std::vector<int> voicing =
                    voice_chord(chord_pitch_classes(chord_at(chords, t), song.tonic), 3, 55, 79, previous, 67);
                if (voicing.empty()) continue;
                previous = voicing;
                int velocity = rng.uniform_int(85, 105);
                for (int key : voicing) notes.push_back({t, 0.3, key, velocity});
            }
        }
    }
    return notes;
}

std::vector<GridNote> write_arpeggio(const Song& song, const std::vector<Chord>& chords, const std::vector<bool>& active,
                                     Rng& rng) {
    std::vector<GridNote> notes;
    for (size_t s = 0; s < song.form.size(); ++s) {
        if (!active[s]) continue;
        const Section& section = song.form[s];
        double start = section.first_bar * song.beats_per_bar;
        double end = start + section.bars * song.beats_per_bar;
        int i = 0;
        for (double t = start; t < end - 1e-9; t += 0.5, ++i) {
            std::vector<int> classes = chord_pitch_classes(chord_at(chords, t), song.tonic);
            std::vector<int> tones;
            for (int key = 60; key <= 84 && tones.size() < 6; ++key)
                if (in_chord(key, classes)) tones.push_back(key);
            notes.push_back({t, 0.45, tones[i % tones.size()], rng.uniform_int(65, 90)});
        }
    }
    return notes;
}

// ---- melodies ------------------------------------------------------------------------------

struct MelodyStyle {
    int low, high;
    std::vector<double> durations;   // beats; 0.25 means a 16th pair
    std::vector<double> weights;
};

// Degree (scale steps from the tonic, any sign) to MIDI key, BASE = the tonic's key.
int degree_key(int degree, int base, bool minor) {
    const int* scale = minor ? kMinorScale : kMajorScale;
    int octave = static_cast<int>(std::floor(degree / 7.0));
    return base + 12 * octave + scale[degree - 7 * octave];
}

// One section's melody relative to its start: phrases of 2 or 4 bars, each ending in a rest of
// 0.5-2 beats; strong-beat notes are chord tones p 0.85, other steps follow the interval table.
std::vector<GridNote> melody_for_section(const Song& song, const std::vector<Chord>& chords, const Section& section,
                                         const MelodyStyle& style, int degree_offset, Rng& rng) {
    std::vector<GridNote> notes;
    int base = key_at_or_above(song.tonic, style.low);
    int top_degree = 0;
    while (degree_key(top_degree + 1, base, song.minor) <= style.high) ++top_degree;
    int degree = top_degree / 2 + degree_offset;
    const double bar = song.beats_per_bar;
    double section_start = section.first_bar * bar;
    double t = 0;
    const double total = section.bars * bar;
    while (t < total - 1e-9) {
        double phrase = std::min((rng.bernoulli(0.5) ? 2 : 4) * bar, total - t);
        double rest = 0.5 * rng.uniform_int(1, 4);
        double phrase_end = t + phrase - rest;
        while (t < phrase_end - 1e-9) {
            double length = style.durations[rng.weighted(style.weights)];
            int repeats = length == 0.25 ? 2 : 1;
            for (int r = 0; r < repeats && t < phrase_end - 1e-9; ++r) {
                double note_length = std::min(length, phrase_end - t);
                double beat_in_bar = std::fmod(t, bar);
                bool strong = std::fmod(beat_in_bar, 2.0) < 1e-9;
                static const std::vector<double> kIntervalWeights = {0.10, 0.45, 0.25, 0.10, 0.10};
                size_t size = rng.weighted(kIntervalWeights);
                int step = size < 4 ? static_cast<int>(size) : rng.uniform_int(4, 7);
                if (rng.bernoulli(0.5)) step = -step;
                degree += step;
                // Reflect into the range.
                if (degree < 0) degree = -degree;
                if (degree > top_degree) degree = std::max(0, 2 * top_degree - degree);
                int key = degree_key(degree, base, song.minor);
                if (strong && rng.bernoulli(0.85)) {
                    std::vector<int> classes = chord_pitch_classes(chord_at(chords, section_start + t), song.tonic);
                    // The nearest chord tone in the range, searching outwards in scale steps.
                    for (int d = 0; d <= 3; ++d) {
                        int up = std::min(degree + d, top_degree), down = std::max(degree - d, 0);
                        if (in_chord(degree_key(up, base, song.minor), classes)) { degree = up; break; }
                        if (in_chord(degree_key(down, base, song.minor), classes)) { degree = down; break; }
                    }
                    key = degree_key(degree, base, song.minor);
                    // A chromatic chord tone (V7 in minor) is taken as is.
                    if (!in_chord(key, classes)) key = key_at_or_above(classes[0], key - 6);
                }
                notes.push_back({t, note_length * 0.95, std::clamp(key, style.low, style.high), rng.uniform_int(80, 105)});
                t += note_length;
            }
        }
        t = phrase_end + rest;
    }
    return notes;
}

// Verses share one melody and choruses another (a third higher), so the motif repeats.
std::vector<GridNote> write_melody(const Song& song, const std::vector<Chord>& chords, const MelodyStyle& style,
                                   const std::vector<bool>& active, Rng& rng) {
    std::vector<GridNote> notes;
    std::map<std::string, std::vector<GridNote>> motifs;
    for (size_t s = 0; s < song.form.size(); ++s) {
        if (!active[s]) continue;
        const Section& section = song.form[s];
        std::string motif_key = section.name + "/" + std::to_string(section.bars);
        if (!motifs.count(motif_key))
            motifs[motif_key] = melody_for_section(song, chords, section, style, section.name == "chorus" ? 2 : 0, rng);
        double start = section.first_bar * song.beats_per_bar;
        for (GridNote note : motifs[motif_key]) {
            note.beat += start;
            notes.push_back(note);
        }
    }
    return notes;
}

// ---- timing ------------------------------------------------------------------------------

// Beat -> seconds with off-beat 8ths delayed by SWING of an 8th (piecewise linear in each beat).
double swung_seconds(double beat, const Song& song) {
    double whole = std::floor(beat + 1e-9);
    double fraction = beat - whole;
    double s = song.swing;
    double swung = fraction < 0.5 ? fraction * (1 + s) : 0.5 * (1 + s) + (fraction - 0.5) * (1 - s);
    return (whole + swung) * song.seconds_per_beat();
}

std::vector<Note> humanise(const std::vector<GridNote>& grid, const Song& song, bool drums, Rng& rng) {
    std::vector<Note> notes;
    notes.reserve(grid.size());
    double sigma = drums ? 0.002 : 0.004;
    double limit = drums ? 0.005 : 0.010;
    for (const GridNote& g : grid) {
        Note note;
        double onset = swung_seconds(g.beat, song) + g.shift;
        double end = swung_seconds(g.beat + g.length, song) + g.shift;
        onset += std::clamp(rng.normal(0, sigma), -limit, limit);
        note.onset = std::max(0.0, onset);
        note.duration = std::max(0.02, end - onset);
        note.key = g.key;
        note.velocity = std::clamp(g.velocity + rng.uniform_int(-10, 10), 1, 127);
        notes.push_back(note);
    }
    std::stable_sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) { return a.onset < b.onset; });
    return notes;
}

std::vector<int> program_range(int first, int last, int except = -1) {
    std::vector<int> programs;
    for (int p = first; p <= last; ++p)
        if (p != except) programs.push_back(p);
    return programs;
}

}  // namespace

std::string instrument_class_name(InstrumentClass instrument_class) {
    switch (instrument_class) {
        case InstrumentClass::kPiano: return "piano";
        case InstrumentClass::kChromaticPercussion: return "chromatic_percussion";
        case InstrumentClass::kOrgan: return "organ";
        case InstrumentClass::kGuitar: return "guitar";
        case InstrumentClass::kBass: return "bass";
        case InstrumentClass::kStrings: return "strings";
        case InstrumentClass::kVoice: return "voice";
        case InstrumentClass::kBrass: return "brass";
        case InstrumentClass::kReed: return "reed";
        case InstrumentClass::kPipe: return "pipe";
        case InstrumentClass::kSynthLead: return "synth_lead";
        case InstrumentClass::kSynthPad: return "synth_pad";
        case InstrumentClass::kDrums: return "drums";
    }
    return "unknown";
}

std::string Song::key_name() const { return kKeyNames[tonic]; }

Song generate_song(uint64_t seed, const SongRecipe& recipe) {
    Rng rng(seed);
    Song song;
    song.seed = seed;
    song.tempo_bpm = rng.uniform_int(70, 170);
    song.beats_per_bar = rng.bernoulli(0.85) ? 4 : 3;
    song.swing = rng.bernoulli(0.7) ? 0.0 : 1.0 / 3.0;
    song.tonic = rng.uniform_int(0, 11);
    song.minor = !rng.bernoulli(0.6);

    int bridge_bars = rng.bernoulli(0.5) ? 4 : 8;
    const std::pair<const char*, int> layout[] = {{"intro", 4},  {"verse", 8},           {"chorus", 8}, {"verse", 8},
                                                  {"chorus", 8}, {"bridge", bridge_bars}, {"chorus", 8}, {"outro", 4}};
    int bar = 0;
    for (const auto& [name, bars] : layout) {
        song.form.push_back({name, bar, bars});
        bar += bars;
    }
    song.total_bars = bar;

    const auto& table = song.minor ? kMinorProgressions : kMajorProgressions;
    size_t verse = rng.next() % table.size();
    size_t chorus = verse;
    while (chorus == verse) chorus = rng.next() % table.size();
    size_t other = rng.next() % table.size();
    song.progressions["verse"] = colour_progression(table[verse], rng);
    song.progressions["chorus"] = colour_progression(table[chorus], rng);
    std::vector<std::string> bridge = {song.minor ? "VI" : "IV"};
    for (size_t i = 1; i < 4; ++i) bridge.push_back(table[other][i % table[other].size()]);
    song.progressions["bridge"] = colour_progression(bridge, rng);
    song.progressions["intro"] = song.progressions["verse"];
    song.progressions["outro"] = song.progressions["chorus"];

    std::vector<Chord> chords = lay_out_chords(song, rng);

    std::vector<std::vector<int>> kick_steps;
    std::vector<GridNote> drums = write_drums(song, rng, kick_steps);
    song.parts.push_back({"drums", InstrumentClass::kDrums, {}, humanise(drums, song, true, rng)});
    song.parts.push_back({"bass", InstrumentClass::kBass, program_range(32, 39),
                          humanise(write_bass(song, chords, kick_steps, rng), song, false, rng)});
    song.parts.push_back(
        {"piano", InstrumentClass::kPiano, program_range(0, 7), humanise(write_piano(song, chords, rng), song, false, rng)});
    bool power_chords = rng.bernoulli(0.3);
    std::vector<int> guitar_programs = power_chords ? program_range(29, 30) : program_range(24, 28);
    if (!power_chords) guitar_programs.push_back(31);
    song.parts.push_back({"guitar", InstrumentClass::kGuitar, guitar_programs,
                          humanise(write_guitar(song, chords, power_chords, rng), song, false, rng)});

    std::vector<bool> vocal_sections;
    for (const Section& section : song.form) vocal_sections.push_back(section.name == "verse" || section.name == "chorus");
    if (recipe.lead) {
        MelodyStyle voice{55, 79, {0.5, 1, 1.5, 2, 0.25}, {0.35, 0.35, 0.10, 0.15, 0.05}};
        song.parts.push_back({"lead", InstrumentClass::kVoice, {52, 53, 54, 85},
                              humanise(write_melody(song, chords, voice, vocal_sections, rng), song, false, rng)});
    }
    if (recipe.extras) {
        struct Extra {
            const char* role;
            InstrumentClass instrument_class;
            std::vector<int> programs;
        };
        std::vector<int> strings = program_range(40, 44);
        for (int p = 48; p <= 51; ++p) strings.push_back(p);
        std::vector<Extra> kinds = {{"pad", InstrumentClass::kStrings, strings},
                                    {"pad", InstrumentClass::kSynthPad, program_range(88, 95)},
                                    {"pad", InstrumentClass::kOrgan, program_range(16, 20)},
                                    {"stabs", InstrumentClass::kBrass, program_range(56, 63)},
                                    {"counter", InstrumentClass::kReed, program_range(64, 71)},
                                    {"counter", InstrumentClass::kPipe, program_range(72, 79)},
                                    {"arpeggio", InstrumentClass::kChromaticPercussion, program_range(8, 15)},
                                    {"counter", InstrumentClass::kSynthLead, program_range(80, 87, 85)}};
        int count = rng.uniform_int(1, 3);
        for (int i = 0; i < count; ++i) {
            size_t pick = rng.next() % kinds.size();
            Extra extra = kinds[pick];
            kinds.erase(kinds.begin() + pick);
            // Always in choruses, elsewhere in half of the section types.
            std::map<std::string, bool> plays;
            std::vector<bool> active;
            for (const Section& section : song.form) {
                if (!plays.count(section.name)) plays[section.name] = section.name == "chorus" || rng.bernoulli(0.5);
                active.push_back(plays[section.name]);
            }
            std::string role = extra.role;
            std::vector<GridNote> grid;
            if (role == "pad") {
                grid = write_pad(song, chords, active, rng);
            } else if (role == "stabs") {
                grid = write_stabs(song, chords, active, rng);
            } else if (role == "arpeggio") {
                grid = write_arpeggio(song, chords, active, rng);
            } else {
                int low = extra.instrument_class == InstrumentClass::kPipe ? 67 : extra.instrument_class == InstrumentClass::kReed ? 50 : 60;
                MelodyStyle counter{low, low + 24, {1, 2, 3, 0.5}, {0.3, 0.4, 0.15, 0.15}};
                grid = write_melody(song, chords, counter, active, rng);
            }
            song.parts.push_back({role, extra.instrument_class, extra.programs, humanise(grid, song, false, rng)});
        }
    }
    return song;
}

uint64_t note_hash(const Song& song) {
    uint64_t hash = 1469598103934665603ULL;
    auto mix = [&](int64_t value) {
        for (int i = 0; i < 8; ++i) {
            hash ^= static_cast<uint64_t>(value >> (8 * i)) & 0xFF;
            hash *= 1099511628211ULL;
        }
    };
    for (const Part& part : song.parts) {
        for (char c : part.role) mix(c);
        for (const Note& note : part.notes) {
            mix(note.key);
            mix(note.velocity);
            mix(static_cast<int64_t>(std::llround(note.onset * 1000)));
        }
    }
    return hash;
}

int pick_window_start_bar(const Song& song, double window_seconds, uint64_t seed) {
    double bar_seconds = song.seconds_per_bar();
    std::vector<int> starts;
    for (int bar = 0; bar * bar_seconds + window_seconds <= song.length_seconds() + 1e-9; ++bar) {
        double start = bar * bar_seconds, end = start + window_seconds;
        for (const Section& section : song.form) {
            if (section.name != "verse" && section.name != "chorus") continue;
            double section_start = section.first_bar * bar_seconds;
            double section_end = (section.first_bar + section.bars) * bar_seconds;
            if (start < section_end && end > section_start) {
                starts.push_back(bar);
                break;
            }
        }
    }
    if (starts.empty()) return 0;
    Rng rng(splitmix64(seed ^ 0x77696E646F77ULL));
    return rng.pick(starts);
}

}  // namespace onestep::render
