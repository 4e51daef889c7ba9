// Files and folders: whole-file writes that are atomic (temporary file, fsync, rename), so a reader
// or a crash sees the old file or the complete new one; and folder listing and removal written on
// POSIX calls. The folder helpers exist because the PyTorch 2.x wheels export a statically linked
// copy of libstdc++'s std::filesystem iterators (pytorch/pytorch#133437): calls into
// std::filesystem::remove_all and the directory iterators can bind to that copy, whose layout does
// not match the system's libstdc++. Code here lists and removes folders only through these.
#pragma once
#include <string>
#include <vector>

namespace onestep {

// Throws UserError naming PATH and the OS reason when it cannot be written; leaves no PATH.tmp.
void write_file_atomic(const std::string& path, const std::string& contents);

struct DirectoryEntry {
    std::string name;          // the entry's name inside the folder
    std::string path;          // folder + "/" + name
    bool is_directory = false;  // following symbolic links, as std::filesystem::is_directory
    bool is_regular_file = false;

    // A dot-file or dot-folder (".DS_Store", ".git"): folder scans skip these.
    bool is_hidden() const { return !name.empty() && name[0] == '.'; }
};

// The entries of DIR except "." and "..", sorted by name. Throws UserError naming DIR and the OS
// reason when it cannot be read.
std::vector<DirectoryEntry> list_directory(const std::string& dir);

// Paths (relative to DIR, '/'-separated) of every regular file under DIR, sorted; symbolic links to
// folders are not followed. Throws UserError as list_directory does.
std::vector<std::string> list_files_recursive(const std::string& dir);

// Removes PATH and, for a folder, everything under it, without following symbolic links. A missing
// PATH is not an error. Returns false when something could not be removed, with the first reason in
// *ERROR when given; never throws.
bool remove_tree(const std::string& path, std::string* error = nullptr) noexcept;

}  // namespace onestep
