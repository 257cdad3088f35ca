// SONATA spike traces: a real multi-sample run written by SpikeTraceWriter and read back with the
// HDF5 C API must hold exactly the engine's spikes (count, ids, times) in the FORMATS.md layout.
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/spike_trace.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"

using namespace quantal;

namespace {

// A temporary file removed at scope exit.
struct TempPath {
    std::string path;
    explicit TempPath(const std::string& name)
        : path((std::filesystem::temp_directory_path() / ("quantal_test_" + std::to_string(::getpid()) + "_" + name))
                   .string()) {}
    ~TempPath() { std::remove(path.c_str()); }
};

Network layered_network() {
    NetworkBuilder b;
    const auto in = b.add_population("input", {60}, BernoulliSource{{0.15}, 1.0});
    const auto h1 = b.add_population("hidden1", {40}, IfNeuron{ThresholdRule{}, 0.5, 1.0});
    const auto h2 = b.add_population("hidden2", {25}, LifNeuron{ThresholdRule{}, 6.0, 0.0, 0.0, 1.0});
    const auto out = b.add_population("readout", {5}, ReadoutNeuron{});
    std::vector<float> w1(40 * 60), w2(25 * 40), w3(5 * 25);
    for (std::size_t i = 0; i < w1.size(); ++i) w1[i] = float((i * 7919) % 13) / 25.0f - 0.1f;
    for (std::size_t i = 0; i < w2.size(); ++i) w2[i] = float((i * 104729) % 11) / 15.0f - 0.1f;
    for (std::size_t i = 0; i < w3.size(); ++i) w3[i] = float((i * 31) % 7) / 7.0f - 0.3f;
    b.connect(Projection{"fc1", in, h1, Dense{w1}, 0, Release{ReleaseMode::synapse, 0.3}});
    b.connect(Projection{"fc2", h1, h2, Dense{w2}, 1, Release{}});
    b.connect(Projection{"fc3", h2, out, Dense{w3}, 0, Release{}});
    return b.build();
}

constexpr Tick ticks = 40;
constexpr double dt = 0.5;

// Runs `samples` samples through one writer; returns each sample's result (spikes recorded).
std::vector<SampleResult> run_traced(const Network& net, const std::string& path, TraceOptions options,
                                     std::uint64_t samples) {
    options.ticks_per_sample = ticks;
    options.dt_ms = dt;
    SpikeTraceWriter writer(path, net, options, RunMetadata{"test network", 7, "synapse", 0.3, "0.1.0", "test", {}});
    Engine engine(net);
    RunOptions run;
    run.ticks = ticks;
    run.seed = 7;
    run.record_spikes = true;
    std::vector<SampleResult> results;
    for (std::uint64_t k = 0; k < samples; ++k) {
        writer.begin_sample(k, std::int64_t(k % 3));
        results.push_back(engine.run(Stimulus::for_network(net), run, k, &writer));
        writer.end_sample(std::int64_t(k % 2), results.back().ledger);
    }
    writer.finish();
    return results;
}

// --- reading with the plain HDF5 C API -------------------------------------------------------

struct H5 {
    hid_t id;
    herr_t (*close)(hid_t);
    ~H5() {
        if (id >= 0) close(id);
    }
    operator hid_t() const { return id; }
};

template <class T> std::vector<T> read_1d(hid_t file, const std::string& name, hid_t memtype) {
    H5 d{H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose};
    REQUIRE(d.id >= 0);
    H5 space{H5Dget_space(d), H5Sclose};
    std::vector<T> v(std::size_t(H5Sget_simple_extent_npoints(space)));
    if (!v.empty()) REQUIRE(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    return v;
}

bool same_type(hid_t file, const std::string& dataset, hid_t expected) {
    H5 d{H5Dopen2(file, dataset.c_str(), H5P_DEFAULT), H5Dclose};
    H5 t{H5Dget_type(d), H5Tclose};
    return H5Tequal(t, expected) > 0;
}

std::string string_attribute(hid_t object, const char* name) {
    H5 a{H5Aopen(object, name, H5P_DEFAULT), H5Aclose};
    REQUIRE(a.id >= 0);
    H5 t{H5Aget_type(a), H5Tclose};
    REQUIRE(H5Tget_class(t) == H5T_STRING);
    REQUIRE(H5Tis_variable_str(t) > 0);
    char* value = nullptr;
    H5 mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5T_CSET_UTF8); // HDF5 does not convert between character sets
    REQUIRE(H5Aread(a, mem, &value) >= 0);
    std::string s = value;
    H5free_memory(value);
    return s;
}

struct Spikes {
    std::vector<double> times;
    std::vector<std::uint64_t> ids;
};

// What the trace must hold: the engine's spikes, population by population, sample k shifted by k*T.
std::map<std::string, Spikes> expected_spikes(const Network& net, const std::vector<SampleResult>& results,
                                              const std::vector<std::uint64_t>& samples = {}) {
    std::map<std::string, Spikes> out;
    for (const auto& r : results) {
        if (!samples.empty() && std::find(samples.begin(), samples.end(), r.sample) == samples.end()) continue;
        for (const auto& s : r.spikes) {
            auto& e = out[net.population(s.population).name];
            e.times.push_back(double(Tick(r.sample) * ticks + s.tick) * dt);
            e.ids.push_back(s.neuron);
        }
    }
    return out;
}

} // namespace

