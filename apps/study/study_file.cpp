#include "apps/study/study_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "apps/study/statistics.hpp"
#include "io/hdf5_access.hpp"
#include "sim/errors.hpp"

namespace quantal::study {

namespace {

// One configuration at one observed tick.
struct Accuracy {
    double accuracy, low, high, change, change_low, change_high, p_value;
};

// Everything reported for one configuration (per image).
struct Row {
    std::vector<Accuracy> at; // per observed tick
    double energy_pj, vs_baseline, vs_ann, sops, macs, spikes, attempted, transmitted, masked;
};

const Tally& tally_of(std::span<const Configuration> plan, const StudyState& s, std::size_t c) {
    return s.tallies.at(plan[c].same_as.value_or(c));
}

std::vector<Row> rows(const StudyDescription& d, std::span<const Configuration> plan, const StudyState& s,
                      std::span<const Network> nets) {
    const std::uint64_t O = d.observe.size(), N = d.samples;
    std::vector<Row> out;
    for (std::size_t c = 0; c < plan.size(); ++c) {
        const Tally& m = tally_of(plan, s, c);
        const Tally& b = tally_of(plan, s, plan[c].baseline);
        Row row{};
        for (std::uint64_t t = 0; t < O; ++t) {
            std::uint64_t right = 0, gained = 0, lost = 0;
            for (std::uint64_t k = 0; k < N; ++k) {
                const bool x = m.correct[t * N + k], y = b.correct[t * N + k];
                right += x, gained += x && !y, lost += y && !x;
            }
            const auto ci = clopper_pearson(right, N);
            const auto pc = paired_change(gained, lost, N);
            row.at.push_back({double(right) / double(N), ci.low, ci.high, pc.difference, pc.interval.low,
                              pc.interval.high, pc.p_value});
        }
        const Network& net = nets[plan[c].model];
        const auto e = summarize(m.ledger, net, d.costs), eb = summarize(b.ledger, net, d.costs);
        row.energy_pj = e.snn_pj;
        row.vs_baseline = e.snn_pj / eb.snn_pj;
        row.vs_ann = e.snn_pj / e.ann_pj;
        row.sops = e.sops;
        row.macs = double(m.ledger.total_macs()) / double(N);
        row.spikes = double(m.ledger.total_spikes()) / double(N);
        row.attempted = row.transmitted = row.masked = 0;
        for (const auto& p : m.ledger.projections)
            row.attempted += double(p.attempted), row.transmitted += double(p.transmitted),
                row.masked += double(p.masked_spikes);
        for (const auto& op : m.ledger.operators) row.masked += double(op.masked_spikes);
        row.attempted /= double(N), row.transmitted /= double(N), row.masked /= double(N);
        out.push_back(std::move(row));
    }
    return out;
}

std::string release_name(const Configuration& c) { return mode_name(c.release); }

} // namespace

void write_study_file(const std::string& path, const StudyDescription& d, std::span<const Configuration> plan,
                      const StudyState& state, std::span<const Network> nets) {
    const std::uint64_t C = plan.size(), O = d.observe.size(), N = d.samples;
    const auto table = rows(d, plan, state, nets);
    auto file = h5::create_file(path);
    h5::write_string_attribute(file, "format", "quantal-study");
    h5::write_int_attribute(file, "format_version", study_format_version);
    h5::write_string_attribute(file, "version", d.version);
    h5::write_string_attribute(file, "command_line", d.command_line);
    h5::write_string_array_attribute(file, "models", d.models);
    h5::write_string_array_attribute(file, "model_sha256", d.model_sha256);
    h5::write_string_attribute(file, "input", d.input);
    h5::write_string_attribute(file, "input_sha256", d.input_sha256);
    h5::write_string_attribute(file, "labels", d.labels);
    h5::write_string_attribute(file, "labels_sha256", d.labels_sha256);
    h5::write_int_attribute(file, "offset", std::int64_t(d.offset));
    h5::write_int_attribute(file, "samples", std::int64_t(N));
    h5::write_int_attribute(file, "ticks", std::int64_t(d.ticks));
    h5::write_int_attribute(file, "block", std::int64_t(d.block));
    h5::write_double_attribute(file, "release_spread", d.release_spread);
    h5::write_double_attribute(file, "e_ac_pj", d.costs.e_ac_pj);
    h5::write_double_attribute(file, "e_mac_pj", d.costs.e_mac_pj);
    h5::write_dataset(file, "observe", d.observe, {O});

    auto g = h5::create_group(file, "configurations", path);
    std::vector<std::uint32_t> model, compensate, each;
    std::vector<std::uint64_t> seed, baseline;
    std::vector<std::int64_t> same_as;
    std::vector<double> ratio;
    std::vector<std::string> release, targets;
    for (const auto& c : plan) {
        model.push_back(c.model);
        seed.push_back(c.seed);
        ratio.push_back(c.ratio);
        release.push_back(release_name(c));
        targets.push_back(c.targets);
        compensate.push_back(c.compensated);
        each.push_back(c.each);
        baseline.push_back(c.baseline);
        same_as.push_back(c.same_as ? std::int64_t(*c.same_as) : -1);
    }
    h5::write_dataset(g, "model", model, {C});
    h5::write_dataset(g, "seed", seed, {C});
    h5::write_dataset(g, "ratio", ratio, {C});
    h5::write_dataset(g, "compensate", compensate, {C});
    h5::write_dataset(g, "each", each, {C});
    h5::write_dataset(g, "baseline", baseline, {C});
    h5::write_dataset(g, "same_as", same_as, {C});
    h5::write_string_array_attribute(g, "release", release);
    h5::write_string_array_attribute(g, "targets", targets);

    auto r = h5::create_group(file, "results", path);
    std::vector<std::uint32_t> correct;
    correct.reserve(C * O * N);
    for (std::size_t c = 0; c < C; ++c) {
        const auto& bits = tally_of(plan, state, c).correct;
        correct.insert(correct.end(), bits.begin(), bits.end());
    }
    h5::write_dataset(r, "correct", correct, {C, O, N});
    auto per_tick = [&](auto field) {
        std::vector<double> v;
        for (const auto& row : table)
            for (const auto& a : row.at) v.push_back(a.*field);
        return v;
    };
    for (auto [name, field] : {std::pair{"accuracy", &Accuracy::accuracy}, {"accuracy_low", &Accuracy::low},
                               {"accuracy_high", &Accuracy::high}, {"change", &Accuracy::change},
                               {"change_low", &Accuracy::change_low}, {"change_high", &Accuracy::change_high},
                               {"p_value", &Accuracy::p_value}})
        h5::write_dataset(r, name, per_tick(field), {C, O});
    for (auto [name, field] : {std::pair{"energy_pj", &Row::energy_pj}, {"energy_vs_baseline", &Row::vs_baseline},
                               {"energy_vs_ann", &Row::vs_ann}, {"sops", &Row::sops}, {"macs", &Row::macs},
                               {"spikes", &Row::spikes}, {"attempted", &Row::attempted},
                               {"transmitted", &Row::transmitted}, {"masked_spikes", &Row::masked}}) {
        std::vector<double> v;
        for (const auto& row : table) v.push_back(row.*field);
        h5::write_dataset(r, name, v, {C});
    }

    // Per layer, per image: /models/<m>/{populations,projections,operators} name the columns;
    // models with fewer layers than the widest are padded with zeros.
    auto models = h5::create_group(file, "models", path);
    std::size_t P = 0, J = 0, K = 0;
    for (std::size_t m = 0; m < nets.size(); ++m) {
        auto mg = h5::create_group(models, std::to_string(m), path);
        std::vector<std::string> pops, projs, ops;
        for (const auto& p : nets[m].populations()) pops.push_back(p.name);
        for (const auto& p : nets[m].projections()) projs.push_back(p.name);
        for (const auto& o : nets[m].operators()) ops.push_back(std::get<SoftmaxAttention>(o).name);
        h5::write_string_array_attribute(mg, "populations", pops);
        h5::write_string_array_attribute(mg, "projections", projs);
        h5::write_string_array_attribute(mg, "operators", ops);
        P = std::max(P, pops.size()), J = std::max(J, projs.size()), K = std::max(K, ops.size());
    }
    auto layers = h5::create_group(r, "layers", path);
    auto per_layer = [&](const char* name, std::size_t width, auto get) {
        std::vector<double> v(C * width, 0.0);
        for (std::size_t c = 0; c < C; ++c) {
            const auto& ledger = tally_of(plan, state, c).ledger;
            get(ledger, nets[plan[c].model], std::span<double>(v).subspan(c * width, width));
        }
        for (auto& x : v) x /= double(N);
        h5::write_dataset(layers, name, v, {C, width});
    };
    per_layer("population_spikes", P, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.populations.size(); ++i) out[i] = double(l.populations[i].spikes);
    });
    // Neuron updates (format version 3): the event-driven visits counted, and the T x N a clocked
    // design spends (neurons with a membrane; 0 for spike sources), so the memory model can price
    // either (docs/energy.md).
    per_layer("population_updates", P, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.populations.size(); ++i) out[i] = double(l.populations[i].updates);
    });
    per_layer("population_clocked_updates", P, [&](const EnergyLedger&, const Network& net, std::span<double> out) {
        for (PopulationId i = 0; i < net.populations().size(); ++i)
            out[i] = is_source(net.population(i).model) ? 0.0 : double(d.ticks) * double(net.population(i).size()) * double(N);
    });
    per_layer("projection_attempted", J, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.projections.size(); ++i) out[i] = double(l.projections[i].attempted);
    });
    per_layer("projection_transmitted", J, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.projections.size(); ++i) out[i] = double(l.projections[i].transmitted);
    });
    per_layer("projection_masked_spikes", J, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.projections.size(); ++i) out[i] = double(l.projections[i].masked_spikes);
    });
    per_layer("operator_coincidences", K, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.operators.size(); ++i) out[i] = double(l.operators[i].coincidences);
    });
    per_layer("operator_deliveries", K, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.operators.size(); ++i) out[i] = double(l.operators[i].deliveries);
    });
    per_layer("operator_macs", K, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.operators.size(); ++i) out[i] = double(l.operators[i].macs);
    });
    per_layer("operator_masked_spikes", K, [](const EnergyLedger& l, const Network&, std::span<double> out) {
        for (std::size_t i = 0; i < l.operators.size(); ++i) out[i] = double(l.operators[i].masked_spikes);
    });
}

