// The onestep command line: one entry point shared by the real binary and the test binary.
#pragma once

namespace onestep::cli {

// Parses argv, runs the subcommand, turns errors into one line and an exit status:
// 0 success, 1 internal error, 2 bad input (UserError), 130 interrupted.
int run(int argc, char** argv);

}  // namespace onestep::cli
