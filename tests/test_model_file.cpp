// Model files (docs/model-format.md): write -> read round trip, the same simulation before and
// after, analog inputs, and errors that name the file and the object.
#include <hdf5.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "io/hdf5_access.hpp"
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
    b.connect(Projection{"fc", pool, dense, d, 1, Release{ReleaseMode::synapse, 0.5, SynapseSampling::automatic}, "fc1_in"});
    b.connect(Projection{"skip", dense, out, OneToOne{{0.5f, 1.0f, 1.5f, 2.0f, 2.5f}}, 0, {}});
    Sparse s;
    s.row_begin = {0, 2, 3, 5};
    s.target = {0, 4, 2, 1, 3};
    s.weight = {0.5f, -0.25f, 1.0f, 0.75f, 0.125f};
    s.delay = {0, 3, 1, 2, 0};
    s.probability = {1.0f, 0.5f, 0.75f, 1.0f, 0.25f};
    b.connect(Projection{"sparse", spikes, dense, s, 0, {}});
    // The ANN it stands for, as an exporter records it (docs/model-format.md "/ann").
    b.set_ann(AnnBaseline{{{"embed", "analog_input", 160, 20, 4, 5}, {"fc", "linear", 40, 40, 8, 5},
                           {"attn", "attention", 12, 0, 6, 2}},
                          8});
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
        std::vector<double> va(a.size()), vb(b.size());
        initial_potentials(a.model, va), initial_potentials(b.model, vb);
        CHECK(va == vb);
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
        CHECK(a.role == b.role);
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

// ---- issue 10: no silent acceptance of a wrong model -------------------------------------------
namespace {

// Edits of a written model file through the HDF5 C API, as another tool would write them.
struct Edit {
    hid_t file;
    explicit Edit(const std::string& path) : file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)) {
        REQUIRE(file >= 0);
    }
    ~Edit() { H5Fclose(file); }
    Edit(const Edit&) = delete;
    Edit& operator=(const Edit&) = delete;

    void remove(const char* object, const char* name) const {
        REQUIRE(H5Adelete_by_name(file, object, name, H5P_DEFAULT) >= 0);
    }
    template <class T>
    void attribute(const char* object, const char* name, hid_t file_type, hid_t mem_type, T value) const {
        if (H5Aexists_by_name(file, object, name, H5P_DEFAULT) > 0) remove(object, name);
        hid_t space = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate_by_name(file, object, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(a >= 0);
        REQUIRE(H5Awrite(a, mem_type, &value) >= 0);
        H5Aclose(a);
        H5Sclose(space);
    }
    void real(const char* object, const char* name, double v) const {
        attribute(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v);
    }
    void integer(const char* object, const char* name, std::int64_t v) const {
        attribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v);
    }
    void text(const char* object, const char* name, const char* v) const {
        hid_t type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, H5T_VARIABLE);
        attribute(object, name, type, type, v);
        H5Tclose(type);
    }
    // Replaces (or adds) a dataset.
    template <class T>
    void dataset(const std::string& path, std::vector<hsize_t> dims, hid_t file_type, hid_t mem_type,
                 const std::vector<T>& values) const {
        if (H5Lexists(file, path.c_str(), H5P_DEFAULT) > 0) REQUIRE(H5Ldelete(file, path.c_str(), H5P_DEFAULT) >= 0);
        hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
        hid_t ds = H5Dcreate2(file, path.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(ds >= 0);
        if (!values.empty()) REQUIRE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
        H5Dclose(ds);
        H5Sclose(space);
    }
    void floats(const std::string& path, std::vector<hsize_t> dims, float fill = 0.125f) const {
        std::size_t n = 1;
        for (auto d : dims) n *= d;
        dataset(path, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, std::vector<float>(n, fill));
    }
    void int64s(const std::string& path, std::vector<hsize_t> dims, const std::vector<std::int64_t>& v) const {
        dataset(path, dims, H5T_STD_I64LE, H5T_NATIVE_INT64, v);
    }
    void uint64s(const std::string& path, const std::vector<std::uint64_t>& v) const {
        dataset(path, {v.size()}, H5T_STD_U64LE, H5T_NATIVE_UINT64, v);
    }
    void doubles(const std::string& path, const std::vector<double>& v) const {
        dataset(path, {v.size()}, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v);
    }
    void group(const char* path) const {
        hid_t g = H5Gcreate2(file, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(g >= 0);
        H5Gclose(g);
    }
    void unlink(const char* path) const { REQUIRE(H5Ldelete(file, path, H5P_DEFAULT) >= 0); }
};

// every_kind() with a dense analog input (data (1, 2, 2) -> 'dense', 5 neurons) and a readout.
std::string write_every_kind(const std::string& name) {
    const auto path = temp_path(name);
    AnalogInput in;
    in.name = "image";
    in.target = "dense";
    in.shape = {1, 2, 2};
    in.map = Dense{std::vector<float>(5 * 4, 0.25f)};
    write_model_file(path, every_kind(), ModelFileInfo{}, std::span(&in, 1), "logits");
    return path;
}

struct BadCase {
    const char* what;
    std::function<void(const Edit&)> edit;
    std::vector<std::string> words; // the error names these (besides the file)
};

// Each edit of a valid file must be refused with one line naming the file and `words`.
void check_refused(const std::vector<BadCase>& cases, const std::string& file_name) {
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.what) {
            const auto path = write_every_kind(file_name);
            {
                Edit e(path);
                c.edit(e);
            }
            std::string message;
            try {
                read_model_file(path);
            } catch (const InputError& e) {
                message = e.what();
            } catch (const ModelError& e) {
                message = e.what();
            }
            INFO(message);
            CHECK(!message.empty()); // empty: the file was accepted
            CHECK(message.find('\n') == std::string::npos);
            CHECK_THAT(message, Contains(path));
            for (const auto& w : c.words) CHECK_THAT(message, Contains(w));
            std::filesystem::remove(path);
        }
    }
}

} // namespace