namespace {

// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return out + "\"";
}

std::string number(double x) {
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", x); // round-trips: the file's double exactly
    return text;
}

} // namespace

void write_study_csv(const std::string& path, const StudyDescription& d, std::span<const Configuration> plan,
                     const StudyState& state, std::span<const Network> nets) {
    const auto table = rows(d, plan, state, nets);
    std::ostringstream out;
    out << "configuration,model,model_sha256,seed,ratio,release,targets,compensate,each,baseline,same_as,observe,"
           "accuracy,accuracy_low,accuracy_high,change,change_low,change_high,p_value,energy_pj,energy_vs_baseline,"
           "energy_vs_ann,sops,macs,spikes,attempted,transmitted,masked_spikes,samples,version,command_line\n";
    for (std::size_t c = 0; c < plan.size(); ++c) {
        const auto& p = plan[c];
        const auto& row = table[c];
        for (std::size_t t = 0; t < d.observe.size(); ++t) {
            const auto& a = row.at[t];
            out << c << ',' << csv_field(d.models[p.model]) << ',' << d.model_sha256[p.model] << ',' << p.seed << ','
                << number(p.ratio) << ',' << release_name(p) << ',' << csv_field(p.targets) << ',' << p.compensated
                << ',' << p.each << ',' << p.baseline << ',' << (p.same_as ? std::to_string(*p.same_as) : "") << ','
                << d.observe[t];
            for (double x : {a.accuracy, a.low, a.high, a.change, a.change_low, a.change_high, a.p_value,
                             row.energy_pj, row.vs_baseline, row.vs_ann, row.sops, row.macs, row.spikes, row.attempted,
                             row.transmitted, row.masked})
                out << ',' << number(x);
            out << ',' << d.samples << ',' << csv_field(d.version) << ',' << csv_field(d.command_line) << '\n';
        }
    }
    // Written whole to PATH.tmp, then renamed: a CSV that exists is complete.
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        const std::string text = std::move(out).str();
        if (!f || !f.write(text.data(), std::streamsize(text.size())) || !f.flush()) {
            const std::string reason = std::strerror(errno);
            std::remove(tmp.c_str());
            throw InputError("--csv " + path + ": cannot be written (" + reason + ")");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string reason = std::strerror(errno);
        std::remove(tmp.c_str());
        throw InputError("--csv " + path + ": cannot rename " + tmp + " to it (" + reason + ")");
    }
}

