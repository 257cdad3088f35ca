// Checkpoints (io/checkpoint.hpp, docs/checkpoints.md): a sample stopped at any tick boundary,
// saved to a file, read back and restored into another engine, ends exactly as the same sample
// run without stopping (the oracle); damaged or truncated files are refused.
#include <catch2/catch.hpp>
#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "io/checkpoint.hpp"
#include "sim/errors.hpp"
#include "sim/tick_calendar.hpp"
#include "support/random_network.hpp"
#include "support/same_result.hpp"

using namespace quantal;
using quantal::testing::random_case;

using quantal::testing::require_same;

namespace {

std::string scratch_file(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("quantal_test_checkpoint_" + name)).string();
}

// The state through a checkpoint file and back, as `quantal run --resume` gets it.
EngineState through_file(const EngineState& state, const std::string& path) {
    RunCheckpoint c;
    c.run = {{"--seed", "7"}};
    c.in_sample = true;
    c.engine = state;
    write_checkpoint(path, c);
    auto back = read_checkpoint(path);
    REQUIRE(back.run == c.run);
    REQUIRE(back.in_sample);
    return std::move(back.engine);
}

} // namespace

TEST_CASE("a sample stopped at random tick boundaries and restored equals the uninterrupted one", "[checkpoint]") {
    const std::string path = scratch_file("engine.ckpt");
    std::mt19937_64 pick(2024);
    int with_pending = 0;
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        testing::RandomNetworkOptions o;
        o.exact = seed % 2 == 0;
        o.lif = seed % 3 == 0;
        o.recurrent = true; // delayed backward and self projections: deliveries are pending at a boundary
        o.ticks = 60;
        o.release = seed % 4 == 0 ? Release{ReleaseMode::spike, 0.4} : Release{ReleaseMode::synapse, 0.3};
        const auto c = random_case(seed, o);
        const UpdatePath path_choice[] = {UpdatePath::automatic, UpdatePath::lazy, UpdatePath::sweep};
        RunOptions run;
        run.ticks = o.ticks;
        run.seed = 11;
        run.record_spikes = true;
        run.update_path = path_choice[seed % 3];
        run.observe = {5, 30, 59};
        INFO("seed " << seed);
        const auto uninterrupted = Engine(c.network).run(c.stimulus, run, 4);

        // Stopped one to three times, each time into a fresh engine through a file.
        Engine first(c.network);
        first.start(c.stimulus, run, 4);
        EngineState state;
        Tick at = 0;
        const int stops = 1 + int(seed % 3);
        for (int k = 0; k < stops; ++k) {
            at = std::min<Tick>(o.ticks - 1, at + 1 + Tick(pick() % std::uint64_t(o.ticks / stops)));
            Engine engine(c.network);
            if (k == 0) {
                first.advance(at);
                state = through_file(first.save(), path);
            } else {
                engine.restore(state, c.stimulus, run);
                engine.advance(at);
                state = through_file(engine.save(), path);
            }
            with_pending += !state.deliveries.empty();
        }
        Engine last(c.network);
        last.restore(state, c.stimulus, run);
        REQUIRE(last.advance());
        require_same(uninterrupted, last.finish());
    }
    CHECK(with_pending >= 20); // pending deliveries were carried across a checkpoint
    std::filesystem::remove(path);
}

TEST_CASE("restore refuses a state that does not fit the run", "[checkpoint]") {
    testing::RandomNetworkOptions o;
    o.ticks = 30;
    o.release = Release{ReleaseMode::synapse, 0.3};
    const auto c = random_case(3, o);
    RunOptions run;
    run.ticks = o.ticks;
    run.seed = 2;
    Engine engine(c.network);
    engine.start(c.stimulus, run, 0);
    engine.advance(10);
    const auto state = engine.save();
    Engine other(c.network);
    RunOptions seed = run;
    seed.seed = 3;
    CHECK_THROWS_AS(other.restore(state, c.stimulus, seed), InputError);
    RunOptions ticks = run;
    ticks.ticks = 31;
    CHECK_THROWS_AS(other.restore(state, c.stimulus, ticks), InputError);
    auto damaged = state;
    damaged.populations[0].to_visit.push_back(1u << 30);
    CHECK_THROWS_AS(other.restore(damaged, c.stimulus, run), InputError);
    damaged = state;
    damaged.deliveries.push_back({5, 0, 0, 0}); // before the boundary
    CHECK_THROWS_AS(other.restore(damaged, c.stimulus, run), InputError);
    other.restore(state, c.stimulus, run); // the good one still fits
    CHECK(other.next_tick() == engine.next_tick());
}