TEST_CASE("per-neuron parameters, dt and Poisson rates round-trip and simulate the same", "[model_file][per_neuron]") {
    // Every per-neuron parameter as a dataset (uniform ones stay attributes), the file's dt, and a
    // Poisson source in Hz: read back equal, and the same spikes before and after.
    auto ramp = [](std::uint32_t n, double a, double b) {
        std::vector<double> v(n);
        for (std::uint32_t j = 0; j < n; ++j) v[j] = a + b * double(j) / double(n);
        return v;
    };
    NetworkBuilder b;
    b.set_dt(0.25);
    const auto in = b.add_population("drive", {6}, PoissonSource{ramp(6, 100.0, 400.0), 1.0});
    const IfNeuron if_m{ThresholdRule{ramp(5, 0.5, 1.0), Comparison::greater_equal, ResetMode::subtract, 0.0}, ramp(5, 0.0, 0.25), 1.0};
    const LifNeuron lif_m{ThresholdRule{0.75, Comparison::greater, ResetMode::to_value, ramp(4, -0.5, 0.5)}, ramp(4, 2.0, 8.0),
                          ramp(4, -0.125, 0.25), 0.125, 1.0};
    const CubaLifNeuron cuba_m{ThresholdRule{ramp(3, 0.5, 0.5)}, ramp(3, 1.0, 3.0), 6.0, ramp(3, 0.0, 0.25), ramp(3, 0.0, 0.5), 1.0};
    const auto h = b.add_population("if", {5}, if_m, {0.0625});
    const auto l = b.add_population("lif", {4}, lif_m);
    const auto c = b.add_population("cuba", {3}, cuba_m);
    const auto out = b.add_population("out", {2}, ReadoutNeuron{std::vector<double>{0.5, -0.5}});
    b.connect(in, h, Dense{std::vector<float>(30, 0.375f)});
    b.connect(h, l, Dense{std::vector<float>(20, 0.5f)}, 1);
    b.connect(l, c, Dense{std::vector<float>(12, 0.25f)});
    b.connect(c, out, Dense{std::vector<float>(6, 1.0f)});
    const Network net = b.build();
    const auto path = temp_path("per_neuron.h5");
    write_model_file(path, net, ModelFileInfo{});
    { // how it is stored: per-neuron values as datasets (n,), one value as an attribute
        const h5::Handle file = h5::open_file(path);
        CHECK(h5::read_double_attribute(file, "dt", path) == 0.25);
        const h5::Handle g = h5::open_group(file, "populations/lif", path);
        CHECK(h5::has_link(g, "tau_ticks"));
        CHECK(h5::has_link(g, "v_reset"));
        CHECK(h5::has_attribute(g, "threshold"));
        CHECK(h5::read_array(g, "tau_ticks", path).values == ramp(4, 2.0, 8.0));
    }
    const auto back = read_model_file(path);
    REQUIRE(back.file_dt_ms == 0.25);
    CHECK(back.network.dt_ms() == 0.25);
    const auto& if_b = std::get<IfNeuron>(back.network.population(h).model);
    CHECK(if_b.rule.threshold == if_m.rule.threshold);
    CHECK(if_b.v0 == if_m.v0);
    const auto& lif_b = std::get<LifNeuron>(back.network.population(l).model);
    CHECK(lif_b.tau_ticks == lif_m.tau_ticks);
    CHECK(lif_b.v_leak == lif_m.v_leak);
    CHECK(lif_b.rule.v_reset == lif_m.rule.v_reset);
    CHECK(lif_b.v0 == PerNeuron(0.125));
    const auto& cuba_b = std::get<CubaLifNeuron>(back.network.population(c).model);
    CHECK(cuba_b.tau_syn_ticks == cuba_m.tau_syn_ticks);
    CHECK(cuba_b.v_leak == cuba_m.v_leak);
    CHECK(std::get<ReadoutNeuron>(back.network.population(out).model).v0 == PerNeuron(std::vector<double>{0.5, -0.5}));
    CHECK(std::get<PoissonSource>(back.network.population(in).model).rate_hz == ramp(6, 100.0, 400.0)); // Hz, as given
    CHECK(back.network.spike_process(in)->probability == net.spike_process(in)->probability);
    RunOptions o;
    o.ticks = 120;
    o.seed = 9;
    o.record_spikes = true;
    for (auto path_kind : {UpdatePath::lazy, UpdatePath::sweep}) {
        o.update_path = path_kind;
        const auto before = Engine(net).run(Stimulus::for_network(net), o, 0);
        const auto after = Engine(back.network).run(Stimulus::for_network(back.network), o, 0);
        CHECK(before.ledger.populations[l].spikes > 10);
        CHECK(before.spikes == after.spikes);
        CHECK(before.readouts[0].values == after.readouts[0].values);
    }
    std::filesystem::remove(path);
}

