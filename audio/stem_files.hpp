// Finding stem files in MUSDB-style folders: <song>/{mixture,<stem>}.{wav,flac,ogg}. Shared by
// the stem dataset, the evaluator and the oracle baselines.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace onestep {

// The file name of the mixture inside a song folder, without extension.
inline constexpr const char* kMixtureStem = "mixture";
// The audio files a stem folder may hold.
inline constexpr const char* kAudioExtensions[] = {".wav", ".flac", ".ogg"};

// Basename -> path for the audio files (.wav, .flac, .ogg; hidden files skipped) directly in
// FOLDER; two files with one basename are a UserError naming both. A missing folder gives {}.
std::map<std::string, std::string> audio_files_in(const std::string& folder);

// The non-hidden subfolders of FOLDER, sorted.
std::vector<std::string> subfolders_of(const std::string& folder);

// "a, b, c".
std::string join_names(const std::vector<std::string>& names);

}  // namespace onestep