TEST_CASE("a multi-sample trace holds exactly the simulated spikes in the SONATA layout", "[trace]") {
    const Network net = layered_network();
    TempPath file("trace_all.h5");
    TraceOptions options;
    options.buffer_spikes = 64; // many buffer flushes within each sample
    options.chunk_spikes = 48;  // appends that straddle chunks
    const auto results = run_traced(net, file.path, options, 5);
    const auto expected = expected_spikes(net, results);
    REQUIRE(expected.size() == 3); // input, hidden1, hidden2 all spike
    std::uint64_t total = 0;
    for (const auto& [name, e] : expected) total += e.ids.size();
    REQUIRE(total > 1000);

    H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
    REQUIRE(f.id >= 0);

    SECTION("spikes: count, ids and times equal the engine's") {
        for (const auto& [name, e] : expected) {
            INFO(name);
            const auto times = read_1d<double>(f, "/spikes/" + name + "/timestamps", H5T_NATIVE_DOUBLE);
            const auto ids = read_1d<std::uint64_t>(f, "/spikes/" + name + "/node_ids", H5T_NATIVE_UINT64);
            CHECK(times.size() == e.times.size());
            CHECK(times == e.times);
            CHECK(ids == e.ids);
            CHECK(std::is_sorted(times.begin(), times.end()));
        }
        // A population that never spikes (readout) is not recorded by default.
        CHECK(H5Lexists(f, "/spikes/readout", H5P_DEFAULT) == 0);
    }

    SECTION("layout: dtypes, units, sorting enum, magic and version") {
        for (const auto& [name, e] : expected) {
            INFO(name);
            const std::string g = "/spikes/" + name;
            CHECK(same_type(f, g + "/timestamps", H5T_IEEE_F64LE));
            CHECK(same_type(f, g + "/node_ids", H5T_STD_U64LE));
            H5 ts{H5Dopen2(f, (g + "/timestamps").c_str(), H5P_DEFAULT), H5Dclose};
            CHECK(string_attribute(ts, "units") == "ms");

            H5 group{H5Gopen2(f, g.c_str(), H5P_DEFAULT), H5Gclose};
            H5 a{H5Aopen(group, "sorting", H5P_DEFAULT), H5Aclose};
            REQUIRE(a.id >= 0);
            H5 type{H5Aget_type(a), H5Tclose};
            REQUIRE(H5Tget_class(type) == H5T_ENUM);
            H5 base{H5Tget_super(type), H5Tclose};
            CHECK(H5Tequal(base, H5T_STD_U8LE) > 0);
            CHECK(H5Tget_nmembers(type) == 3);
            for (auto [member, value] : {std::pair{"none", 0}, {"by_id", 1}, {"by_time", 2}}) {
                std::uint8_t v = 255;
                CHECK(H5Tenum_valueof(type, member, &v) >= 0);
                CHECK(int(v) == value);
            }
            std::uint8_t sorting = 255;
            CHECK(H5Aread(a, type, &sorting) >= 0);
            CHECK(int(sorting) == 2);
        }
        H5 root{H5Gopen2(f, "/", H5P_DEFAULT), H5Gclose};
        H5 magic{H5Aopen(root, "magic", H5P_DEFAULT), H5Aclose};
        H5 magic_type{H5Aget_type(magic), H5Tclose};
        CHECK(H5Tequal(magic_type, H5T_STD_U32LE) > 0);
        std::uint32_t m = 0;
        CHECK(H5Aread(magic, H5T_NATIVE_UINT32, &m) >= 0);
        CHECK(m == 0x0A7A);
        H5 version{H5Aopen(root, "version", H5P_DEFAULT), H5Aclose};
        H5 version_space{H5Aget_space(version), H5Sclose};
        CHECK(H5Sget_simple_extent_npoints(version_space) == 2);
        std::uint32_t v[2] = {9, 9};
        CHECK(H5Aread(version, H5T_NATIVE_UINT32, v) >= 0);
        CHECK(v[0] == 0);
        CHECK(v[1] == 1);
    }

    SECTION("samples table, run metadata and energy ledger") {
        const auto index = read_1d<std::uint64_t>(f, "/samples/index", H5T_NATIVE_UINT64);
        const auto start = read_1d<double>(f, "/samples/start_ms", H5T_NATIVE_DOUBLE);
        const auto label = read_1d<std::int64_t>(f, "/samples/label", H5T_NATIVE_INT64);
        const auto prediction = read_1d<std::int64_t>(f, "/samples/prediction", H5T_NATIVE_INT64);
        const auto spikes = read_1d<std::uint64_t>(f, "/samples/spikes", H5T_NATIVE_UINT64);
        REQUIRE(index.size() == 5);
        for (std::size_t k = 0; k < 5; ++k) {
            CHECK(index[k] == k);
            CHECK(start[k] == double(k) * ticks * dt);
            CHECK(label[k] == std::int64_t(k % 3));
            CHECK(prediction[k] == std::int64_t(k % 2));
            CHECK(spikes[k] == results[k].spikes.size());
        }
        H5 run{H5Gopen2(f, "/run", H5P_DEFAULT), H5Gclose};
        CHECK(string_attribute(run, "model") == "test network");
        CHECK(string_attribute(run, "status") == "complete");
        CHECK(string_attribute(run, "release") == "synapse");

        // Per-sample rows equal each sample's ledger; totals equal their sum.
        const auto n_pop = net.populations().size();
        const auto rows = read_1d<std::uint64_t>(f, "/energy/per_sample/populations/spikes", H5T_NATIVE_UINT64);
        const auto transmitted =
            read_1d<std::uint64_t>(f, "/energy/per_sample/projections/transmitted", H5T_NATIVE_UINT64);
        REQUIRE(rows.size() == 5 * n_pop);
        REQUIRE(transmitted.size() == 5 * net.projections().size());
        EnergyLedger sum = EnergyLedger::for_network(net, ticks);
        for (std::size_t k = 0; k < 5; ++k) {
            for (std::size_t p = 0; p < n_pop; ++p)
                CHECK(rows[k * n_pop + p] == results[k].ledger.populations[p].spikes);
            for (std::size_t j = 0; j < net.projections().size(); ++j)
                CHECK(transmitted[k * net.projections().size() + j] == results[k].ledger.projections[j].transmitted);
            sum += results[k].ledger;
        }
        const auto total_spikes = read_1d<std::uint64_t>(f, "/energy/total/populations/spikes", H5T_NATIVE_UINT64);
        const auto total_transmitted =
            read_1d<std::uint64_t>(f, "/energy/total/projections/transmitted", H5T_NATIVE_UINT64);
        for (std::size_t p = 0; p < n_pop; ++p) CHECK(total_spikes[p] == sum.populations[p].spikes);
        for (std::size_t j = 0; j < net.projections().size(); ++j)
            CHECK(total_transmitted[j] == sum.projections[j].transmitted);
        // The ledger counts exactly the spikes the trace holds (every population recorded).
        for (const auto& [name, e] : expected) CHECK(total_spikes[*net.find_population(name)] == e.ids.size());
    }
}