TEST_CASE("wrong-length or non-finite per-neuron values and a bad dt are refused naming the population and parameter",
          "[model_file][per_neuron]") {
    check_refused(
        {
            {"v0 of the wrong length",
             [](const Edit& e) {
                 e.remove("/populations/conv", "v0");
                 e.floats("/populations/conv/v0", {31});
             },
             {"population 'conv'", "dataset 'v0'", "(31,)", "(32,) or (1,)"}},
            {"NaN in per-neuron thresholds",
             [](const Edit& e) {
                 e.remove("/populations/conv", "threshold");
                 std::vector<double> t(32, 0.75);
                 t[7] = std::nan("");
                 e.doubles("/populations/conv/threshold", t);
             },
             {"population 'conv'", "dataset 'threshold'[7] is not finite"}},
            {"a negative per-neuron tau",
             [](const Edit& e) {
                 e.remove("/populations/pool", "tau_ticks");
                 std::vector<double> t(8, 6.0);
                 t[3] = -1.0;
                 e.doubles("/populations/pool/tau_ticks", t);
             },
             {"population 'pool'", "tau_ticks[3] is -1"}},
            {"a per-neuron threshold of 0 with reset by subtraction",
             [](const Edit& e) {
                 e.remove("/populations/conv", "threshold");
                 std::vector<double> t(32, 0.75);
                 t[30] = 0.0;
                 e.doubles("/populations/conv/threshold", t);
             },
             {"population 'conv'", "threshold[30] is 0"}},
            {"dt NaN", [](const Edit& e) { e.real("/", "dt", std::nan("")); }, {"attribute 'dt' is not finite"}},
            {"dt 0", [](const Edit& e) { e.real("/", "dt", 0.0); }, {"attribute 'dt' is 0, expected > 0"}},
            {"dt negative", [](const Edit& e) { e.real("/", "dt", -0.1); }, {"attribute 'dt' is -0.10000000000000001"}},
            {"time unit unknown", [](const Edit& e) { e.text("/", "time_unit", "us"); }, {"attribute 'time_unit' is 'us'"}},
            {"a Poisson rate above one spike per tick",
             [](const Edit& e) {
                 e.unlink("/populations/input/probability");
                 e.text("/populations/input", "model", "poisson_source");
                 e.real("/populations/input", "rate", 2000.0);
             },
             {"population 'input'", "rate 2000 Hz at dt 1 ms", "above 1"}},
            {"a negative Poisson rate",
             [](const Edit& e) {
                 e.unlink("/populations/input/probability");
                 e.text("/populations/input", "model", "poisson_source");
                 std::vector<double> r(16, 10.0);
                 r[5] = -3.0;
                 e.doubles("/populations/input/rate", r);
             },
             {"population 'input'", "rate[5] is -3 Hz"}},
        },
        "per_neuron_bad.h5");
}

