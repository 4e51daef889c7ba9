// Small pieces of text for messages: a tensor shape as "[1, 32, 32]", a number as the shortest
// form that reads back (1.5, not 1.500000).
#pragma once
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace onestep {

std::string shape_text(c10::IntArrayRef sizes);
std::string number_text(double value);

}  // namespace onestep
