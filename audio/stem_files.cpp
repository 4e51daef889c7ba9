// Directory scans for stem folders.
#include "audio/stem_files.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

bool is_audio_file(const fs::path& path) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* accepted : kAudioExtensions)
        if (extension == accepted) return true;
    return false;
}

}  // namespace

std::map<std::string, std::string> audio_files_in(const std::string& folder) {
    std::map<std::string, std::string> files;
    std::error_code error;
    if (!fs::is_directory(folder, error)) return files;
    for (const DirectoryEntry& entry : list_directory(folder)) {
        if (!entry.is_regular_file || entry.is_hidden() || !is_audio_file(entry.name)) continue;
        std::string stem = fs::path(entry.name).stem().string();
        auto [place, inserted] = files.emplace(stem, entry.path);
        if (!inserted)
            throw UserError("two audio files for '" + stem + "' in " + folder + ": " + place->second + " and " +
                            entry.path);
    }
    return files;
}

std::vector<std::string> subfolders_of(const std::string& folder) {
    std::vector<std::string> out;
    for (const DirectoryEntry& entry : list_directory(folder))
        if (entry.is_directory && !entry.is_hidden()) out.push_back(entry.path);
    return out;
}

std::string join_names(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}

}  // namespace onestep
