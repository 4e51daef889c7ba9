// The onestep binary: registers the built-in methods and hands argv to the CLI.
#include "cli/app.hpp"
#include "core/registry.hpp"
#include "core/runtime.hpp"

int main(int argc, char** argv) {
    onestep::reexec_with_passive_openmp(argv);
    onestep::keep_freed_memory();
    onestep::register_builtin_methods();
    return onestep::cli::run(argc, argv);
}