TEST_CASE("a trace records a subset of populations and samples; the ledger covers all", "[trace]") {
    const Network net = layered_network();
    TempPath file("trace_subset.h5");
    TraceOptions options;
    options.populations = {"hidden2"};
    options.samples = {1, 3};
    const auto results = run_traced(net, file.path, options, 4);
    const auto expected = expected_spikes(net, results, {1, 3});

    H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
    CHECK(H5Lexists(f, "/spikes/input", H5P_DEFAULT) == 0);
    CHECK(H5Lexists(f, "/spikes/hidden1", H5P_DEFAULT) == 0);
    const auto times = read_1d<double>(f, "/spikes/hidden2/timestamps", H5T_NATIVE_DOUBLE);
    const auto ids = read_1d<std::uint64_t>(f, "/spikes/hidden2/node_ids", H5T_NATIVE_UINT64);
    REQUIRE(!times.empty());
    CHECK(times == expected.at("hidden2").times);
    CHECK(ids == expected.at("hidden2").ids);
    const auto recorded = read_1d<std::uint8_t>(f, "/samples/recorded", H5T_NATIVE_UINT8);
    CHECK(recorded == std::vector<std::uint8_t>{0, 1, 0, 1});
    const auto rows = read_1d<std::uint64_t>(f, "/energy/per_sample/populations/spikes", H5T_NATIVE_UINT64);
    CHECK(rows.size() == 4 * net.populations().size());
    // The summary checks the spikes against the ledger of the recorded samples only.
    const auto summary = read_trace_summary(file.path);
    REQUIRE(summary.populations.size() == 1);
    CHECK(summary.populations[0].spikes == ids.size());
    CHECK(summary.recorded_ms == 2 * ticks * dt);
}