TEST_CASE("damaged, truncated and foreign checkpoint files are refused with their name", "[checkpoint]") {
    const std::string path = scratch_file("damage.ckpt");
    RunCheckpoint c;
    c.run = {{"--ticks", "10"}};
    c.completed = 3;
    c.total.populations.resize(2);
    c.total.populations[1].spikes = 99;
    write_checkpoint(path, c);
    REQUIRE(read_checkpoint(path).total.populations[1].spikes == 99);
    REQUIRE_FALSE(std::filesystem::exists(path + ".tmp"));

    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    auto write = [&](const std::string& b) { std::ofstream(path, std::ios::binary | std::ios::trunc) << b; };
    auto refused = [&](const std::string& fragment) {
        try {
            (void)read_checkpoint(path);
        } catch (const InputError& e) {
            const std::string what = e.what();
            CHECK(what.find(path) != std::string::npos);
            CHECK(what.find(fragment) != std::string::npos);
            return true;
        }
        return false;
    };
    for (std::size_t at : {std::size_t(9), std::size_t(13), std::size_t(20), bytes.size() / 2, bytes.size() - 1}) {
        auto damaged = bytes;
        damaged[at] = char(damaged[at] ^ 0x10);
        write(damaged);
        INFO("byte " << at);
        CHECK(refused("damaged"));
    }
    write(bytes.substr(0, bytes.size() - 7));
    CHECK(refused("truncated"));
    write(bytes.substr(0, 10));
    CHECK(refused("truncated"));
    write("HDF\x89 not a checkpoint at all, but long enough to have a header and a digest");
    CHECK(refused("not a quantal checkpoint"));
    std::filesystem::remove(path);
    CHECK(refused("cannot be read"));
}

TEST_CASE("tick calendar: the canonical list restores the same order of work", "[checkpoint][calendar]") {
    TickCalendar<int> cal;
    cal.reset(4);
    for (int i = 0; i < 12; ++i) cal.push(1 + (i * 5) % 11, i); // some beyond the window
    cal.at(1);
    cal.done(1);
    cal.push(9, 100);
    std::vector<std::pair<Tick, int>> list;
    cal.for_each([&](Tick t, int e) { list.push_back({t, e}); });
    REQUIRE(std::is_sorted(list.begin(), list.end(), [](auto a, auto b) { return a.first < b.first; }));
    TickCalendar<int> copy;
    copy.reset(4, 1);
    for (const auto& [t, e] : list) copy.push(t, e);
    for (Tick t = 2; t < 12; ++t) {
        INFO("tick " << t);
        REQUIRE(copy.at(t) == cal.at(t));
        copy.done(t), cal.done(t);
    }
}

