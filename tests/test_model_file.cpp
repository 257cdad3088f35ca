// Model files (docs/model-format.md): write -> read round trip, the same simulation before and
// after, analog inputs, and errors that name the file and the object.
#include <hdf5.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "io/model_file.hpp"
#include "support/same_connectivity.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("quantal_test_model_" + name)).string();
}

// Every population model and projection kind, with delays and release settings.
Network every_kind() {
    NetworkBuilder b;
    auto src = b.add_population("input", {1, 4, 4}, BernoulliSource{{0.3}, 1.0});
    auto spikes = b.add_population("spikes", {3}, SpikeSource{2.0});
    IfNeuron qcfs{ThresholdRule{0.75, Comparison::greater_equal, ResetMode::subtract, 0.0}, 0.375, 0.75};
    auto conv = b.add_population("conv", {2, 4, 4}, qcfs, {0.0625});
    LifNeuron lif{ThresholdRule{1.0, Comparison::greater, ResetMode::to_value, -0.25}, 6.0, 0.125, 0.0, 1.0};
    auto pool = b.add_population("pool", {2, 2, 2}, lif);
    auto dense = b.add_population("dense", {5}, IfNeuron{}, {0.1, 0.2, 0.3, 0.4, 0.5});
    auto out = b.add_population("logits", {5}, ReadoutNeuron{0.5});

    Conv2d c;
    c.kernel = {3, 3};
    c.padding = {1, 1};
    for (int i = 0; i < 2 * 9; ++i) c.weight.push_back(float(i % 5) * 0.125f - 0.25f);
    b.connect(Projection{"c1", src, conv, c, 0, Release{ReleaseMode::spike, 0.25, SynapseSampling::automatic}});
    b.connect(Projection{"p1", conv, pool, Pool2d{PoolKind::average, {2, 2}, {2, 2}, {0, 0}}, 2, {}});
    Dense d;
    for (int i = 0; i < 5 * 8; ++i) d.weight.push_back(float((i * 7) % 11) * 0.0625f);
    b.connect(Projection{"fc", pool, dense, d, 1, Release{ReleaseMode::synapse, 0.5, SynapseSampling::automatic}});
    b.connect(Projection{"skip", dense, out, OneToOne{{0.5f, 1.0f, 1.5f, 2.0f, 2.5f}}, 0, {}});
    Sparse s;
    s.row_begin = {0, 2, 3, 5};
    s.target = {0, 4, 2, 1, 3};
    s.weight = {0.5f, -0.25f, 1.0f, 0.75f, 0.125f};
    s.delay = {0, 3, 1, 2, 0};
    s.probability = {1.0f, 0.5f, 0.75f, 1.0f, 0.25f};
    b.connect(Projection{"sparse", spikes, dense, s, 0, {}});
    return b.build();
}

std::vector<SpikeRecord> simulate(const Network& net) {
    Stimulus stim = Stimulus::for_network(net);
    stim.spikes[1] = {{0, 0}, {3, 1}, {5, 2}, {9, 0}};
    RunOptions o;
    o.ticks = 40;
    o.seed = 7;
    o.record_spikes = true;
    return Engine(net).run(stim, o, 0).spikes;
}

} // namespace