TEST_CASE("spike datasets use the chosen chunk length; a tiny memory budget still writes every spike", "[trace]") {
    const Network net = layered_network();
    auto write_and_read = [&](const TraceOptions& options) {
        TempPath file("trace_chunks.h5");
        const auto results = run_traced(net, file.path, options, 2);
        H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
        H5 d{H5Dopen2(f, "/spikes/hidden1/timestamps", H5P_DEFAULT), H5Dclose};
        H5 plist{H5Dget_create_plist(d), H5Pclose};
        hsize_t chunk = 0;
        REQUIRE(H5Pget_chunk(plist, 1, &chunk) == 1);
        CHECK(read_1d<double>(f, "/spikes/hidden1/timestamps", H5T_NATIVE_DOUBLE) ==
              expected_spikes(net, results).at("hidden1").times);
        return chunk;
    };
    TraceOptions options;
    CHECK(write_and_read(options) == 4096);
    options.memory_budget_bytes = 1; // buffers fall back to their minimum
    options.chunk_spikes = 100;
    CHECK(write_and_read(options) == 100);
}

TEST_CASE("an unfinished sample is dropped: completed samples stay intact", "[trace]") {
    const Network net = layered_network();
    TempPath file("trace_interrupted.h5");
    std::vector<SampleResult> results;
    {
        TraceOptions options;
        options.ticks_per_sample = ticks;
        options.dt_ms = dt;
        options.buffer_spikes = 16; // the open sample's spikes reach the file before they are dropped
        SpikeTraceWriter writer(file.path, net, options, RunMetadata{});
        Engine engine(net);
        RunOptions run;
        run.ticks = ticks;
        run.record_spikes = true;
        for (std::uint64_t k = 0; k < 3; ++k) {
            writer.begin_sample(k);
            results.push_back(engine.run(Stimulus::for_network(net), run, k, &writer));
            if (k < 2) writer.end_sample(-1, results.back().ledger);
        }
        CHECK(writer.samples_written() == 2);
        writer.finish(TraceStatus::interrupted);
    }
    results.pop_back();
    const auto expected = expected_spikes(net, results);
    const auto summary = read_trace_summary(file.path);
    CHECK(summary.samples.size() == 2);
    for (const auto& p : summary.populations) CHECK(p.spikes == expected.at(p.name).ids.size());
    H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
    CHECK(read_1d<double>(f, "/spikes/hidden1/timestamps", H5T_NATIVE_DOUBLE) == expected.at("hidden1").times);
    H5 run{H5Gopen2(f, "/run", H5P_DEFAULT), H5Gclose};
    CHECK(string_attribute(run, "status") == "interrupted");
}