namespace {

// Every fixed-type dataset of an HDF5 file, by path, as raw bytes in its native type (the
// variable-length string tables describe the network and are written once).
std::map<std::string, std::vector<unsigned char>> dataset_bytes(const std::string& path) {
    std::map<std::string, std::vector<unsigned char>> out;
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(file >= 0);
    H5Ovisit(
        file, H5_INDEX_NAME, H5_ITER_INC,
        [](hid_t root, const char* name, const H5O_info_t* info, void* data) -> herr_t {
            if (info->type != H5O_TYPE_DATASET) return 0;
            const hid_t d = H5Dopen2(root, name, H5P_DEFAULT);
            const hid_t type = H5Dget_type(d);
            if (!H5Tis_variable_str(type)) {
                const hid_t native = H5Tget_native_type(type, H5T_DIR_ASCEND);
                const hid_t space = H5Dget_space(d);
                std::vector<unsigned char> bytes(std::size_t(H5Sget_simple_extent_npoints(space)) *
                                                 H5Tget_size(native));
                if (!bytes.empty()) H5Dread(d, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
                (*static_cast<std::map<std::string, std::vector<unsigned char>>*>(data))[name] = std::move(bytes);
                H5Sclose(space);
                H5Tclose(native);
            }
            H5Tclose(type);
            H5Dclose(d);
            return 0;
        },
        &out);
    H5Fclose(file);
    return out;
}

} // namespace

TEST_CASE("a trace continued from a checkpoint's position equals the uninterrupted trace", "[checkpoint][trace]") {
    testing::RandomNetworkOptions o;
    o.ticks = 50;
    o.release = Release{ReleaseMode::synapse, 0.3};
    const auto c = random_case(12, o);
    RunOptions run;
    run.ticks = o.ticks;
    run.seed = 9;
    TraceOptions topts;
    topts.ticks_per_sample = o.ticks;
    topts.buffer_spikes = 16; // small buffers: the open sample's spikes are partly in the file, partly buffered
    topts.chunk_spikes = 8;
    RunMetadata meta;
    meta.command_line = "test";
    const std::string full = scratch_file("full.h5"), part = scratch_file("part.h5");
    constexpr std::uint64_t samples = 3;
    {
        SpikeTraceWriter trace(full, c.network, topts, meta);
        Engine engine(c.network);
        for (std::uint64_t k = 0; k < samples; ++k) {
            trace.begin_sample(k, std::int64_t(k));
            trace.end_sample(-1, engine.run(c.stimulus, run, k, &trace).ledger);
        }
        trace.finish();
    }
    const auto expected = dataset_bytes(full);
    REQUIRE(expected.at("energy/per_sample/populations/spikes").size() > 0);

    std::mt19937_64 pick(5);
    for (int trial = 0; trial < 8; ++trial) {
        const std::uint64_t stop_sample = pick() % samples;
        const Tick stop_tick = Tick(pick() % std::uint64_t(o.ticks));
        INFO("stopped in sample " << stop_sample << " at tick " << stop_tick);
        TracePosition position;
        EngineState state;
        {
            SpikeTraceWriter trace(part, c.network, topts, meta);
            Engine engine(c.network);
            for (std::uint64_t k = 0; k < stop_sample; ++k) {
                trace.begin_sample(k, std::int64_t(k));
                trace.end_sample(-1, engine.run(c.stimulus, run, k, &trace).ledger);
            }
            trace.begin_sample(stop_sample, std::int64_t(stop_sample));
            engine.start(c.stimulus, run, stop_sample, &trace);
            engine.advance(stop_tick);
            // Carried when the trace is closed next (as on SIGINT), left in the file when the run goes on.
            position = trace.position(trial % 2 == 0);
            state = engine.save();
            // The run goes on after its checkpoint and dies: the trace holds more than the position.
            if (trial % 2) {
                engine.advance();
                trace.end_sample(-1, engine.finish().ledger);
            } else {
                trace.finish(TraceStatus::interrupted);
            }
        }
        {
            SpikeTraceWriter trace(part, c.network, topts, meta, position);
            Engine engine(c.network);
            engine.restore(state, c.stimulus, run, &trace);
            engine.advance();
            trace.end_sample(-1, engine.finish().ledger);
            for (std::uint64_t k = stop_sample + 1; k < samples; ++k) {
                trace.begin_sample(k, std::int64_t(k));
                trace.end_sample(-1, engine.run(c.stimulus, run, k, &trace).ledger);
            }
            trace.finish();
        }
        REQUIRE(dataset_bytes(part) == expected);
    }
    RunMetadata other = meta;
    other.command_line = "another run";
    TracePosition start;
    start.spikes.resize(1);
    CHECK_THROWS_AS(SpikeTraceWriter(part, c.network, topts, other, start), InputError);
    std::filesystem::remove(full);
    std::filesystem::remove(part);
}
