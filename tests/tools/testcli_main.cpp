// The onestep CLI with the test-only methods registered as well; integration tests run it.
#include "cli/app.hpp"
#include "core/registry.hpp"
#include "core/runtime.hpp"
#include "tools/test_methods.hpp"

int main(int argc, char** argv) {
    onestep::reexec_with_passive_openmp(argv);
    onestep::keep_freed_memory();
    onestep::register_builtin_methods();
    onestep::test::register_test_methods();
    return onestep::cli::run(argc, argv);
}
