// Soundfont discovery, per-split pools with a visible fallback, and preset enumeration through
// libfluidsynth's soundfont iteration API.
#include "audio/render/soundfonts.hpp"

#include <fluidsynth.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <tuple>

#include "core/error.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace onestep::render {

std::string SoundFontPool::describe() const {
    std::ostringstream out;
    out << "soundfont pool (" << split << "):";
    for (const std::string& path : paths) out << " " << path;
    if (!disjoint) out << " [not disjoint from the other splits]";
    out << "\n";
    for (const std::string& note : notes) out << "  note: " << note << "\n";
    return out.str();
}

std::vector<std::string> soundfont_dirs() {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("ONESTEP_SOUNDFONT_DIRS"); env != nullptr && *env != '\0') {
        std::stringstream list(env);
        std::string dir;
        while (std::getline(list, dir, ':'))
            if (!dir.empty()) dirs.push_back(dir);
        return dirs;
    }
    return {"/usr/share/sounds/sf2", "/usr/share/sounds/sf3"};
}

std::string find_soundfont(const std::string& file_name) {
    for (const std::string& dir : soundfont_dirs()) {
        fs::path candidate = fs::path(dir) / file_name;
        std::error_code error;
        if (fs::is_regular_file(candidate, error)) return candidate.string();
    }
    return "";
}

SoundFontPool soundfont_pool(const std::string& split, bool timgm_only) {
    SoundFontPool pool;
    pool.split = split;
    std::vector<std::string> wanted;
    if (timgm_only || split == "test-ood")
        wanted = {"TimGM6mb.sf2"};
    else
        wanted = {"FluidR3_GM.sf2", "MuseScore_General.sf3"};
    for (const std::string& name : wanted) {
        std::string path = find_soundfont(name);
        if (path.empty())
            pool.notes.push_back(name + " is not installed; the pool goes on without it");
        else
            pool.paths.push_back(path);
    }
    if (pool.paths.empty()) {
        // Fall back to whatever is installed, and say the splits now share soundfonts.
        for (const std::string& dir : soundfont_dirs()) {
            std::error_code error;
            if (!fs::is_directory(dir, error)) continue;
            for (const DirectoryEntry& entry : list_directory(dir)) {
                std::string extension = fs::path(entry.name).extension().string();
                if (entry.is_regular_file && (extension == ".sf2" || extension == ".sf3"))
                    pool.paths.push_back(entry.path);
            }
        }
        std::sort(pool.paths.begin(), pool.paths.end());
        pool.disjoint = false;
        if (pool.paths.empty()) {
            std::string searched;
            for (const std::string& dir : soundfont_dirs()) searched += (searched.empty() ? "" : ", ") + dir;
            throw UserError("no soundfont (.sf2/.sf3) found in " + searched +
                            "; install fluid-soundfont-gm or timgm6mb-soundfont, or set ONESTEP_SOUNDFONT_DIRS");
        }
    }
    return pool;
}

std::vector<PresetInfo> enumerate_presets(fluid_sfont_t* sfont) {
    std::vector<PresetInfo> presets;
    fluid_sfont_iteration_start(sfont);
    while (fluid_preset_t* preset = fluid_sfont_iteration_next(sfont)) {
        const char* name = fluid_preset_get_name(preset);
        presets.push_back({fluid_preset_get_banknum(preset), fluid_preset_get_num(preset), name ? name : ""});
    }
    std::sort(presets.begin(), presets.end(),
              [](const PresetInfo& a, const PresetInfo& b) { return std::tie(a.bank, a.program) < std::tie(b.bank, b.program); });
    return presets;
}

std::vector<int> present_programs(const std::vector<PresetInfo>& presets, const std::vector<int>& candidates) {
    std::vector<int> present;
    for (int program : candidates)
        for (const PresetInfo& preset : presets)
            if (preset.bank == 0 && preset.program == program) {
                present.push_back(program);
                break;
            }
    return present;
}

std::vector<PresetInfo> drum_kits(const std::vector<PresetInfo>& presets) {
    std::vector<PresetInfo> kits;
    for (const PresetInfo& preset : presets)
        if (preset.bank == 128) kits.push_back(preset);
    return kits;
}

std::string preset_name(const std::vector<PresetInfo>& presets, int bank, int program) {
    for (const PresetInfo& preset : presets)
        if (preset.bank == bank && preset.program == program) return preset.name;
    return "";
}

}  // namespace onestep::render
