#include "io/energy_profile.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/errors.hpp"

namespace quantal {

HardwareProfile parse_hardware_profile(const std::string& text, const std::string& where) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw InputError(where + ": not JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw InputError(where + ": a hardware profile is a JSON object");
    HardwareProfile hw;
    hw.name = where;
    for (const auto& item : j.items()) {
        // named references, not a structured binding: clang 14 (the fuzz build) cannot capture those
        const std::string& key = item.key();
        const nlohmann::json& value = item.value();
        const std::string at = where + ": '" + key + "'";
        auto number = [&](double& out, double lo, double hi) {
            if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < lo ||
                value.get<double>() > hi)
                throw InputError(at + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
            out = value.get<double>();
        };
        auto bits = [&](unsigned& out) {
            if (!value.is_number_integer() || value.get<long long>() < 1 || value.get<long long>() > 64)
                throw InputError(at + " must be a whole number of bits in [1, 64]");
            out = unsigned(value.get<long long>());
        };
        auto choice = [&](bool& out, const char* yes, const char* no) {
            if (!value.is_string() || (value != yes && value != no))
                throw InputError(at + " must be \"" + yes + "\" or \"" + no + "\"");
            out = value == yes;
        };
        if (key == "sources" || key.rfind('_', 0) == 0) continue; // comments
        if (key == "name") {
            if (!value.is_string()) throw InputError(at + " must be a string");
            hw.name = value.get<std::string>();
        } else if (key == "e_add_pj")
            number(hw.e_add_pj, 0, 1e6);
        else if (key == "e_mult_pj")
            number(hw.e_mult_pj, 0, 1e6);
        else if (key == "e_mac_pj")
            number(hw.e_mac_pj, 0, 1e6);
        else if (key == "ram_pj_per_bit")
            number(hw.ram_pj_per_bit, 0, 1e6);
        else if (key == "ram_pj_offset")
            number(hw.ram_pj_offset, 0, 1e6);
        else if (key == "weight_bits")
            bits(hw.weight_bits);
        else if (key == "potential_bits")
            bits(hw.potential_bits);
        else if (key == "activation_bits")
            bits(hw.activation_bits);
        else if (key == "memory")
            choice(hw.global_memory, "global", "local");
        else if (key == "neuron_updates")
            choice(hw.clocked_updates, "clocked", "event_driven");
        else
            throw InputError(
                at + " is not a profile key (misspelt? comments go under \"sources\" or a key starting with '_')");
    }
    return hw;
}

HardwareProfile read_hardware_profile(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw InputError(path + ": cannot be read");
    std::ostringstream text;
    text << f.rdbuf();
    return parse_hardware_profile(text.str(), path);
}

} // namespace quantal