TEST_CASE("the trace summary reports spikes, rates and energy", "[trace]") {
    const Network net = layered_network();
    TempPath file("trace_summary.h5");
    const auto results = run_traced(net, file.path, TraceOptions{}, 3);
    const auto s = read_trace_summary(file.path);
    CHECK(s.samples.size() == 3);
    CHECK(s.ticks_per_sample == ticks);
    CHECK(s.dt_ms == dt);
    CHECK(s.recorded_ms == 3 * ticks * dt);
    REQUIRE(s.populations.size() == 3);
    CHECK(s.populations[0].name == "input"); // network order
    CHECK(s.populations[0].sorting == "by_time");
    CHECK(s.populations[0].neurons == 60);
    std::uint64_t spikes = 0;
    for (const auto& r : results) spikes += r.spikes.size();
    CHECK(s.total_spikes() == spikes);
    // Input: Bernoulli p = 0.15 per 0.5 ms tick -> 300 Hz, within a loose statistical band.
    CHECK(s.populations[0].rate_hz == Approx(300.0).epsilon(0.1));
    REQUIRE(s.projection_energy.size() == 3);
    CHECK(s.projection_energy[0].release == "synapse");
    CHECK(s.projection_energy[0].mask_ratio == 0.3);
    CHECK(s.projection_energy[0].energy_pj == Approx(0.9 * double(s.projection_energy[0].transmitted)));
    CHECK(s.energy_samples == 3);
}

TEST_CASE("operator nodes (attention) have their ledger in the trace", "[trace]") {
    NetworkBuilder b;
    const auto in = b.add_population("in", {4, 2, 2}, BernoulliSource{{0.4}, 1.0});
    auto spiking = [&](const char* name, Shape shape) {
        return b.add_population(name, std::move(shape), IfNeuron{ThresholdRule{}, 0.5, 1.0});
    };
    const auto q = spiking("q", {4, 2, 2}), k = spiking("k", {4, 2, 2}), v = spiking("v", {4, 2, 2});
    const auto scores = spiking("scores", {1, 1, 4, 4});
    const auto out = spiking("out", {4, 2, 2});
    for (auto target : {q, k, v}) b.connect(in, target, OneToOne{{1.2f}});
    SoftmaxAttention a;
    a.name = "attention";
    a.q = q, a.k = k, a.v = v, a.scores = scores, a.output = out;
    a.heads = 1, a.window = 2, a.scale = 0.5;
    a.bias.assign(16, 0.1f);
    b.add_operator(a);
    const Network net = b.build();

    TempPath file("trace_operators.h5");
    const auto results = run_traced(net, file.path, TraceOptions{}, 3);
    std::uint64_t coincidences = 0;
    for (const auto& r : results) coincidences += r.ledger.operators.at(0).coincidences;
    REQUIRE(coincidences > 0);

    H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
    const auto rows = read_1d<std::uint64_t>(f, "/energy/per_sample/operators/coincidences", H5T_NATIVE_UINT64);
    REQUIRE(rows.size() == 3);
    for (std::size_t k2 = 0; k2 < 3; ++k2) CHECK(rows[k2] == results[k2].ledger.operators[0].coincidences);
    CHECK(read_1d<std::uint64_t>(f, "/energy/total/operators/coincidences", H5T_NATIVE_UINT64) ==
          std::vector<std::uint64_t>{coincidences});

    const auto s = read_trace_summary(file.path);
    REQUIRE(s.operator_energy.size() == 1);
    const auto& op = s.operator_energy[0];
    CHECK(op.name == "attention");
    CHECK(op.kind == "softmax_attention");
    CHECK(op.output == "out");
    CHECK(op.coincidences == coincidences);
    CHECK(op.energy_pj == Approx(0.9 * double(op.coincidences + op.deliveries) + 4.6 * double(op.macs)));
}

