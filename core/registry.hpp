// The registry of methods by name, each with a one-line description and its option table.
// Built-in methods are registered by register_builtin_methods(); the test binary adds its own.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/method.hpp"
#include "core/options.hpp"

namespace onestep {

struct MethodInfo {
    std::string name;          // "flow", "shortcut", ...
    std::string description;   // one line for `onestep train --help`
    std::function<OptionTable()> options;         // the method's own options
    std::function<std::unique_ptr<Method>()> create;
};

void register_method(MethodInfo info);   // a second registration of a name replaces nothing: logic_error
// UserError listing the registered names (and the closest one) when NAME is unknown.
const MethodInfo& find_method(const std::string& name);
std::vector<const MethodInfo*> registered_methods();   // sorted by name

// Registers every method shipped in the onestep binary (once; later calls do nothing).
void register_builtin_methods();

}  // namespace onestep
