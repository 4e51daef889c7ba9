// The method registry.
#include "core/registry.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "core/error.hpp"

namespace onestep {
namespace {

std::map<std::string, MethodInfo>& table() {
    static std::map<std::string, MethodInfo> methods;
    return methods;
}

}  // namespace

void register_method(MethodInfo info) {
    auto& methods = table();
    if (methods.count(info.name) != 0) throw std::logic_error("method registered twice: " + info.name);
    std::string name = info.name;
    methods.emplace(name, std::move(info));
}

const MethodInfo& find_method(const std::string& name) {
    const auto& methods = table();
    auto found = methods.find(name);
    if (found != methods.end()) return found->second;
    std::string known;
    for (const auto& [key, info] : methods) known += (known.empty() ? "" : ", ") + key;
    throw UserError("unknown method '" + name + "'; registered methods: " + (known.empty() ? "none" : known));
}

std::vector<const MethodInfo*> registered_methods() {
    std::vector<const MethodInfo*> list;
    for (const auto& [name, info] : table()) list.push_back(&info);
    return list;
}

}  // namespace onestep
