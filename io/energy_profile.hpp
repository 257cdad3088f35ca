#pragma once
// Hardware profiles of the memory-inclusive energy model (docs/energy.md, "Hardware profiles"):
// a JSON object whose numbers replace HardwareProfile's defaults. Every key is known or an error
// (a misspelt key would silently keep a default); `sources` and keys starting with `_` are
// comments.
#include <string>

#include "sim/energy_models.hpp"

namespace quantal {

// Throws InputError naming the file and the key for an unreadable file, bad JSON, an unknown key
// or a value out of range.
HardwareProfile read_hardware_profile(const std::string& path);
HardwareProfile parse_hardware_profile(const std::string& text, const std::string& where);

} // namespace quantal