TEST_CASE("a file without dt reads with the documented default, and dt in seconds is converted", "[model_file]") {
    const auto path = write_every_kind("dt.h5");
    {
        Edit e(path);
        e.remove("/", "dt");
        e.remove("/", "time_unit");
    }
    auto m = read_model_file(path);
    CHECK(!m.file_dt_ms);
    CHECK(m.network.dt_ms() == default_dt_ms);
    {
        Edit e(path);
        e.real("/", "dt", 0.0001);
        e.text("/", "time_unit", "s");
    }
    m = read_model_file(path);
    CHECK(m.file_dt_ms == 0.1);
    CHECK(m.network.dt_ms() == 0.1);
    std::filesystem::remove(path);
}

TEST_CASE("the model written for the validation tests reads back", "[model_file]") {
    const auto path = write_every_kind("valid.h5");
    const auto m = read_model_file(path);
    CHECK(m.inputs.size() == 1);
    CHECK(m.readout == "logits");
    std::filesystem::remove(path);
}

TEST_CASE("weights and other datasets are checked by their whole shape", "[model_file]") {
    check_refused(
        {
            {"dense (8, 5) for (5, 8)",
             [](const Edit& e) {
                 e.floats("/projections/fc/weight", {8, 5});
             },
             {"projection 'fc'", "'weight'", "(8, 5)", "(5, 8)"}},
            {"dense (40,)",
             [](const Edit& e) { e.floats("/projections/fc/weight", {40}); },
             {"projection 'fc'", "(40,)"}},
            {"dense (2, 5, 4)",
             [](const Edit& e) {
                 e.floats("/projections/fc/weight", {2, 5, 4});
             },
             {"projection 'fc'", "(2, 5, 4)"}},
            {"transposed analog input weights",
             [](const Edit& e) {
                 e.floats("/inputs/image/weight", {4, 5});
             },
             {"input 'image'", "'weight'", "(4, 5)", "(5, 4)"}},
            {"conv2d (C_in, C_out, kh, kw)",
             [](const Edit& e) {
                 e.floats("/projections/c1/weight", {1, 2, 3, 3});
             },
             {"projection 'c1'", "'weight'", "(1, 2, 3, 3)"}},
            {"one_to_one (5, 1)",
             [](const Edit& e) {
                 e.floats("/projections/skip/weight", {5, 1});
             },
             {"projection 'skip'", "'weight'", "(5, 1)"}},
            {"population bias (5, 1)",
             [](const Edit& e) {
                 e.floats("/populations/dense/bias", {5, 1});
             },
             {"population 'dense'", "'bias'", "(5, 1)"}},
            {"stride (2, 1)",
             [](const Edit& e) {
                 e.int64s("/projections/c1/stride", {2, 1}, {1, 1});
             },
             {"projection 'c1'", "'stride'", "(2, 1)"}},
            {"shape (1, 1)",
             [](const Edit& e) {
                 e.int64s("/populations/dense/shape", {1, 1}, {5});
             },
             {"population 'dense'", "'shape'", "(1, 1)"}},
            {"sparse target (5, 1)",
             [](const Edit& e) {
                 e.dataset("/projections/sparse/target", {5, 1}, H5T_STD_U32LE, H5T_NATIVE_UINT32,
                           std::vector<std::uint32_t>{0, 4, 2, 1, 3});
             },
             {"projection 'sparse'", "'target'", "(5, 1)"}},
        },
        "shapes.h5");
}

