// Atomic whole-file writes through the same writer the tensor files use; folder listing and
// removal on opendir/readdir/unlink/rmdir (see the header for why not std::filesystem).
#include "core/files.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/dtype_names.hpp"
#include "core/error.hpp"

namespace onestep {
namespace {

// Closes the DIR* on every path out.
class DirectoryHandle {
  public:
    explicit DirectoryHandle(const std::string& dir) : handle_(::opendir(dir.c_str())) {}
    ~DirectoryHandle() {
        if (handle_ != nullptr) ::closedir(handle_);
    }
    DirectoryHandle(const DirectoryHandle&) = delete;
    DirectoryHandle& operator=(const DirectoryHandle&) = delete;
    DIR* get() const { return handle_; }

  private:
    DIR* handle_;
};

std::string join(const std::string& dir, const std::string& name) {
    if (dir.empty() || dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

// The names in DIR except "." and ".."; 0, or the errno of opendir/readdir (taken before closedir).
int read_names(const std::string& dir, std::vector<std::string>& names) {
    DirectoryHandle handle(dir);
    if (handle.get() == nullptr) return errno;
    errno = 0;
    while (const dirent* entry = ::readdir(handle.get())) {
        if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) names.emplace_back(entry->d_name);
        errno = 0;
    }
    return errno;
}

[[noreturn]] void throw_unreadable(const std::string& dir, int error_number) {
    throw UserError("cannot list the folder " + dir + ": " + std::strerror(error_number));
}

void collect_files(const std::string& dir, const std::string& relative, std::vector<std::string>& out) {
    for (const DirectoryEntry& entry : list_directory(dir)) {
        std::string inside = relative.empty() ? entry.name : relative + "/" + entry.name;
        struct stat info {};
        if (::lstat(entry.path.c_str(), &info) != 0) continue;   // gone since the listing
        if (S_ISDIR(info.st_mode)) {
            collect_files(entry.path, inside, out);
        } else if (S_ISREG(info.st_mode)) {
            out.push_back(inside);
        }
    }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& contents) {
    detail::AtomicFileWriter writer(path);
    writer.write(contents.data(), contents.size());
    writer.commit();
}

std::vector<DirectoryEntry> list_directory(const std::string& dir) {
    std::vector<std::string> names;
    if (int error_number = read_names(dir, names)) throw_unreadable(dir, error_number);
    std::sort(names.begin(), names.end());
    std::vector<DirectoryEntry> entries;
    entries.reserve(names.size());
    for (std::string& name : names) {
        DirectoryEntry entry;
        entry.path = join(dir, name);
        entry.name = std::move(name);
        struct stat info {};
        if (::stat(entry.path.c_str(), &info) == 0) {
            entry.is_directory = S_ISDIR(info.st_mode);
            entry.is_regular_file = S_ISREG(info.st_mode);
        }
        entries.push_back(std::move(entry));
    }
    return entries;
}

std::vector<std::string> list_files_recursive(const std::string& dir) {
    std::vector<std::string> files;
    collect_files(dir, "", files);
    std::sort(files.begin(), files.end());
    return files;
}

bool remove_tree(const std::string& path, std::string* error) noexcept {
    try {
        auto fail = [&](const std::string& what) {
            if (error != nullptr && error->empty()) *error = "cannot remove " + what + ": " + std::strerror(errno);
            return false;
        };
        struct stat info {};
        if (::lstat(path.c_str(), &info) != 0) return errno == ENOENT ? true : fail(path);
        if (!S_ISDIR(info.st_mode)) return ::unlink(path.c_str()) == 0 || errno == ENOENT ? true : fail(path);
        bool removed = true;
        std::vector<std::string> names;
        if (int error_number = read_names(path, names)) {
            errno = error_number;
            removed = fail(path);
        }
        for (const std::string& name : names) removed = remove_tree(join(path, name), error) && removed;
        if (::rmdir(path.c_str()) != 0 && errno != ENOENT) removed = fail(path);
        return removed;
    } catch (...) {   // std::bad_alloc while building names or the message
        return false;
    }
}

}  // namespace onestep
