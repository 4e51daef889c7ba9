// Helpers shared by the data tests: setting environment variables for the length of one test
// (and user_error_message from support.hpp, under the data_test namespace).
#pragma once
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "support.hpp"

namespace onestep::data_test {

using onestep::test::user_error_message;

// Sets an environment variable and restores its previous value (or absence) on destruction.
class ScopedEnvironment {
  public:
    ScopedEnvironment(std::string name, const std::string& value) : name_(std::move(name)) {
        const char* previous = std::getenv(name_.c_str());
        had_value_ = previous != nullptr;
        if (had_value_) previous_ = previous;
        ::setenv(name_.c_str(), value.c_str(), 1);
    }
    ~ScopedEnvironment() {
        if (had_value_) {
            ::setenv(name_.c_str(), previous_.c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }
    ScopedEnvironment(const ScopedEnvironment&) = delete;
    ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

  private:
    std::string name_;
    std::string previous_;
    bool had_value_ = false;
};

}   // namespace onestep::data_test
