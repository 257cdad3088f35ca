#pragma once
// Two kinds of failure: the user's input is wrong (ModelError, InputError: exit code 2, one line
// naming the file and object), or quantal has a bug (std::logic_error).
#include <stdexcept>
#include <string>

namespace quantal {

// A network description is invalid: names the population/projection and the value at fault.
struct ModelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A file or stimulus cannot be used: names the file and the object inside it.
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

} // namespace quantal
