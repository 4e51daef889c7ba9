// Folder listing and removal on POSIX calls: sorted entries with their kinds, recursive file lists
// that do not follow links, removal of whole trees (links removed, never followed), and errors
// that name the folder.
#include <catch2/catch.hpp>

#include <filesystem>

#include "core/error.hpp"
#include "core/files.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using onestep::test::TempDir;
using onestep::test::user_error_message;

TEST_CASE("list_directory sorts entries by name and tells folders from files", "[unit]") {
    TempDir dir;
    fs::create_directories(dir / "b-folder/inner");
    onestep::test::write_text(dir / "c.txt", "c");
    onestep::test::write_text(dir / "a.txt", "a");
    onestep::test::write_text(dir / ".hidden", "h");
    fs::create_directory_symlink(dir / "b-folder", dir / "d-link");

    std::vector<onestep::DirectoryEntry> entries = onestep::list_directory(dir.path());
    REQUIRE(entries.size() == 5);
    CHECK(entries[0].name == ".hidden");
    CHECK(entries[0].is_hidden());
    CHECK_FALSE(entries[1].is_hidden());
    CHECK(entries[1].name == "a.txt");
    CHECK(entries[1].path == dir / "a.txt");
    CHECK(entries[1].is_regular_file);
    CHECK_FALSE(entries[1].is_directory);
    CHECK(entries[2].name == "b-folder");
    CHECK(entries[2].is_directory);
    CHECK(entries[3].name == "c.txt");
    CHECK(entries[4].name == "d-link");
    CHECK(entries[4].is_directory);   // links are followed for the kind, as std::filesystem does

    CHECK(onestep::list_directory(dir.path() + "/").front().path == dir / ".hidden");
}

TEST_CASE("list_files_recursive lists regular files without following folder links", "[unit]") {
    TempDir dir;
    fs::create_directories(dir / "x/y");
    onestep::test::write_text(dir / "x/y/deep.txt", "1");
    onestep::test::write_text(dir / "x/mid.txt", "2");
    onestep::test::write_text(dir / "top.txt", "3");
    fs::create_directory_symlink(dir / "x", dir / "z-link");
    std::vector<std::string> files = onestep::list_files_recursive(dir.path());
    CHECK(files == std::vector<std::string>{"top.txt", "x/mid.txt", "x/y/deep.txt"});
}

TEST_CASE("listing a missing folder names it", "[unit]") {
    TempDir dir;
    std::string missing = dir / "nope";
    std::string message = user_error_message([&] { onestep::list_directory(missing); });
    CHECK_THAT(message, Catch::Contains(missing));
    CHECK_THAT(message, Catch::Contains("No such file"));
}

TEST_CASE("remove_tree removes a whole tree and leaves link targets alone", "[unit]") {
    TempDir dir;
    fs::create_directories(dir / "keep");
    onestep::test::write_text(dir / "keep/precious.txt", "p");
    fs::create_directories(dir / "tree/a/b/c");
    onestep::test::write_text(dir / "tree/a/file.txt", "x");
    onestep::test::write_text(dir / "tree/a/b/c/file.txt", "y");
    fs::create_directory_symlink(dir / "keep", dir / "tree/a/link-to-keep");
    fs::create_symlink(dir / "keep/precious.txt", dir / "tree/file-link");

    std::string error;
    CHECK(onestep::remove_tree(dir / "tree", &error));
    CHECK(error.empty());
    CHECK_FALSE(fs::exists(dir / "tree"));
    CHECK(fs::exists(dir / "keep/precious.txt"));

    // A missing path and a plain file.
    CHECK(onestep::remove_tree(dir / "tree"));
    CHECK(onestep::remove_tree(dir / "keep/precious.txt"));
    CHECK_FALSE(fs::exists(dir / "keep/precious.txt"));
}