TEST_CASE("bad traces and options give errors naming the file and the object", "[trace]") {
    const Network net = layered_network();
    TempPath file("trace_bad.h5");
    TraceOptions options;
    options.populations = {"nope"};
    CHECK_THROWS_WITH(SpikeTraceWriter(file.path, net, options, RunMetadata{}),
                      Catch::Contains(file.path) && Catch::Contains("'nope'"));
    CHECK_FALSE(std::filesystem::exists(file.path)); // refused before the file is created

    run_traced(net, file.path, TraceOptions{}, 1);
    {
        H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose};
        REQUIRE(H5Ldelete(f, "/spikes/hidden1/node_ids", H5P_DEFAULT) >= 0);
    }
    CHECK_THROWS_AS(read_trace_summary(file.path), InputError);
    CHECK_THROWS_WITH(read_trace_summary(file.path),
                      Catch::Contains(file.path) && Catch::Contains("/spikes/hidden1") && Catch::Contains("node_ids"));

    TempPath text("not_hdf5.h5");
    if (std::FILE* out = std::fopen(text.path.c_str(), "w")) {
        std::fputs("not an HDF5 file\n", out);
        std::fclose(out);
    }
    CHECK_THROWS_WITH(read_trace_summary(text.path), Catch::Contains(text.path));
}