TEST_CASE("a model file round trip keeps every population, projection and setting", "[model_file]") {
    const Network net = every_kind();
    const auto path = temp_path("roundtrip.h5");
    AnalogInput in;
    in.name = "image";
    in.target = "conv";
    in.shape = {1, 2, 2};
    in.pad_to = std::array<std::int64_t, 2>{4, 4};
    Conv2d c;
    c.kernel = {1, 1};
    c.weight = {0.5f, -1.0f};
    in.map = c;
    in.bias = {0.25, -0.25};
    in.scale = 1.0 / 255.0;
    write_model_file(path, net, ModelFileInfo{"every-kind", "tests", "{\"test\": 1}"}, std::span(&in, 1), "logits");

    const LoadedModel loaded = read_model_file(path);
    CHECK(loaded.name == "every-kind");
    CHECK(loaded.producer == "tests");
    CHECK(loaded.provenance == "{\"test\": 1}");
    CHECK(loaded.readout == "logits");
    const Network& back = loaded.network;
    REQUIRE(back.populations().size() == net.populations().size());
    REQUIRE(back.projections().size() == net.projections().size());
    for (PopulationId p = 0; p < net.populations().size(); ++p) {
        const auto &a = net.population(p), &b = back.population(p);
        INFO(a.name);
        CHECK(a.name == b.name);
        CHECK(a.shape == b.shape);
        CHECK(a.bias == b.bias);
        CHECK(std::string(model_name(a.model)) == model_name(b.model));
        CHECK(spike_value(a.model) == spike_value(b.model));
        CHECK(initial_potential(a.model) == initial_potential(b.model));
    }
    const auto& lif = std::get<LifNeuron>(back.population(3).model);
    CHECK(lif.tau_ticks == 6.0);
    CHECK(lif.v_leak == 0.125);
    CHECK(lif.rule.comparison == Comparison::greater);
    CHECK(lif.rule.reset == ResetMode::to_value);
    CHECK(lif.rule.v_reset == -0.25);
    CHECK(std::get<BernoulliSource>(back.population(0).model).probability == std::vector<double>{0.3});
    for (ProjectionId p = 0; p < net.projections().size(); ++p) {
        const auto &a = net.projection(p), &b = back.projection(p);
        INFO(a.name);
        CHECK(a.name == b.name);
        CHECK(a.source == b.source);
        CHECK(a.target == b.target);
        CHECK(a.delay == b.delay);
        CHECK(a.release.mode == b.release.mode);
        CHECK(a.release.mask_ratio == b.release.mask_ratio);
        CHECK(std::string(net.kind(p)) == back.kind(p));
        CHECK(testing::same_connectivity(net.connectivity(p), back.connectivity(p)));
    }
    // Sparse synapses come back grouped by delay within each source (row 2's two swap places).
    const auto sparse = std::get<Sparse>(back.connectivity(4));
    CHECK(sparse.row_begin == std::vector<std::uint64_t>{0, 2, 3, 5});
    CHECK(sparse.target == std::vector<std::uint32_t>{0, 4, 2, 3, 1});
    CHECK(sparse.delay == std::vector<std::uint32_t>{0, 3, 1, 0, 2});
    CHECK(sparse.probability == std::vector<float>{1.0f, 0.5f, 0.75f, 0.25f, 1.0f});
    CHECK(std::get<Pool2d>(back.connectivity(1)).kind == PoolKind::average);

    // The same network: the same spikes, bit for bit (release draws included).
    const auto before = simulate(net), after = simulate(back);
    CHECK(before.size() > 20);
    CHECK(before == after);

    REQUIRE(loaded.inputs.size() == 1);
    const auto& rin = loaded.inputs[0];
    CHECK(rin.target == "conv");
    CHECK(rin.shape == Shape{1, 2, 2});
    CHECK(rin.pad_to == in.pad_to);
    CHECK(rin.scale == in.scale);
    CHECK(rin.bias == in.bias);
    // Analog drive: pixel values centred in a 4x4 zero frame, 1x1 conv with 2 output channels.
    const std::vector<double> raw{255, 0, 510, 255};
    const auto drive = analog_drive(rin, back, raw);
    REQUIRE(drive.current.size() == 32);
    CHECK(drive.current[0] == Approx(0.25));                  // channel 0, corner: padding -> bias only
    CHECK(drive.current[1 * 4 + 1] == Approx(0.5 * 1 + 0.25)); // channel 0 at (1,1): pixel 255/255
    CHECK(drive.current[2 * 4 + 1] == Approx(0.5 * 2 + 0.25)); // (2,1): pixel 510/255
    CHECK(drive.current[16 + 2 * 4 + 2] == Approx(-1.0 - 0.25)); // channel 1 at (2,2)
    CHECK(drive.macs == 32);
    std::filesystem::remove(path);
}