TEST_CASE("a missing required attribute is an error, not a default", "[model_file]") {
    check_refused(
        {
            {"threshold",
             [](const Edit& e) { e.remove("/populations/conv", "threshold"); },
             {"population 'conv'", "'threshold' is missing"}},
            {"misspelt threshold",
             [](const Edit& e) {
                 e.remove("/populations/conv", "threshold");
                 e.real("/populations/conv", "threshhold", 0.75);
             },
             {"population 'conv'", "threshold"}},
            {"reset",
             [](const Edit& e) { e.remove("/populations/pool", "reset"); },
             {"population 'pool'", "'reset' is missing"}},
            {"comparison",
             [](const Edit& e) { e.remove("/populations/conv", "comparison"); },
             {"population 'conv'", "'comparison' is missing"}},
            {"v0 of a spiking population",
             [](const Edit& e) { e.remove("/populations/conv", "v0"); },
             {"population 'conv'", "'v0' is missing"}},
            {"v_reset of a reset to a value",
             [](const Edit& e) { e.remove("/populations/pool", "v_reset"); },
             {"population 'pool'", "'v_reset' is missing"}},
            {"mask_ratio of a releasing projection",
             [](const Edit& e) { e.remove("/projections/fc", "mask_ratio"); },
             {"projection 'fc'", "'mask_ratio' is missing"}},
            {"readout population",
             [](const Edit& e) { e.remove("/readout", "population"); },
             {"/readout", "'population' is missing"}},
        },
        "required.h5");
}

TEST_CASE("anything present and unused is an error naming the object and the item", "[model_file]") {
    check_refused(
        {
            {"refractory_ticks",
             [](const Edit& e) { e.integer("/populations/conv", "refractory_ticks", 2); },
             {"population 'conv'", "attribute 'refractory_ticks'"}},
            {"readout accumulate max",
             [](const Edit& e) { e.text("/readout", "accumulate", "max"); },
             {"/readout", "accumulate", "max"}},
            {"v0 both as an attribute and as a per-neuron dataset",
             [](const Edit& e) { e.floats("/populations/conv/v0", {32}); },
             {"population 'conv'", "'v0' is given twice"}},
            {"per-neuron v_reset of a subtracting reset",
             [](const Edit& e) { e.floats("/populations/conv/v_reset", {32}); },
             {"population 'conv'", "dataset 'v_reset'"}},
            {"time_unit without dt",
             [](const Edit& e) { e.remove("/", "dt"); }, // the writer wrote both
             {"attribute 'time_unit'"}},
            {"v_reset of a subtracting reset",
             [](const Edit& e) { e.real("/populations/conv", "v_reset", 0.5); },
             {"population 'conv'", "attribute 'v_reset'"}},
            {"tau_ticks of an IF population",
             [](const Edit& e) { e.real("/populations/conv", "tau_ticks", 5.0); },
             {"population 'conv'", "attribute 'tau_ticks'"}},
            {"qcfs_levels outside the metadata namespace",
             [](const Edit& e) { e.integer("/populations/conv", "qcfs_levels", 8); },
             {"population 'conv'", "attribute 'qcfs_levels'", "meta:"}},
            {"probability of an IF population",
             [](const Edit& e) { e.doubles("/populations/conv/probability", {0.5}); },
             {"population 'conv'", "dataset 'probability'"}},
            {"stride of a dense map",
             [](const Edit& e) {
                 e.int64s("/projections/fc/stride", {2}, {1, 1});
             },
             {"projection 'fc'", "dataset 'stride'"}},
            {"stride of a dense analog input",
             [](const Edit& e) {
                 e.int64s("/inputs/image/stride", {2}, {1, 1});
             },
             {"input 'image'", "dataset 'stride'"}},
            {"unknown projection attribute",
             [](const Edit& e) { e.text("/projections/c1", "plasticity", "stdp"); },
             {"projection 'c1'", "attribute 'plasticity'"}},
            {"projection role outside the vocabulary",
             [](const Edit& e) { e.text("/projections/c1", "role", "q"); },
             {"projection 'c1'", "role 'q' is not one of"}},
            {"unknown root attribute",
             [](const Edit& e) { e.integer("/", "qcfs_levels", 8); },
             {"attribute 'qcfs_levels'"}},
            {"unknown root group", [](const Edit& e) { e.group("/metadata"); }, {"'metadata'"}},
            {"unknown collection attribute",
             [](const Edit& e) { e.text("/projections", "default_release", "spike"); },
             {"/projections", "attribute 'default_release'"}},
            {"projection delay beside per-synapse delays",
             [](const Edit& e) { e.integer("/projections/sparse", "delay", 2); },
             {"projection 'sparse'", "attribute 'delay'"}},
        },
        "unused.h5");
}

