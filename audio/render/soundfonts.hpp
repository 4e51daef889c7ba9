// Soundfonts for the stems renderer: discovery in the Debian soundfont folders, the pool of each
// split, and which General MIDI programs and drum kits a loaded soundfont really has.
//
//   onestep::render::SoundFontPool pool = onestep::render::soundfont_pool("test-ood", false);
//   std::cout << pool.describe();                           // printed before rendering
//   std::vector<int> usable = onestep::render::present_programs(presets, {24, 25, 26});
#pragma once
#include <string>
#include <vector>

typedef struct _fluid_sfont_t fluid_sfont_t;

namespace onestep::render {

struct PresetInfo {
    int bank = 0;
    int program = 0;
    std::string name;
};

// The soundfont files a split draws from. DISJOINT is false when the split's own pool was not
// installed and everything installed was used instead; NOTES say what was missing.
struct SoundFontPool {
    std::string split;
    std::vector<std::string> paths;
    bool disjoint = true;
    std::vector<std::string> notes;
    std::string describe() const;
};

// $ONESTEP_SOUNDFONT_DIRS (colon-separated) or the folders Debian's soundfont packages install
// into (/usr/share/sounds/sf2, /usr/share/sounds/sf3).
std::vector<std::string> soundfont_dirs();

// The path of FILE_NAME in the first folder that has it; "" when none does.
std::string find_soundfont(const std::string& file_name);

// train/valid/test/test-id: FluidR3_GM.sf2 + MuseScore_General.sf3; test-ood: TimGM6mb.sf2;
// TIMGM_ONLY (the ci size): TimGM6mb.sf2 for every split. UserError when nothing is installed.
SoundFontPool soundfont_pool(const std::string& split, bool timgm_only);

// Every preset of a loaded soundfont (fluid_sfont_iteration_start/next).
std::vector<PresetInfo> enumerate_presets(fluid_sfont_t* sfont);

// The programs of CANDIDATES that bank 0 of PRESETS holds, in the order of CANDIDATES.
std::vector<int> present_programs(const std::vector<PresetInfo>& presets, const std::vector<int>& candidates);

// Drum kits: the presets of bank 128.
std::vector<PresetInfo> drum_kits(const std::vector<PresetInfo>& presets);

// The name of BANK:PROGRAM in PRESETS, "" when absent.
std::string preset_name(const std::vector<PresetInfo>& presets, int bank, int program);

}  // namespace onestep::render
