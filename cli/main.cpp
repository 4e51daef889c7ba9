// The onestep binary: registers the built-in methods and hands argv to the CLI.
#include "cli/app.hpp"
#include "core/registry.hpp"

int main(int argc, char** argv) {
    onestep::register_builtin_methods();
    return onestep::cli::run(argc, argv);
}
