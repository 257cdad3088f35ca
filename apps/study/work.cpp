#include "apps/study/work.hpp"

#include <algorithm>
#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>
#include <sstream>
#include <stdexcept>

#include "io/ledger_archive.hpp"
#include "io/sealed_file.hpp"
#include "sim/errors.hpp"

namespace quantal::study {

template <class A> void serialize(A& a, UnitResult& r) { a(r.unit, r.correct, r.ledger); }
template <class A> void serialize(A& a, Tally& t) { a(t.correct, t.ledger, t.any); }
template <class A> void serialize(A& a, StudyState& s) { a(s.identity, s.observed, s.samples, s.done, s.tallies); }

namespace {

constexpr SealedKind state_kind{{'Q', 'N', 'T', 'L', 'S', 'W', 'E', 'P'}, StudyState::format_version, "sweep state"};

template <class T> std::string to_bytes(const T& value) {
    std::ostringstream out(std::ios::binary);
    {
        cereal::PortableBinaryOutputArchive archive(out);
        archive(const_cast<T&>(value)); // serialize() is one function for both directions
    }
    return std::move(out).str();
}

template <class T> T from_bytes(const std::string& bytes, const std::string& where) {
    T value;
    try {
        std::istringstream in(bytes, std::ios::binary);
        cereal::PortableBinaryInputArchive archive(in);
        archive(value);
        if (in.tellg() != std::streampos(std::streamoff(bytes.size())))
            throw InputError(where + ": has bytes after its contents");
    } catch (const cereal::Exception& e) {
        throw InputError(where + ": cannot be decoded (" + e.what() + ")");
    }
    return value;
}

} // namespace

std::vector<WorkUnit> work_units(std::span<const Configuration> plan, std::uint64_t samples, std::uint64_t block) {
    if (block == 0) throw std::logic_error("work_units: block of 0 samples");
    std::vector<WorkUnit> out;
    for (std::size_t c = 0; c < plan.size(); ++c) {
        if (plan[c].same_as) continue;
        for (std::uint64_t first = 0; first < samples; first += block)
            out.push_back({c, first, std::min(block, samples - first)});
    }
    return out;
}

StudyState::StudyState(std::vector<std::pair<std::string, std::string>> id, std::size_t units,
                       std::size_t configurations, std::uint64_t observed_ticks, std::uint64_t sample_count)
    : identity(std::move(id)), observed(observed_ticks), samples(sample_count), done(units, 0),
      tallies(configurations) {
    for (auto& t : tallies) t.correct.assign(observed * samples, 0);
}

void StudyState::add(const WorkUnit& unit, const UnitResult& result) {
    if (done.at(result.unit)) throw std::logic_error("study: unit " + std::to_string(result.unit) + " added twice");
    Tally& t = tallies.at(unit.configuration);
    if (result.correct.size() != observed * unit.count || unit.first + unit.count > samples)
        throw std::logic_error("study: a unit's result does not fit its tally");
    for (std::uint64_t o = 0; o < observed; ++o)
        std::copy_n(result.correct.begin() + std::ptrdiff_t(o * unit.count), unit.count,
                    t.correct.begin() + std::ptrdiff_t(o * samples + unit.first));
    if (!t.any) t.ledger = result.ledger;
    else t.ledger += result.ledger;
    t.any = true;
    done[result.unit] = 1;
}

std::size_t StudyState::units_done() const { return std::size_t(std::count(done.begin(), done.end(), 1)); }

void write_state(const std::string& path, const StudyState& state) { write_sealed(path, state_kind, to_bytes(state)); }

StudyState read_state(const std::string& path) {
    return from_bytes<StudyState>(read_sealed(path, state_kind), "sweep state " + path);
}

std::string encode(const UnitResult& result) { return to_bytes(result); }

UnitResult decode_unit_result(const std::string& bytes) { return from_bytes<UnitResult>(bytes, "a unit's result"); }

} // namespace quantal::study