TEST_CASE("the ANN's own cost per layer (/ann) round-trips and is read strictly", "[model_file]") {
    const auto path = write_every_kind("ann.h5");
    const auto m = read_model_file(path);
    REQUIRE(m.network.ann());
    const auto& a = *m.network.ann();
    CHECK(a.levels == 8);
    REQUIRE(a.layers.size() == 3);
    CHECK(a.layers[1].name == "fc");
    CHECK(a.layers[1].kind == "linear");
    CHECK(a.layers[2].macs == 12);
    CHECK(a.layers[0].weights == 20);
    CHECK(a.layers[0].inputs == 4);
    CHECK(a.layers[0].outputs == 5);
    CHECK(a.macs() == 160 + 40 + 12);
    std::filesystem::remove(path);
    check_refused(
        {
            {"unknown /ann attribute", [](const Edit& e) { e.text("/ann", "units", "pJ"); }, {"/ann", "attribute 'units'"}},
            {"unknown /ann dataset", [](const Edit& e) { e.int64s("/ann/flops", {3}, {1, 2, 3}); }, {"/ann", "dataset 'flops'"}},
            {"macs of two layers for three",
             [](const Edit& e) { e.int64s("/ann/macs", {2}, {1, 2}); },
             {"/ann", "dataset 'macs'", "(3,)"}},
            {"negative MACs", [](const Edit& e) { e.int64s("/ann/macs", {3}, {1, -2, 3}); }, {"/ann", "'macs'[1]"}},
            {"fractional weights", [](const Edit& e) { e.doubles("/ann/weights", {1.0, 2.5, 3.0}); }, {"/ann", "'weights'[1]", "2.5"}},
            {"levels 0", [](const Edit& e) { e.integer("/ann", "levels", 0); }, {"/ann", "'levels'"}},
            {"missing outputs", [](const Edit& e) { e.unlink("/ann/outputs"); }, {"/ann", "outputs"}},
            {"kinds missing", [](const Edit& e) { e.remove("/ann", "kinds"); }, {"/ann", "kinds"}},
        },
        "ann_bad.h5");
}

TEST_CASE("an ANN layer of an unknown kind or a repeated name is refused", "[model_file]") {
    for (const auto& [ann, words] :
         {std::pair{AnnBaseline{{{"a", "conv", 1, 1, 1, 1}}, 0}, "kind 'conv'"},
          std::pair{AnnBaseline{{{"a", "linear", 1, 1, 1, 1}, {"a", "linear", 1, 1, 1, 1}}, 0}, "unique"},
          std::pair{AnnBaseline{{}, 0}, "no layers"}}) {
        NetworkBuilder b;
        b.add_population("x", {1}, IfNeuron{});
        b.set_ann(ann);
        CHECK_THROWS_WITH(b.build(), Contains(words));
    }
}