namespace {

// Replaces the 1-D dataset `name` with a uint64 one of `length` zeros (a damaged table column).
void replace_with_zeros(const std::string& path, const std::string& name, hsize_t length) {
    H5 f{H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose};
    REQUIRE(H5Ldelete(f, name.c_str(), H5P_DEFAULT) >= 0);
    H5 space{H5Screate_simple(1, &length, nullptr), H5Sclose};
    H5 d{H5Dcreate2(f, name.c_str(), H5T_STD_U64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
    const std::vector<std::uint64_t> zeros(length, 0);
    REQUIRE(H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()) >= 0);
}

} // namespace

TEST_CASE("a table column of the wrong length is an error naming the column", "[trace]") {
    const Network net = layered_network();
    // (dataset, rows it must have): samples are rows of /samples, projections of the ledger's tables
    const std::vector<std::pair<std::string, hsize_t>> columns = {
        {"/samples/spikes", 3}, {"/energy/total/projections/attempted", 3}, {"/energy/populations/size", 4}};
    for (const auto& [name, rows] : columns) {
        TempPath file("trace_short_column.h5");
        run_traced(net, file.path, TraceOptions{}, 3);
        REQUIRE_NOTHROW(read_trace_summary(file.path));
        replace_with_zeros(file.path, name, rows - 1);
        CHECK_THROWS_WITH(read_trace_summary(file.path),
                          Catch::Contains(file.path) && Catch::Contains(name) &&
                              Catch::Contains("has " + std::to_string(rows - 1) + " entries, expected " +
                                              std::to_string(rows)));
    }
}

TEST_CASE("a sample whose ticks leave the exact timestamp range is refused before it is written", "[trace]") {
    // Sample k starts at tick k * T; near 2^61 that product overflowed into negative timestamps in a
    // trace marked complete (issue 10). Ticks up to 2^53 are exact in a double timestamp.
    const Network net = layered_network();
    TempPath file("trace_far_sample.h5");
    TraceOptions options;
    options.ticks_per_sample = 64;
    SpikeTraceWriter trace(file.path, net, options, RunMetadata{});
    const std::uint64_t last_ok = (std::uint64_t{1} << 53) / 64 - 1; // ends exactly at tick 2^53
    CHECK_THROWS_AS(trace.begin_sample(last_ok + 1), InputError);
    CHECK_THROWS_WITH(trace.begin_sample(std::uint64_t{1} << 61),
                      Catch::Contains(file.path) && Catch::Contains("sample 2305843009213693952"));
    CHECK_THROWS_AS(trace.begin_sample(~std::uint64_t{0}), InputError);
    trace.begin_sample(last_ok); // still possible: nothing was left open
    trace.end_sample(-1, EnergyLedger::for_network(net, 64));
    trace.finish();
    const auto summary = read_trace_summary(file.path);
    REQUIRE(summary.samples.size() == 1);
    CHECK(summary.samples[0].start_ms == double(last_ok * 64));

    TempPath huge_dt("trace_huge_dt.h5");
    options.dt_ms = 1e308; // (k * T + t) * dt must be finite
    SpikeTraceWriter wide(huge_dt.path, net, options, RunMetadata{});
    CHECK_THROWS_WITH(wide.begin_sample(2), Catch::Contains(huge_dt.path) && Catch::Contains("not finite"));
    wide.finish();
}

TEST_CASE("a trace whose spike datasets claim more than they store is refused at once", "[trace]") {
    // A small trace declaring 4 * 10^9 spikes in unwritten chunks read as fill values for a minute
    // before the ledger check refused it (issue 10): the stored chunks are counted first.
    const Network net = layered_network();
    TempPath file("trace_claims.h5");
    run_traced(net, file.path, TraceOptions{}, 1);
    {
        H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose};
        const hsize_t n = 4'000'000'000ull, chunk = 4096, unlimited = H5S_UNLIMITED;
        for (const char* name : {"/spikes/hidden1/timestamps", "/spikes/hidden1/node_ids"}) {
            const bool times = std::string(name).ends_with("timestamps");
            REQUIRE(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
            H5 space{H5Screate_simple(1, &n, &unlimited), H5Sclose};
            H5 dcpl{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
            H5Pset_chunk(dcpl, 1, &chunk);
            H5 d{H5Dcreate2(f, name, times ? H5T_IEEE_F64LE : H5T_STD_U64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                 H5Dclose};
            REQUIRE(d.id >= 0);
        }
        H5 ts{H5Dopen2(f, "/spikes/hidden1/timestamps", H5P_DEFAULT), H5Dclose};
        H5 type{H5Tcopy(H5T_C_S1), H5Tclose};
        H5Tset_size(type, 2);
        H5 scalar{H5Screate(H5S_SCALAR), H5Sclose};
        H5 a{H5Acreate2(ts, "units", type, scalar, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
        REQUIRE(H5Awrite(a, type, "ms") >= 0);
    }
    REQUIRE(std::filesystem::file_size(file.path) < 10'000'000);
    CHECK_THROWS_WITH(read_trace_summary(file.path), Catch::Contains(file.path) &&
                                                         Catch::Contains("/spikes/hidden1") &&
                                                         Catch::Contains("timestamps") && Catch::Contains("0 are stored"));
}

TEST_CASE("a trace read as a spike file maps back to the ticks it was recorded at", "[trace][spike_file]") {
    const auto net = layered_network();
    TempPath file("spike_file.h5");
    const auto results = run_traced(net, file.path, TraceOptions{}, 3);
    const SpikeFile f = read_spike_file(file.path);
    REQUIRE(f.sample_start_ms);
    CHECK(*f.sample_start_ms == std::vector<double>{0.0, double(ticks) * dt, 2.0 * double(ticks) * dt});
    // The engine's spikes, per population, as (global tick, neuron) in simulation order.
    std::map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> expected;
    for (std::uint64_t k = 0; k < results.size(); ++k)
        for (const auto& s : results[k].spikes)
            expected[net.population(s.population).name].push_back({k * ticks + std::uint64_t(s.tick), s.neuron});
    REQUIRE(f.populations.size() == 3); // the readout is not recorded
    for (const auto& p : f.populations) {
        REQUIRE(p.ms.size() == p.node_ids.size());
        std::vector<std::pair<std::uint64_t, std::uint64_t>> read;
        for (std::size_t i = 0; i < p.ms.size(); ++i) read.push_back({grid_tick(p.ms[i], dt).value(), p.node_ids[i]});
        CHECK(read == expected[p.name]);
        CHECK(!read.empty());
    }
}

TEST_CASE("grid_tick inverts the writer's g * dt for awkward dt, and floors times between ticks", "[trace][spike_file]") {
    for (const double step : {1.0, 0.1, 0.3, 1.0 / 3.0, 0.025, 7.77}) {
        for (std::uint64_t g = 0; g < 200000; g += 1 + g / 7) {
            const double written = double(g) * step; // SpikeTraceWriter: (start_tick + tick) * dt
            CHECK(grid_tick(written, step) == g);
            // A time strictly between two grid points belongs to the earlier one.
            const double next = double(g + 1) * step;
            CHECK(grid_tick(std::nextafter(next, 0.0), step) == g);
            CHECK(grid_tick(written + 0.5 * step, step) == g);
        }
    }
    CHECK(!grid_tick(-0.25, 0.5));
    CHECK(!grid_tick(std::nan(""), 0.5));
    CHECK(!grid_tick(1e300, 0.5));
    CHECK(grid_tick(0.0, 0.5) == 0u);
}

TEST_CASE("membrane reports hold the engine's potentials; an unfinished sample's frames are dropped", "[trace][potentials]") {
    const Network net = layered_network();
    TempPath file("trace_report.h5");
    const std::vector<PotentialProbe> probes = {{1, {0, 7, 39}}, {2, {3}}, {3, {0, 1, 2, 3, 4}}};
    std::vector<SampleResult> results;
    {
        TraceOptions options;
        options.ticks_per_sample = ticks;
        options.dt_ms = dt;
        options.potentials = probes;
        SpikeTraceWriter writer(file.path, net, options, RunMetadata{});
        Engine engine(net);
        RunOptions run;
        run.ticks = ticks;
        run.record_spikes = true;
        run.potentials = probes;
        for (std::uint64_t k = 0; k < 3; ++k) {
            writer.begin_sample(k);
            results.push_back(engine.run(Stimulus::for_network(net), run, k, &writer));
            if (k < 2) writer.end_sample(-1, results.back().ledger);
        }
        writer.finish(TraceStatus::interrupted);
        // Frames form one time axis: a recorded sample after a gap is refused, before anything is written.
        TempPath other("trace_report_gap.h5");
        SpikeTraceWriter gap(other.path, net, options, RunMetadata{});
        gap.begin_sample(0);
        gap.replay(engine.run(Stimulus::for_network(net), run, 0));
        gap.end_sample(-1, results[0].ledger);
        REQUIRE_THROWS_WITH(gap.begin_sample(2), Catch::Contains("membrane reports need consecutive samples"));
    }
    H5 f{H5Fopen(file.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
    const char* names[] = {"hidden1", "hidden2", "readout"};
    for (std::size_t i = 0; i < probes.size(); ++i) {
        const std::string group = std::string("/report/") + names[i];
        INFO(group);
        REQUIRE(same_type(f, group + "/data", H5T_IEEE_F32LE));
        std::vector<float> expected;
        for (std::size_t k = 0; k < 2; ++k) // the third sample was not completed
            for (double v : results[k].potentials[i]) expected.push_back(float(v));
        REQUIRE(expected.size() == 2 * std::size_t(ticks) * probes[i].neurons.size());
        REQUIRE(read_1d<float>(f, group + "/data", H5T_NATIVE_FLOAT) == expected);
        const auto ids = read_1d<std::uint64_t>(f, group + "/mapping/node_ids", H5T_NATIVE_UINT64);
        REQUIRE(ids == std::vector<std::uint64_t>(probes[i].neurons.begin(), probes[i].neurons.end()));
        REQUIRE(read_1d<double>(f, group + "/mapping/time", H5T_NATIVE_DOUBLE) ==
                std::vector<double>{0.0, 2.0 * double(ticks) * dt, dt});
    }
}