bool is_study_file(const std::string& path) {
    auto file = h5::open_file(path);
    return h5::has_attribute(file, "format") && h5::read_string_attribute(file, "format", path) == "quantal-study";
}

StudyCounts read_study_counts(const std::string& path) {
    auto file = h5::open_file(path);
    StudyCounts s;
    s.models = h5::read_string_array_attribute(file, "models", path);
    s.samples = std::uint64_t(h5::read_int_attribute(file, "samples", path));
    s.ticks = std::uint64_t(h5::read_int_attribute(file, "ticks", path));
    s.costs = {h5::read_double_attribute(file, "e_ac_pj", path), h5::read_double_attribute(file, "e_mac_pj", path)};
    if (!h5::has_link(file, "results/layers"))
        throw InputError(path + ": has no /results/layers (a study file of format version 1): rerun the sweep");
    s.format_version = h5::read_int_attribute(file, "format_version", path);
    if (s.format_version > study_format_version)
        throw InputError(path + ": study file format version " + std::to_string(s.format_version) +
                         " is newer than this quantal reads (" + std::to_string(study_format_version) + ")");
    s.has_visits = s.format_version >= 3; // version 2 kept no neuron updates
    for (std::size_t m = 0; m < s.models.size(); ++m) {
        const std::string where = path + ": /models/" + std::to_string(m);
        auto g = h5::open_group(file, "models/" + std::to_string(m), path);
        s.model_layers.push_back({h5::read_string_array_attribute(g, "populations", where),
                                  h5::read_string_array_attribute(g, "projections", where),
                                  h5::read_string_array_attribute(g, "operators", where)});
    }
    const auto model = h5::read_array(file, "configurations/model", path + ": /configurations");
    const std::size_t C = model.values.size();
    auto column = [&](const std::string& name) {
        auto a = h5::read_array(file, name, path + ": /" + name);
        if (a.shape.empty() || std::size_t(a.shape[0]) != C)
            throw InputError(path + ": /" + name + " has shape " + h5::shape_text(a.shape) + ", expected " +
                             std::to_string(C) + " rows (one per configuration)");
        return a;
    };
    const auto ratio = column("configurations/ratio"), baseline = column("configurations/baseline"),
               macs = column("results/macs"), accuracy = column("results/accuracy");
    auto g = h5::open_group(file, "configurations", path);
    const auto release = h5::read_string_array_attribute(g, "release", path + ": /configurations");
    const auto targets = h5::read_string_array_attribute(g, "targets", path + ": /configurations");
    if (release.size() != C || targets.size() != C) throw InputError(path + ": /configurations: release or targets is not one per configuration");
    std::vector<h5::Array> layers;
    for (const char* name : {"population_spikes", "projection_attempted", "projection_transmitted", "projection_masked_spikes",
                             "operator_coincidences", "operator_deliveries", "operator_macs", "operator_masked_spikes"})
        layers.push_back(column(std::string("results/layers/") + name));
    if (s.has_visits) layers.push_back(column("results/layers/population_updates"));
    for (std::size_t c = 0; c < C; ++c) {
        StudyCounts::Row r;
        r.model = std::uint32_t(model.values[c]);
        if (r.model >= s.models.size()) throw InputError(path + ": /configurations/model[" + std::to_string(c) + "] is out of range");
        r.ratio = ratio.values[c], r.baseline = std::uint64_t(baseline.values[c]), r.macs = macs.values[c];
        const std::size_t O = accuracy.shape.size() == 2 ? std::size_t(accuracy.shape[1]) : 1;
        r.accuracy = accuracy.values[c * O + O - 1];
        r.release = release[c], r.targets = targets[c];
        const auto& names = s.model_layers[r.model];
        std::vector<double>* out[] = {&r.population_spikes, &r.projection_attempted, &r.projection_transmitted,
                                      &r.projection_masked, &r.operator_coincidences, &r.operator_deliveries,
                                      &r.operator_macs, &r.operator_masked, &r.population_updates};
        const std::size_t widths[] = {names.populations.size(), names.projections.size(), names.projections.size(),
                                      names.projections.size(), names.operators.size(), names.operators.size(),
                                      names.operators.size(), names.operators.size(), names.populations.size()};
        for (std::size_t k = 0; k < layers.size(); ++k) {
            const std::size_t width = layers[k].shape.size() == 2 ? std::size_t(layers[k].shape[1]) : 0;
            if (width < widths[k]) throw InputError(path + ": /results/layers has fewer columns than model " + std::to_string(r.model) + "'s layers");
            out[k]->assign(layers[k].values.begin() + std::ptrdiff_t(c * width),
                           layers[k].values.begin() + std::ptrdiff_t(c * width + widths[k]));
        }
        s.rows.push_back(std::move(r));
    }
    return s;
}

} // namespace quantal::study