TEST_CASE("metadata under 'meta:' names is ignored by the reader", "[model_file]") {
    const auto path = write_every_kind("meta.h5");
    {
        Edit e(path);
        e.integer("/populations/conv", "meta:qcfs_levels", 8);
        e.text("/projections/c1", "meta:role", "q");
        e.text("/", "meta:training", "{\"epochs\": 3}");
        e.group("/meta:records");
        e.floats("/meta:records/loss", {4});
        e.floats("/populations/conv/meta:v0_trained", {32});
        e.group("/populations/meta:notes"); // a member of a collection in the namespace: not a population
    }
    const auto m = read_model_file(path);
    CHECK(m.network.populations().size() == 6);
    std::filesystem::remove(path);
}

TEST_CASE("integer values are checked for integrality and range before narrowing", "[model_file]") {
    check_refused(
        {
            {"delay 1.5",
             [](const Edit& e) { e.real("/projections/fc", "delay", 1.5); },
             {"projection 'fc'", "'delay'", "1.5"}},
            {"delay -1",
             [](const Edit& e) { e.integer("/projections/fc", "delay", -1); },
             {"projection 'fc'", "'delay'", "-1"}},
            {"per-synapse delay 2^32 + 1",
             [](const Edit& e) {
                 e.int64s("/projections/sparse/delay", {5}, {0, 3, (std::int64_t{1} << 32) + 1, 2, 0});
             },
             {"projection 'sparse'", "'delay'", "4294967297"}},
            {"per-synapse delay 2.5",
             [](const Edit& e) {
                 e.doubles("/projections/sparse/delay", {0, 3, 2.5, 2, 0});
             },
             {"projection 'sparse'", "'delay'", "2.5"}},
            {"sparse target 2^32",
             [](const Edit& e) {
                 e.int64s("/projections/sparse/target", {5}, {0, 4, 2, std::int64_t{1} << 32, 3});
             },
             {"projection 'sparse'", "'target'", "4294967296"}},
            {"sparse target 1.5",
             [](const Edit& e) {
                 e.doubles("/projections/sparse/target", {0, 4, 1.5, 1, 3});
             },
             {"projection 'sparse'", "'target'", "1.5"}},
            {"row_begin 0.5",
             [](const Edit& e) {
                 e.doubles("/projections/sparse/row_begin", {0, 2, 3.5, 5});
             },
             {"projection 'sparse'", "'row_begin'", "3.5"}},
            {"kernel_size 2.5",
             [](const Edit& e) {
                 e.doubles("/projections/p1/kernel_size", {2.5, 2});
             },
             {"projection 'p1'", "'kernel_size'", "2.5"}},
            {"stride 1.5",
             [](const Edit& e) {
                 e.doubles("/projections/c1/stride", {1.5, 1});
             },
             {"projection 'c1'", "'stride'", "1.5"}},
            {"padding 2^40",
             [](const Edit& e) {
                 e.int64s("/projections/c1/padding", {2}, {std::int64_t{1} << 40, 1});
             },
             {"projection 'c1'", "'padding'"}},
            {"groups 1.5",
             [](const Edit& e) { e.real("/projections/c1", "groups", 1.5); },
             {"projection 'c1'", "'groups'", "1.5"}},
            {"shape 2.5",
             [](const Edit& e) { e.doubles("/populations/dense/shape", {5.5}); },
             {"population 'dense'", "'shape'", "5.5"}},
            {"format_version 2.5",
             [](const Edit& e) { e.real("/", "format_version", 2.5); },
             {"'format_version'", "2.5"}},
        },
        "integers.h5");
}

TEST_CASE("an integral float where an integer is expected is read exactly", "[model_file]") {
    const auto path = write_every_kind("integral.h5");
    {
        Edit e(path);
        e.real("/projections/fc", "delay", 3.0);
        e.doubles("/projections/sparse/delay", {0, 3, 1, 2, 0});
    }
    const auto m = read_model_file(path);
    CHECK(m.network.projection(2).delay == 3);
    // Grouped by delay within each source, as the network holds them (row 2's synapses swap).
    CHECK(std::get<Sparse>(m.network.connectivity(4)).delay == std::vector<std::uint32_t>{0, 3, 1, 0, 2});
    std::filesystem::remove(path);
}