TEST_CASE("model file errors name the file and the object", "[model_file]") {
    const auto path = temp_path("bad.h5");
    SECTION("missing file") {
        REQUIRE_THROWS_AS(read_model_file(temp_path("does-not-exist.h5")), InputError);
        REQUIRE_THROWS_WITH(read_model_file(temp_path("does-not-exist.h5")), Contains("does-not-exist.h5"));
    }
    SECTION("not HDF5") {
        std::FILE* f = std::fopen(path.c_str(), "w");
        std::fputs("hello", f);
        std::fclose(f);
        REQUIRE_THROWS_WITH(read_model_file(path), Contains(path) && Contains("not a readable HDF5 file"));
    }
    SECTION("a population without shape, an operator, an unknown source") {
        write_model_file(path, every_kind(), ModelFileInfo{});
        hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        SECTION("missing dataset") {
            H5Ldelete(f, "/populations/dense/shape", H5P_DEFAULT);
            H5Fclose(f);
            REQUIRE_THROWS_WITH(read_model_file(path), Contains(path) && Contains("population 'dense'") &&
                                                           Contains("dataset 'shape' is missing"));
        }
        SECTION("operator") {
            hid_t ops = H5Gcreate2(f, "/operators", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            hid_t op = H5Gcreate2(ops, "attn0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Gclose(op);
            H5Gclose(ops);
            H5Fclose(f);
            REQUIRE_THROWS_WITH(read_model_file(path), Contains(path) && Contains("operator 'attn0'"));
        }
        SECTION("an empty 'groups' dataset") { // was .at(0) on an empty vector: std::out_of_range, an abort
            REQUIRE(H5Adelete_by_name(f, "/projections/c1", "groups", H5P_DEFAULT) >= 0);
            hsize_t n = 0;
            hid_t space = H5Screate_simple(1, &n, nullptr);
            hid_t ds = H5Dcreate2(f, "/projections/c1/groups", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Dclose(ds);
            H5Sclose(space);
            H5Fclose(f);
            REQUIRE_THROWS_AS(read_model_file(path), InputError);
            REQUIRE_THROWS_WITH(read_model_file(path), Contains(path) && Contains("projection 'c1'") && Contains("'groups'"));
        }
        SECTION("an unwritten chunked dataset") { // 2^28 floats claimed by a few KB: refused before allocating
            H5Ldelete(f, "/projections/fc/weight", H5P_DEFAULT);
            hsize_t n = hsize_t(1) << 28, chunk = hsize_t(1) << 20;
            hid_t space = H5Screate_simple(1, &n, nullptr);
            hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
            H5Pset_chunk(dcpl, 1, &chunk);
            hid_t ds = H5Dcreate2(f, "/projections/fc/weight", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Dclose(ds);
            H5Pclose(dcpl);
            H5Sclose(space);
            H5Fclose(f);
            REQUIRE(std::filesystem::file_size(path) < 100000);
            REQUIRE_THROWS_WITH(read_model_file(path), Contains(path) && Contains("projection 'fc'") &&
                                                           Contains("'weight'") && Contains("0 are stored"));
        }
        SECTION("weight of the wrong size") {
            H5Ldelete(f, "/projections/fc/weight", H5P_DEFAULT);
            hsize_t n = 3;
            hid_t space = H5Screate_simple(1, &n, nullptr);
            hid_t ds = H5Dcreate2(f, "/projections/fc/weight", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            const float w[3] = {1, 2, 3};
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
            H5Dclose(ds);
            H5Sclose(space);
            H5Fclose(f);
            REQUIRE_THROWS_WITH(read_model_file(path), Contains(path) && Contains("projection 'fc'"));
        }
    }
    std::filesystem::remove(path);
}

TEST_CASE("a model file round trip keeps a window attention operator", "[model_file]") {
    const std::int64_t heads = 2, hd = 2, win = 2, H = 4, W = 4, C = heads * hd, T = win * win, windows = 4;
    NetworkBuilder b;
    const auto in = b.add_population("in", {C, H, W}, SpikeSource{});
    auto spiking = [&](const char* name, Shape shape, double lambda) {
        return b.add_population(name, std::move(shape), IfNeuron{ThresholdRule{lambda}, lambda / 2, lambda}, {0.03125});
    };
    const auto q = spiking("q", {C, H, W}, 0.75), k = spiking("k", {C, H, W}, 1.25), v = spiking("v", {C, H, W}, 1.0);
    const auto scores = spiking("scores", {windows, heads, T, T}, 0.5);
    const auto out = spiking("out", {C, H, W}, 0.375);
    for (auto target : {q, k, v}) b.connect(in, target, OneToOne{{0.875f}});
    SoftmaxAttention a;
    a.name = "attn";
    a.q = q, a.k = k, a.v = v, a.scores = scores, a.output = out;
    a.heads = heads, a.window = win, a.shift = 1, a.scale = 1.0 / std::sqrt(double(hd));
    for (std::int64_t e = 0; e < heads * T * T; ++e) a.bias.push_back(float(e % 7) * 0.125f - 0.375f);
    for (std::int64_t e = 0; e < windows * T * T; ++e) a.mask.push_back(e % 5 == 0 ? -100.0f : 0.0f);
    a.q_release = a.k_release = Release{ReleaseMode::spike, 0.25};
    b.add_operator(a);
    const Network net = b.build();
    const auto path = temp_path("attention.h5");
    write_model_file(path, net, ModelFileInfo{});
    const auto loaded = read_model_file(path);
    REQUIRE(loaded.network.operators().size() == 1);
    const auto& back = std::get<SoftmaxAttention>(loaded.network.operators()[0]);
    CHECK(back.name == "attn");
    CHECK(back.scores == scores);
    CHECK(back.shift == 1);
    CHECK(back.scale == a.scale);
    CHECK(back.bias == a.bias);
    CHECK(back.mask == a.mask);
    CHECK(back.q_release.mode == ReleaseMode::spike);
    CHECK(back.k_release.mask_ratio == 0.25);
    CHECK(back.score_release.mode == ReleaseMode::none);

    auto run = [&](const Network& n) {
        Stimulus s = Stimulus::for_network(n);
        for (Tick t = 0; t < 16; ++t)
            for (std::uint32_t j = 0; j < std::uint32_t(C * H * W); ++j)
                if ((j * 7 + std::uint32_t(t) * 3) % 5 < 2) s.spikes[in].push_back({t, j});
        RunOptions o;
        o.ticks = 16;
        o.seed = 3;
        o.record_spikes = true;
        return Engine(n).run(s, o, 0).spikes;
    };
    const auto before = run(net);
    CHECK(before.size() > 50);
    CHECK(before == run(loaded.network));
    std::filesystem::remove(path);
}

TEST_CASE("a model file round trip keeps a current-based LIF population", "[model_file]") {
    NetworkBuilder b;
    const auto in = b.add_population("in", {4}, BernoulliSource{{0.5}, 1.0});
    CubaLifNeuron m{ThresholdRule{1.0, Comparison::greater, ResetMode::to_value, -0.125}, 3.0, 7.0, 0.0625, 0.25, 1.5};
    b.add_population("cuba", {3}, m, {0.03125});
    b.connect(in, 1, Dense{std::vector<float>(12, 0.375f)});
    const Network net = b.build();
    const auto path = temp_path("cuba.h5");
    write_model_file(path, net, ModelFileInfo{});
    const auto back = read_model_file(path);
    const auto& c = std::get<CubaLifNeuron>(back.network.population(1).model);
    CHECK(c.tau_syn_ticks == 3.0);
    CHECK(c.tau_ticks == 7.0);
    CHECK(c.v_leak == 0.0625);
    CHECK(c.v0 == 0.25);
    CHECK(c.spike_value == 1.5);
    CHECK(c.rule.v_reset == -0.125);
    RunOptions o;
    o.ticks = 50;
    o.seed = 4;
    o.record_spikes = true;
    const auto before = Engine(net).run(Stimulus::for_network(net), o, 0).spikes;
    CHECK(before.size() > 60);
    CHECK(before == Engine(back.network).run(Stimulus::for_network(back.network), o, 0).spikes);
    std::filesystem::remove(path);
}
