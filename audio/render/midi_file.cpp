// Writing Standard MIDI Files by hand: variable-length delta times, note on/off, program change,
// tempo and time-signature meta events.
#include "audio/render/midi_file.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace onestep::render {
namespace {

constexpr int kTicksPerQuarter = 480;

void put_u32(std::string& out, uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xFF));
}

void put_variable_length(std::string& out, uint32_t value) {
    char bytes[5];
    int count = 0;
    bytes[count++] = static_cast<char>(value & 0x7F);
    while ((value >>= 7) != 0) bytes[count++] = static_cast<char>(0x80 | (value & 0x7F));
    while (count > 0) out.push_back(bytes[--count]);
}

std::string chunk(const char* kind, const std::string& body) {
    std::string out(kind, 4);
    put_u32(out, static_cast<uint32_t>(body.size()));
    return out + body;
}

void put_meta(std::string& body, int type, const std::string& data) {
    put_variable_length(body, 0);
    body.push_back(static_cast<char>(0xFF));
    body.push_back(static_cast<char>(type));
    put_variable_length(body, static_cast<uint32_t>(data.size()));
    body += data;
}

std::string end_of_track(std::string body) {
    put_variable_length(body, 0);
    body += std::string("\xFF\x2F\x00", 3);
    return body;
}

}  // namespace

std::string standard_midi_file(const std::vector<MidiTrack>& tracks, int tempo_bpm, int beats_per_bar,
                               double start_seconds, double seconds) {
    const double ticks_per_second = tempo_bpm / 60.0 * kTicksPerQuarter;
    auto tick_of = [&](double time) {
        double clipped = std::clamp(time - start_seconds, 0.0, seconds);
        return static_cast<int64_t>(std::llround(clipped * ticks_per_second));
    };

    std::string header;
    header += std::string("\x00\x01", 2);   // format 1
    header.push_back(static_cast<char>(((tracks.size() + 1) >> 8) & 0xFF));
    header.push_back(static_cast<char>((tracks.size() + 1) & 0xFF));
    header.push_back(static_cast<char>(kTicksPerQuarter >> 8));
    header.push_back(static_cast<char>(kTicksPerQuarter & 0xFF));
    std::string file = chunk("MThd", header);

    std::string tempo_track;
    uint32_t microseconds_per_quarter = static_cast<uint32_t>(std::llround(60e6 / tempo_bpm));
    std::string tempo_data;
    for (int shift = 16; shift >= 0; shift -= 8) tempo_data.push_back(static_cast<char>((microseconds_per_quarter >> shift) & 0xFF));
    put_meta(tempo_track, 0x51, tempo_data);
    put_meta(tempo_track, 0x58, std::string{static_cast<char>(beats_per_bar), 2, 24, 8});
    file += chunk("MTrk", end_of_track(tempo_track));

    for (const MidiTrack& track : tracks) {
        struct Event {
            int64_t tick;
            int order;   // note-offs before note-ons at the same tick
            uint8_t status, data1, data2;
        };
        std::vector<Event> events;
        const uint8_t channel = static_cast<uint8_t>(track.channel & 0x0F);
        for (const Note& note : track.notes) {
            if (note.onset >= start_seconds + seconds || note.onset + note.duration <= start_seconds) continue;
            int64_t on = tick_of(note.onset), off = std::max(tick_of(note.onset + note.duration), on + 1);
            events.push_back({on, 1, static_cast<uint8_t>(0x90 | channel), static_cast<uint8_t>(note.key),
                              static_cast<uint8_t>(note.velocity)});
            events.push_back({off, 0, static_cast<uint8_t>(0x80 | channel), static_cast<uint8_t>(note.key), 0});
        }
        std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
            return a.tick != b.tick ? a.tick < b.tick : a.order < b.order;
        });
        std::string body;
        put_meta(body, 0x03, track.name);
        if (!track.is_drum) {
            put_variable_length(body, 0);
            body.push_back(static_cast<char>(0xC0 | channel));
            body.push_back(static_cast<char>(track.program & 0x7F));
        }
        int64_t previous = 0;
        for (const Event& event : events) {
            put_variable_length(body, static_cast<uint32_t>(event.tick - previous));
            previous = event.tick;
            body.push_back(static_cast<char>(event.status));
            body.push_back(static_cast<char>(event.data1));
            body.push_back(static_cast<char>(event.data2));
        }
        file += chunk("MTrk", end_of_track(body));
    }
    return file;
}

}  // namespace onestep::render