TEST_CASE("float64 weights are held in float32: rounding is counted, out-of-range values refused", "[model_file]") {
    const auto path = write_every_kind("float64.h5");
    SECTION("values float32 holds exactly are read as they are, nothing reported") {
        { Edit(path).doubles("/projections/skip/weight", {0.5, 1.0, 1.5, 2.0, 2.5}); }
        const auto m = read_model_file(path);
        CHECK(m.rounded_to_float.values == 0);
        CHECK(m.rounded_to_float.text().empty());
        CHECK(std::get<OneToOne>(m.network.connectivity(3)).weight == std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f, 2.5f});
    }
    SECTION("values float32 cannot hold are rounded to nearest and counted, naming the first dataset") {
        const std::vector<double> w{0.1, 1.0, 1.0 / 3.0, 2.0, 1e-3};
        { Edit(path).doubles("/projections/skip/weight", w); }
        const auto m = read_model_file(path);
        double largest = 0;
        for (double x : w) largest = std::max(largest, std::abs(double(float(x)) - x) / std::abs(x));
        CHECK(m.rounded_to_float.values == 3);
        CHECK(m.rounded_to_float.max_relative == largest);
        CHECK(largest > 0);
        CHECK_THAT(m.rounded_to_float.first, Contains(path) && Contains("projection 'skip'") && Contains("'weight'"));
        CHECK_THAT(m.rounded_to_float.text(), Contains("3 float64 values rounded to float32"));
        CHECK(std::get<OneToOne>(m.network.connectivity(3)).weight ==
              std::vector<float>{float(w[0]), 1.0f, float(w[2]), 2.0f, float(w[4])});
    }
    std::filesystem::remove(path);
}

TEST_CASE("a float64 weight beyond float32's range is refused, not made infinite", "[model_file]") {
    check_refused({{"a weight beyond float32's range",
                    [](const Edit& e) { e.doubles("/projections/skip/weight", {0.5, 1.0, 1e39, 2.0, 2.5}); },
                    {"projection 'skip'", "'weight'[2]", "e+38", "beyond float32's range"}}},
                  "float64_range.h5");
}

TEST_CASE("models that cannot mean anything are refused", "[model_file]") {
    check_refused(
        {
            {"an analog input into a bernoulli_source",
             [](const Edit& e) {
                 e.text("/inputs/image", "target", "input");
                 e.floats("/inputs/image/weight", {16, 4});
             },
             {"input 'image'", "'input'", "bernoulli_source"}},
            {"an analog input into a spike_source",
             [](const Edit& e) {
                 e.text("/inputs/image", "target", "spikes");
                 e.floats("/inputs/image/weight", {3, 4});
             },
             {"input 'image'", "'spikes'", "spike_source"}},
            {"no populations",
             [](const Edit& e) {
                 for (const char* p : {"/projections", "/inputs", "/readout", "/populations"}) e.unlink(p);
                 e.group("/populations");
             },
             {"/populations", "no populations"}},
            {"format_version 1",
             [](const Edit& e) { e.integer("/", "format_version", 1); },
             {"format_version 1", "migrate-model-v1"}},
        },
        "meaningless.h5");
}

TEST_CASE("the writer refuses an object named in the metadata namespace", "[model_file]") {
    NetworkBuilder b;
    b.add_population("meta:hidden", {2}, SpikeSource{});
    const auto path = temp_path("meta_name.h5");
    std::filesystem::remove(path);
    REQUIRE_THROWS_WITH(write_model_file(path, b.build(), ModelFileInfo{}), Contains("population 'meta:hidden'"));
    CHECK(!std::filesystem::exists(path));
}

TEST_CASE("a dataset that would not fit in memory is refused with both sizes", "[model_file]") {
    // check_extent calls this for every dataset read, after the stored-bytes checks: a deflated
    // dataset of zeros passes those with 1/1032 of its size on disk.
    CHECK_THROWS_WITH(h5::check_memory(32e9, "weight", "m.h5: projection 'fc'", 24e9),
                      "m.h5: projection 'fc': 'weight' needs 32 GB of memory once read, but 24 GB is available");
    CHECK_NOTHROW(h5::check_memory(1e6, "weight", "m.h5", 24e9));
    const double available = h5::available_memory();
    CHECK(available > 1e8);      // this machine has far more than 100 MB free ...
    CHECK(available < 1e13);     // ... and /proc/meminfo was read, not the "cannot tell" infinity
}
