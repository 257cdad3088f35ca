#include "io/spike_trace.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "io/hdf5_access.hpp"
#include "io/journal_driver.hpp"
#include "sim/errors.hpp"
#include "sim/potential_probe.hpp"

namespace quantal {

namespace {

using h5::Handle;

// Rows of the small per-sample tables are appended one at a time; a chunk holds this many.
constexpr hsize_t sample_chunk_rows = 256;

const char* status_name(TraceStatus s) { return s == TraceStatus::complete ? "complete" : "interrupted"; }

// Per-sample and total counters, by name, in the order they are written.
struct PopulationCounter {
    const char* name;
    std::uint64_t PopulationCounts::*field;
};
struct ProjectionCounter {
    const char* name;
    std::uint64_t ProjectionCounts::*field;
};
constexpr PopulationCounter population_counters[] = {{"spikes", &PopulationCounts::spikes},
                                                     {"updates", &PopulationCounts::updates},
                                                     {"drift_ticks", &PopulationCounts::drift_ticks},
                                                     {"wakeups", &PopulationCounts::wakeups},
                                                     {"macs", &PopulationCounts::macs}};
constexpr ProjectionCounter projection_counters[] = {{"spikes_in", &ProjectionCounts::spikes_in},
                                                     {"masked_spikes", &ProjectionCounts::masked_spikes},
                                                     {"attempted", &ProjectionCounts::attempted},
                                                     {"transmitted", &ProjectionCounts::transmitted}};
struct OperatorCounter {
    const char* name;
    std::uint64_t OperatorCounts::*field;
};
constexpr OperatorCounter operator_counters[] = {{"coincidences", &OperatorCounts::coincidences},
                                                 {"deliveries", &OperatorCounts::deliveries},
                                                 {"macs", &OperatorCounts::macs},
                                                 {"masked_spikes", &OperatorCounts::masked_spikes}};

const char* operator_kind(const Operator& op) {
    return std::visit(
        [](const auto& o) -> const char* {
            using O = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<O, SoftmaxAttention>)
                return "softmax_attention";
            else
                return "operator";
        },
        op);
}

// The writes a trace needs, on top of h5::Handle: extendible datasets grown by appending,
// attributes rewritten as the run advances. Errors name the file and the object.
class TraceFile {
public:
    TraceFile(const std::string& path, bool replace_existing) : path_(path) {
        h5::silence_errors();
        // Groups remember creation order, so readers list populations in network order.
        Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
        H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
        // Without replace_existing the check and the creation are one step (no file can appear between).
        // Through the journaling driver: a failed write leaves the file as it was at the end of
        // the last completed sample (io/journal_driver.hpp).
        const Handle fapl = journal_.access_plist();
        file_ = Handle(H5Fcreate(path.c_str(), replace_existing ? H5F_ACC_TRUNC : H5F_ACC_EXCL, fcpl, fapl), H5Fclose);
        if (!file_.valid()) {
            std::error_code ec;
            if (!replace_existing && std::filesystem::exists(path, ec))
                throw InputError("trace " + path + ": already exists (not replaced)");
            throw InputError("trace " + path + ": cannot create the file" +
                             (journal_.error() ? " (" + std::string(std::strerror(journal_.error())) + ")" : ""));
        }
    }

    ~TraceFile() { close(); }
    TraceFile(const TraceFile&) = delete;
    TraceFile& operator=(const TraceFile&) = delete;

    // An existing trace, to continue it (resume from a checkpoint).
    struct Existing {};
    TraceFile(const std::string& path, Existing) : path_(path) {
        h5::silence_errors();
        // Through the journal too: a full disk while continuing keeps what the checkpoint had.
        const Handle fapl = journal_.access_plist();
        file_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl), H5Fclose);
        if (!file_.valid())
            throw InputError("trace " + path + ": cannot be opened to continue it (missing, not HDF5 or damaged)");
    }
    hid_t id() const { return file_; }

    // With the one-chunk cache create_extendible() gives (a trace may have hundreds of datasets).
    Handle open_dataset(const std::string& name) {
        Handle d = check(Handle(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose), name, "open dataset");
        Handle dcpl(H5Dget_create_plist(d), H5Pclose);
        Handle type(H5Dget_type(d), H5Tclose);
        hsize_t chunk[2] = {1, 1};
        const int rank = dcpl.valid() && H5Pget_layout(dcpl) == H5D_CHUNKED ? H5Pget_chunk(dcpl, 2, chunk) : -1;
        if (rank < 1 || !type.valid()) return d;
        Handle dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
        H5Pset_chunk_cache(dapl, 7, H5Tget_size(type) * chunk[0] * (rank == 2 ? chunk[1] : 1), 1.0);
        d = Handle();
        return check(Handle(H5Dopen2(file_, name.c_str(), dapl), H5Dclose), name, "open dataset");
    }
    // The first dimension of a dataset.
    hsize_t length(hid_t dset) {
        Handle space(H5Dget_space(dset), H5Sclose);
        hsize_t dims[2] = {0, 0};
        if (!space.valid() || H5Sget_simple_extent_ndims(space) < 1 || H5Sget_simple_extent_ndims(space) > 2 ||
            H5Sget_simple_extent_dims(space, dims, nullptr) < 0)
            status(-1, dset, "read the extent of");
        return dims[0];
    }
    // Cuts a 1-D or 2-D dataset back to `rows` rows.
    void cut(hid_t dset, hsize_t rows) {
        Handle space(H5Dget_space(dset), H5Sclose);
        hsize_t dims[2] = {0, 0};
        const int rank = H5Sget_simple_extent_ndims(space);
        H5Sget_simple_extent_dims(space, dims, nullptr);
        dims[0] = rows;
        if (rank < 1 || rank > 2) status(-1, dset, "shrink");
        status(H5Dset_extent(dset, dims), dset, "shrink");
    }
    // Reads n elements (1-D) from offset `at`.
    void read(hid_t dset, hid_t memtype, void* data, hsize_t at, hsize_t n) {
        if (n == 0) return;
        Handle filespace(H5Dget_space(dset), H5Sclose);
        status(H5Sselect_hyperslab(filespace, H5S_SELECT_SET, &at, nullptr, &n, nullptr), dset, "select");
        Handle memspace(H5Screate_simple(1, &n, nullptr), H5Sclose);
        status(H5Dread(dset, memtype, memspace, filespace, H5P_DEFAULT, data), dset, "read");
    }

    Handle create_group(const std::string& name) {
        Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
        H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
        return check(Handle(H5Gcreate2(file_, name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT), H5Gclose), name,
                     "create group");
    }

    // A dataset of `type` with the first dimension unlimited, stored in chunks of `chunk`.
    Handle create_extendible(const std::string& name, hid_t type, std::vector<hsize_t> dims,
                             std::vector<hsize_t> chunk) {
        std::vector<hsize_t> max = dims;
        for (std::size_t i = 0; i < max.size(); ++i)
            if (i == 0 || max[i] == 0) max[i] = H5S_UNLIMITED; // a zero width cannot hold a chunk of 1
        Handle space(H5Screate_simple(int(dims.size()), dims.data(), max.data()), H5Sclose);
        Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
        H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
        // Room for the one chunk being filled, so appends never re-read it from disk, and no
        // more: the cache is per dataset, and a trace may have hundreds of them.
        std::size_t chunk_bytes = H5Tget_size(type);
        for (hsize_t c : chunk) chunk_bytes *= c;
        Handle dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
        H5Pset_chunk_cache(dapl, 7, chunk_bytes, 1.0);
        return check(Handle(H5Dcreate2(file_, name.c_str(), type, space, H5P_DEFAULT, dcpl, dapl), H5Dclose), name,
                     "create dataset");
    }

    // Appends n elements (1-D) at offset `at`, growing the dataset to at + n.
    void append(hid_t dset, hid_t memtype, const void* data, hsize_t at, hsize_t n) {
        if (n == 0) return;
        const hsize_t size = at + n;
        status(H5Dset_extent(dset, &size), dset, "extend");
        Handle filespace(H5Dget_space(dset), H5Sclose);
        status(H5Sselect_hyperslab(filespace, H5S_SELECT_SET, &at, nullptr, &n, nullptr), dset, "select");
        Handle memspace(H5Screate_simple(1, &n, nullptr), H5Sclose);
        status(H5Dwrite(dset, memtype, memspace, filespace, H5P_DEFAULT, data), dset, "write");
    }

    // Appends `rows` rows of `width` elements to a 2-D dataset that has `row` rows.
    void append_rows(hid_t dset, hid_t memtype, const void* data, hsize_t row, hsize_t rows, hsize_t width) {
        if (rows == 0) return;
        const hsize_t size[2] = {row + rows, width};
        status(H5Dset_extent(dset, size), dset, "extend");
        Handle filespace(H5Dget_space(dset), H5Sclose);
        const hsize_t start[2] = {row, 0}, count[2] = {rows, width};
        status(H5Sselect_hyperslab(filespace, H5S_SELECT_SET, start, nullptr, count, nullptr), dset, "select");
        Handle memspace(H5Screate_simple(2, count, nullptr), H5Sclose);
        status(H5Dwrite(dset, memtype, memspace, filespace, H5P_DEFAULT, data), dset, "write");
    }

    // Appends one row of `width` elements to a 2-D dataset that has `row` rows.
    void append_row(hid_t dset, hid_t memtype, const void* data, hsize_t row, hsize_t width) {
        const hsize_t size[2] = {row + 1, width};
        status(H5Dset_extent(dset, size), dset, "extend");
        if (width == 0) return;
        Handle filespace(H5Dget_space(dset), H5Sclose);
        const hsize_t start[2] = {row, 0}, count[2] = {1, width};
        status(H5Sselect_hyperslab(filespace, H5S_SELECT_SET, start, nullptr, count, nullptr), dset, "select");
        Handle memspace(H5Screate_simple(1, &width, nullptr), H5Sclose);
        status(H5Dwrite(dset, memtype, memspace, filespace, H5P_DEFAULT, data), dset, "write");
    }

    void resize(hid_t dset, hsize_t size) { status(H5Dset_extent(dset, &size), dset, "shrink"); }

    void overwrite(hid_t dset, hid_t memtype, const void* data) {
        Handle space(H5Dget_space(dset), H5Sclose);
        if (H5Sget_simple_extent_npoints(space) == 0) return;
        status(H5Dwrite(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), dset, "write");
    }

    Handle write_u64(const std::string& name, const std::vector<std::uint64_t>& v) {
        return write_fixed(name, H5T_STD_U64LE, H5T_NATIVE_UINT64, v.data(), v.size());
    }
    Handle write_f64(const std::string& name, const std::vector<double>& v) {
        return write_fixed(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), v.size());
    }
    Handle write_f32(const std::string& name, const std::vector<float>& v) {
        return write_fixed(name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v.data(), v.size());
    }
    Handle write_u32(const std::string& name, const std::vector<std::uint32_t>& v) {
        return write_fixed(name, H5T_STD_U32LE, H5T_NATIVE_UINT32, v.data(), v.size());
    }
    void write_strings(const std::string& name, const std::vector<std::string>& v) {
        std::vector<const char*> ptrs;
        for (const auto& s : v) ptrs.push_back(s.c_str());
        Handle type = string_type();
        write_fixed(name, type, type, ptrs.data(), v.size());
    }

    void attribute_string(const std::string& object, const std::string& name, const std::string& value) {
        Handle type = string_type();
        const char* p = value.c_str();
        write_attribute(object, name, type, type, &p, 0);
    }
    void attribute_u32(const std::string& object, const std::string& name, const std::vector<std::uint32_t>& v) {
        write_attribute(object, name, H5T_STD_U32LE, H5T_NATIVE_UINT32, v.data(), v.size() == 1 ? 0 : v.size());
    }
    void attribute_u64(const std::string& object, const std::string& name, std::uint64_t v) {
        write_attribute(object, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v, 0);
    }
    void attribute_i64(const std::string& object, const std::string& name, std::int64_t v) {
        write_attribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 0);
    }
    void attribute_f64(const std::string& object, const std::string& name, double v) {
        write_attribute(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 0);
    }
    // SONATA's `sorting`: an enum over uint8 {none=0, by_id=1, by_time=2}, as libsonata's test data has it.
    void attribute_sorting(const std::string& object, std::uint8_t value) {
        Handle type(H5Tenum_create(H5T_NATIVE_UINT8), H5Tclose);
        const std::uint8_t none = 0, by_id = 1, by_time = 2;
        H5Tenum_insert(type, "none", &none);
        H5Tenum_insert(type, "by_id", &by_id);
        H5Tenum_insert(type, "by_time", &by_time);
        write_attribute(object, "sorting", type, type, &value, 0);
    }

    // Everything written so far is on disk: the journal keeps this state if a later write fails.
    void flush() {
        status(H5Fflush(file_, H5F_SCOPE_GLOBAL), file_, "flush");
        journal_.commit();
    }
    void close() {
        const bool was_open = file_.valid();
        file_ = Handle(); // every object handle is closed before this, so the file really closes
        if (!was_open || !journal_.failed()) return;
        // A failure before the first flush leaves nothing worth keeping: no file, as for bad options.
        if (journal_.committed_bytes() == 0) {
            std::error_code ec;
            std::filesystem::remove(path_, ec);
            return;
        }
        mark_incomplete();
    }

private:
    // After a failed write the file is back at its last flush, with status "running". Try to say
    // it is incomplete; on a disk that is still full this write fails too and is undone the same way.
    void mark_incomplete() {
        h5::Journal journal; // outlives the file handle below
        const Handle fapl = journal.access_plist();
        Handle f(H5Fopen(path_.c_str(), H5F_ACC_RDWR, fapl), H5Fclose);
        if (!f.valid()) return;
        Handle type = string_type();
        Handle space(H5Screate(H5S_SCALAR), H5Sclose);
        const char* status = "incomplete";
        if (H5Adelete_by_name(f, "/run", "status", H5P_DEFAULT) < 0) return;
        Handle a(H5Acreate_by_name(f, "/run", "status", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
        if (a.valid() && H5Awrite(a, type, &status) >= 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0) journal.commit();
    }

    static Handle string_type() {
        Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        return t;
    }

    Handle write_fixed(const std::string& name, hid_t filetype, hid_t memtype, const void* data, hsize_t n) {
        Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
        Handle d = check(
            Handle(H5Dcreate2(file_, name.c_str(), filetype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose),
            name, "create dataset");
        if (n) status(H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), d, "write");
        return d;
    }

    // Creates the attribute, replacing an earlier value (n == 0: scalar). Replacing rather than
    // rewriting in place: HDF5 1.10 fails to rewrite an attribute opened by name in some groups.
    void write_attribute(const std::string& object, const std::string& name, hid_t filetype, hid_t memtype,
                         const void* data, hsize_t n) {
        const std::string what = object + (object == "/" ? "" : "/") + "@" + name;
        if (H5Aexists_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0 &&
            H5Adelete_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT) < 0)
            throw InputError("trace " + path_ + ": cannot replace " + what + reason());
        Handle space(n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_SCALAR), H5Sclose);
        Handle a(H5Acreate_by_name(file_, object.c_str(), name.c_str(), filetype, space, H5P_DEFAULT, H5P_DEFAULT,
                                   H5P_DEFAULT),
                 H5Aclose);
        if (!a.valid() || H5Awrite(a, memtype, data) < 0 || journal_.failed())
            throw InputError("trace " + path_ + ": cannot write " + what + reason());
    }

    Handle check(Handle h, const std::string& name, const char* action) {
        // libhdf5 does not pass on every failed write: the journal's record counts too.
        if (!h.valid() || journal_.failed())
            throw InputError("trace " + path_ + ": cannot " + action + " " + name + reason());
        return h;
    }
    void status(herr_t r, hid_t object, const char* action) {
        if (r >= 0 && !journal_.failed()) return;
        char name[512] = "?";
        H5Iget_name(object, name, sizeof name);
        throw InputError("trace " + path_ + ": cannot " + action + " " + name + reason());
    }
    // The system's reason when a write failed (e.g. "No space left on device").
    std::string reason() const {
        if (!journal_.failed()) return "";
        return " (" + std::string(std::strerror(journal_.error())) +
               (journal_.committed_bytes() ? "; the file keeps the samples completed before)" : ")");
    }

    std::string path_;
    h5::Journal journal_; // outlives file_: the driver uses it until the file is closed
    Handle file_;
};

// One recorded population: its two datasets and the spikes not yet appended to them.
struct PopulationTrace {
    PopulationId population = 0;
    std::string name;
    Handle timestamps, node_ids;
    std::vector<double> time_buffer;
    std::vector<std::uint64_t> id_buffer;
    hsize_t written = 0;   // elements in the datasets
    hsize_t committed = 0; // elements at the end of the last completed sample
};

// One membrane report (SONATA frame-oriented layout): its frames not yet appended, and its
// time span, rewritten after each recorded sample.
struct ReportTrace {
    std::string group; // /report/<population>
    Handle data, time;
    hsize_t width = 0, chunk_rows = 1;
    std::vector<float> buffer; // whole frames
    hsize_t written = 0;       // frames in the dataset
    hsize_t committed = 0;     // frames at the end of the last completed sample
};

} // namespace

struct SpikeTraceWriter::Impl {
    Impl(const std::string& p, const Network& n, TraceOptions o) : path(p), net(n), options(std::move(o)), file(p, options.replace_existing) {}
    Impl(const std::string& p, const Network& n, TraceOptions o, TraceFile::Existing e)
        : path(p), net(n), options(std::move(o)), file(p, e) {}

    std::string path;
    const Network& net;
    TraceOptions options;
    TraceFile file;
    std::vector<PopulationTrace> recorded;
    std::vector<int> slot; // population id -> index in `recorded`, or -1
    std::vector<ReportTrace> reports; // one per TraceOptions::potentials entry
    Tick report_first_tick = 0;       // the first recorded sample's first tick
    std::optional<std::uint64_t> last_reported; // the last recorded sample with a membrane report
    // /samples columns
    Handle s_index, s_start_ms, s_start_tick, s_label, s_prediction, s_recorded, s_spikes;
    // /energy per-sample tables (rows appended) and totals (rewritten)
    std::vector<Handle> pop_rows, proj_rows, op_rows, pop_totals, proj_totals, op_totals;
    Handle snn_rows, ann_rows;
    EnergyLedger total;
    double total_snn_pj = 0, total_ann_pj = 0;

    hsize_t samples = 0;
    std::uint64_t spikes_committed = 0;
    bool open = false;      // a sample was begun and not ended
    bool recording = false; // the open sample's spikes are kept
    bool finished = false;
    bool any_sample = false;
    std::uint64_t current = 0; // index of the open (or last) sample
    std::int64_t label = -1;
    Tick start_tick = 0;

    void create_layout(const RunMetadata& metadata);
    void open_layout(const RunMetadata& metadata, const TracePosition& position);
    std::vector<PopulationId> recorded_populations();
    void create_spikes();
    void create_samples();
    void create_energy();
    void create_reports();
    void flush_report(ReportTrace& r);
    void flush_population(PopulationTrace& pt);
    void drop_open_sample();
    void write_totals();
    void close(const char* status);
};

void SpikeTraceWriter::Impl::create_layout(const RunMetadata& m) {
    // Root attributes as bmtk writes them; readers do not need them.
    const std::uint32_t magic = 0x0A7A, version[2] = {0, 1};
    file.attribute_u32("/", "magic", {magic});
    file.attribute_u32("/", "version", {version[0], version[1]});

    file.create_group("/run");
    file.attribute_string("/run", "model", m.model);
    file.attribute_u64("/run", "seed", m.seed);
    file.attribute_string("/run", "release", m.release.empty() ? "none" : m.release);
    file.attribute_f64("/run", "mask_ratio", m.mask_ratio);
    file.attribute_u32("/run", "compensate", {m.compensate ? 1u : 0u});
    file.attribute_f64("/run", "release_spread", m.release_spread);
    file.attribute_f64("/run", "dt_ms", options.dt_ms);
    file.attribute_i64("/run", "ticks_per_sample", options.ticks_per_sample);
    file.attribute_string("/run", "version", m.version);
    file.attribute_string("/run", "command_line", m.command_line);
    for (const auto& [key, value] : m.extra) file.attribute_string("/run", key, value);
    file.attribute_string("/run", "status", "running");
    file.attribute_u64("/run", "samples_completed", 0);

    create_spikes();
    create_samples();
    create_energy();
    create_reports();
    file.flush();
}

// The populations whose spikes are recorded, in network order; sizes their buffers.
std::vector<PopulationId> SpikeTraceWriter::Impl::recorded_populations() {
    const auto n = net.populations().size();
    slot.assign(n, -1);
    std::vector<PopulationId> ids;
    if (options.populations.empty()) {
        for (PopulationId p = 0; p < n; ++p)
            if (!is_readout(net.population(p).model)) ids.push_back(p);
    } else {
        for (const auto& name : options.populations) {
            const auto p = net.find_population(name); // validated() checked it exists
            if (slot[*p] < 0) ids.push_back(*p), slot[*p] = 0;
        }
    }
    if (options.buffer_spikes == 0) {
        // Per recorded population: the buffer (16 bytes per spike) and two one-chunk caches (8 bytes each).
        constexpr std::size_t largest = 1 << 16, smallest = 1 << 10;
        const std::size_t share = options.memory_budget_bytes / std::max<std::size_t>(ids.size(), 1);
        const std::size_t caches = 16 * std::size_t(options.chunk_spikes);
        const std::size_t buffer = share > caches ? (share - caches) / 16 : 0;
        options.buffer_spikes = std::uint32_t(std::clamp(buffer, smallest, largest));
    }
    return ids;
}

void SpikeTraceWriter::Impl::create_spikes() {
    const auto ids = recorded_populations();
    file.create_group("/spikes");
    const hsize_t chunk = options.chunk_spikes;
    for (PopulationId p : ids) {
        const std::string& name = net.population(p).name;
        if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
            throw InputError("trace " + path + ": population name '" + name + "' cannot be an HDF5 group name");
        const std::string group = "/spikes/" + name;
        file.create_group(group);
        file.attribute_sorting(group, 2); // by_time: a continuous recording is written in time order
        PopulationTrace pt;
        pt.population = p;
        pt.name = name;
        pt.timestamps = file.create_extendible(group + "/timestamps", H5T_IEEE_F64LE, {0}, {chunk});
        file.attribute_string(group + "/timestamps", "units", "ms");
        pt.node_ids = file.create_extendible(group + "/node_ids", H5T_STD_U64LE, {0}, {chunk});
        slot[p] = int(recorded.size());
        recorded.push_back(std::move(pt));
    }
}

void SpikeTraceWriter::Impl::create_samples() {
    file.create_group("/samples");
    file.attribute_i64("/samples", "ticks_per_sample", options.ticks_per_sample);
    file.attribute_f64("/samples", "dt_ms", options.dt_ms);
    auto column = [&](const char* name, hid_t type) {
        return file.create_extendible(std::string("/samples/") + name, type, {0}, {sample_chunk_rows});
    };
    s_index = column("index", H5T_STD_U64LE);
    s_start_ms = column("start_ms", H5T_IEEE_F64LE);
    s_start_tick = column("start_tick", H5T_STD_I64LE);
    s_label = column("label", H5T_STD_I64LE);
    s_prediction = column("prediction", H5T_STD_I64LE);
    s_recorded = column("recorded", H5T_STD_U8LE);
    s_spikes = column("spikes", H5T_STD_U64LE);
}

void SpikeTraceWriter::Impl::create_energy() {
    const auto n_pop = net.populations().size(), n_proj = net.projections().size();
    total = EnergyLedger::for_network(net, std::uint64_t(options.ticks_per_sample));
    total.samples = 0;

    file.create_group("/energy");
    file.attribute_f64("/energy", "e_ac_pj", options.costs.e_ac_pj);
    file.attribute_f64("/energy", "e_mac_pj", options.costs.e_mac_pj);
    file.attribute_i64("/energy", "ticks_per_sample", options.ticks_per_sample);

    // Static tables: what each row/column of the counters refers to.
    file.create_group("/energy/populations");
    std::vector<std::string> names, models, sources, targets, releases, roles;
    std::vector<std::uint64_t> sizes, synapses, stored;
    std::vector<double> ratios;
    for (const auto& p : net.populations()) {
        names.push_back(p.name);
        models.push_back(model_name(p.model));
        sizes.push_back(p.size());
    }
    file.write_strings("/energy/populations/name", names);
    file.write_strings("/energy/populations/model", models);
    file.write_u64("/energy/populations/size", sizes);

    file.create_group("/energy/projections");
    names.clear();
    for (ProjectionId j = 0; j < n_proj; ++j) {
        const auto& pr = net.projection(j);
        names.push_back(pr.name);
        sources.push_back(net.population(pr.source).name);
        targets.push_back(net.population(pr.target).name);
        releases.push_back(mode_name(pr.release.mode));
        roles.push_back(pr.role);
        ratios.push_back(pr.release.mode == ReleaseMode::none ? 0.0 : pr.release.mask_ratio);
        synapses.push_back(net.synapses(j));
        stored.push_back(net.stored_weights(j));
    }
    file.write_strings("/energy/projections/name", names);
    file.write_strings("/energy/projections/source", sources);
    file.write_strings("/energy/projections/target", targets);
    file.write_strings("/energy/projections/release", releases);
    file.write_strings("/energy/projections/role", roles);
    file.write_f64("/energy/projections/mask_ratio", ratios);
    file.write_u64("/energy/projections/synapses", synapses);
    file.write_u64("/energy/projections/weights", stored); // the weight memory of the memory-inclusive model

    // Operator nodes (attention): their own counters, priced E_AC x (coincidences + deliveries) + E_MAC x macs.
    file.create_group("/energy/operators");
    std::vector<std::string> op_names, op_kinds, op_outputs, op_q, op_k, op_v, op_scores;
    std::vector<std::uint64_t> op_ann_macs;
    for (std::size_t i = 0; i < net.operators().size(); ++i) {
        const auto& a = std::get<SoftmaxAttention>(net.operators()[i]);
        op_names.push_back(a.name);
        op_outputs.push_back(net.population(a.output).name);
        op_q.push_back(net.population(a.q).name), op_k.push_back(net.population(a.k).name);
        op_v.push_back(net.population(a.v).name), op_scores.push_back(net.population(a.scores).name);
        op_ann_macs.push_back(net.attention(i).ann_macs());
        op_kinds.push_back(operator_kind(net.operators()[i]));
    }
    file.write_strings("/energy/operators/name", op_names);
    file.write_strings("/energy/operators/kind", op_kinds);
    file.write_strings("/energy/operators/output", op_outputs);
    // What the papers'-way estimate needs: the inputs' populations and the ANN's MACs per tick.
    file.write_strings("/energy/operators/q", op_q);
    file.write_strings("/energy/operators/k", op_k);
    file.write_strings("/energy/operators/v", op_v);
    file.write_strings("/energy/operators/scores", op_scores);
    file.write_u64("/energy/operators/ann_macs", op_ann_macs);

    // The ANN the model was converted from, as its file records it (docs/model-format.md "/ann").
    if (const auto& ann = net.ann()) {
        file.create_group("/energy/ann");
        std::vector<std::string> layers, kinds;
        std::vector<std::uint64_t> macs, weights, ins, outs;
        for (const auto& l : ann->layers) {
            layers.push_back(l.name), kinds.push_back(l.kind), macs.push_back(l.macs), weights.push_back(l.weights);
            ins.push_back(l.inputs), outs.push_back(l.outputs);
        }
        file.write_strings("/energy/ann/layer", layers);
        file.write_strings("/energy/ann/kind", kinds);
        file.write_u64("/energy/ann/macs", macs);
        file.write_u64("/energy/ann/weights", weights);
        file.write_u64("/energy/ann/inputs", ins);
        file.write_u64("/energy/ann/outputs", outs);
        file.attribute_u64("/energy/ann", "levels", ann->levels);
    }

    // Counters: one row per completed sample (rows match /samples), and running totals.
    file.create_group("/energy/per_sample");
    file.create_group("/energy/per_sample/populations");
    file.create_group("/energy/per_sample/projections");
    file.create_group("/energy/per_sample/operators");
    file.create_group("/energy/total");
    file.create_group("/energy/total/populations");
    file.create_group("/energy/total/projections");
    file.create_group("/energy/total/operators");
    auto rows = [&](const std::string& name, hsize_t width) {
        // Small chunks (<= 4 KB): every per-sample flush rewrites the one being filled.
        const hsize_t chunk_rows = std::clamp<hsize_t>(512 / std::max<hsize_t>(width, 1), 1, sample_chunk_rows);
        return file.create_extendible(name, H5T_STD_U64LE, {0, width}, {chunk_rows, std::max<hsize_t>(width, 1)});
    };
    for (const auto& c : population_counters) {
        pop_rows.push_back(rows(std::string("/energy/per_sample/populations/") + c.name, n_pop));
        pop_totals.push_back(
            file.write_u64(std::string("/energy/total/populations/") + c.name, std::vector<std::uint64_t>(n_pop, 0)));
    }
    for (const auto& c : projection_counters) {
        proj_rows.push_back(rows(std::string("/energy/per_sample/projections/") + c.name, n_proj));
        proj_totals.push_back(
            file.write_u64(std::string("/energy/total/projections/") + c.name, std::vector<std::uint64_t>(n_proj, 0)));
    }
    const auto n_op = net.operators().size();
    for (const auto& c : operator_counters) {
        op_rows.push_back(rows(std::string("/energy/per_sample/operators/") + c.name, n_op));
        op_totals.push_back(
            file.write_u64(std::string("/energy/total/operators/") + c.name, std::vector<std::uint64_t>(n_op, 0)));
    }
    snn_rows = file.create_extendible("/energy/per_sample/snn_pj", H5T_IEEE_F64LE, {0}, {sample_chunk_rows});
    ann_rows = file.create_extendible("/energy/per_sample/ann_pj", H5T_IEEE_F64LE, {0}, {sample_chunk_rows});
    file.attribute_u64("/energy/total", "samples", 0);
    file.attribute_f64("/energy/total", "snn_pj", 0.0);
    file.attribute_f64("/energy/total", "ann_pj", 0.0);
}

// /report/<population>/{data, mapping/...}: one element per probed neuron (a point neuron has one
// compartment), frames of every tick of the recorded samples; docs/traces.md.
void SpikeTraceWriter::Impl::create_reports() {
    if (options.potentials.empty()) return;
    file.create_group("/report");
    for (const auto& probe : options.potentials) {
        ReportTrace r;
        r.group = "/report/" + net.population(probe.population).name;
        r.width = probe.neurons.size();
        // About 64 KB per chunk, whole frames (a frame wider than that is a chunk alone).
        r.chunk_rows = std::max<hsize_t>(1, (hsize_t(1) << 14) / r.width);
        file.create_group(r.group);
        r.data = file.create_extendible(r.group + "/data", H5T_IEEE_F32LE, {0, r.width}, {r.chunk_rows, r.width});
        file.attribute_string(r.group + "/data", "units", "dimensionless");
        file.create_group(r.group + "/mapping");
        const std::vector<std::uint64_t> ids(probe.neurons.begin(), probe.neurons.end());
        file.write_u64(r.group + "/mapping/node_ids", ids);
        std::vector<std::uint64_t> pointers(r.width + 1);
        for (std::size_t i = 0; i < pointers.size(); ++i) pointers[i] = i;
        file.write_u64(r.group + "/mapping/index_pointers", pointers);
        // A point neuron is a single compartment: the guide's arrays of 1s.
        file.write_u32(r.group + "/mapping/element_ids", std::vector<std::uint32_t>(r.width, 1));
        file.write_f32(r.group + "/mapping/element_pos", std::vector<float>(r.width, 1.0f));
        r.time = file.write_f64(r.group + "/mapping/time", {0.0, 0.0, options.dt_ms});
        file.attribute_string(r.group + "/mapping/time", "units", "ms");
        reports.push_back(std::move(r));
    }
}

void SpikeTraceWriter::Impl::flush_report(ReportTrace& r) {
    const hsize_t rows = r.buffer.size() / r.width;
    file.append_rows(r.data, H5T_NATIVE_FLOAT, r.buffer.data(), r.written, rows, r.width);
    r.written += rows;
    r.buffer.clear();
}

void SpikeTraceWriter::Impl::flush_population(PopulationTrace& pt) {
    if (pt.time_buffer.empty()) return;
    file.append(pt.timestamps, H5T_NATIVE_DOUBLE, pt.time_buffer.data(), pt.written, pt.time_buffer.size());
    file.append(pt.node_ids, H5T_NATIVE_UINT64, pt.id_buffer.data(), pt.written, pt.id_buffer.size());
    pt.written += pt.time_buffer.size();
    pt.time_buffer.clear();
    pt.id_buffer.clear();
}

void SpikeTraceWriter::Impl::drop_open_sample() {
    for (auto& pt : recorded) {
        pt.time_buffer.clear();
        pt.id_buffer.clear();
        if (pt.written != pt.committed) {
            file.resize(pt.timestamps, pt.committed);
            file.resize(pt.node_ids, pt.committed);
            pt.written = pt.committed;
        }
    }
    for (auto& r : reports) {
        r.buffer.clear();
        if (r.written != r.committed) file.cut(r.data, r.committed), r.written = r.committed;
    }
    open = false;
}

void SpikeTraceWriter::Impl::write_totals() {
    const auto n_pop = net.populations().size(), n_proj = net.projections().size();
    std::vector<std::uint64_t> v;
    for (std::size_t c = 0; c < std::size(population_counters); ++c) {
        v.resize(n_pop);
        for (std::size_t p = 0; p < n_pop; ++p) v[p] = total.populations[p].*population_counters[c].field;
        file.overwrite(pop_totals[c], H5T_NATIVE_UINT64, v.data());
    }
    for (std::size_t c = 0; c < std::size(projection_counters); ++c) {
        v.resize(n_proj);
        for (std::size_t j = 0; j < n_proj; ++j) v[j] = total.projections[j].*projection_counters[c].field;
        file.overwrite(proj_totals[c], H5T_NATIVE_UINT64, v.data());
    }
    const auto n_op = net.operators().size();
    for (std::size_t c = 0; c < std::size(operator_counters) && n_op; ++c) {
        v.resize(n_op);
        for (std::size_t i = 0; i < n_op; ++i) v[i] = total.operators[i].*operator_counters[c].field;
        file.overwrite(op_totals[c], H5T_NATIVE_UINT64, v.data());
    }
    file.attribute_u64("/energy/total", "samples", total.samples);
    file.attribute_f64("/energy/total", "snn_pj", total_snn_pj);
    file.attribute_f64("/energy/total", "ann_pj", total_ann_pj);
}

void SpikeTraceWriter::Impl::close(const char* status) {
    if (finished) return;
    finished = true;
    if (open) drop_open_sample();
    file.attribute_string("/run", "status", status);
    file.flush();
    recorded.clear();
    reports.clear();
    for (Handle* h : {&s_index, &s_start_ms, &s_start_tick, &s_label, &s_prediction, &s_recorded, &s_spikes})
        *h = Handle();
    pop_rows.clear(), proj_rows.clear(), op_rows.clear(), pop_totals.clear(), proj_totals.clear(), op_totals.clear();
    snn_rows = Handle(), ann_rows = Handle();
    file.close();
}

void SpikeTraceWriter::Impl::open_layout(const RunMetadata& m, const TracePosition& pos) {
    const std::string where = "trace " + path;
    if (!options.potentials.empty())
        throw InputError(where + ": a trace with membrane reports cannot be continued from a checkpoint");
    {
        Handle run = h5::open_group(file.id(), "run", where);
        auto differs = [&](const std::string& what) {
            throw InputError(where + ": is not the trace of this run (" + what + " differs)");
        };
        if (h5::read_string_attribute(run, "command_line", where + ": /run") != m.command_line)
            differs("/run command_line");
        if (h5::read_int_attribute(run, "ticks_per_sample", where + ": /run") != options.ticks_per_sample)
            differs("/run ticks_per_sample");
        if (h5::read_double_attribute(run, "dt_ms", where + ": /run") != options.dt_ms) differs("/run dt_ms");
    }
    auto too_short = [&](const std::string& object, hsize_t has, std::uint64_t needs) {
        if (has < needs)
            throw InputError(where + ": " + object + " holds " + std::to_string(has) +
                             " entries, the checkpoint needs " + std::to_string(needs) +
                             " (the trace was changed or cut after the checkpoint)");
    };
    const auto ids = recorded_populations();
    const bool carried = pos.open && pos.carried, in_file = pos.open && !pos.carried;
    if (pos.spikes.size() != ids.size() || (in_file && pos.open_in_file.size() != ids.size()) ||
        (carried && (pos.open_timestamps.size() != ids.size() || pos.open_node_ids.size() != ids.size())))
        throw InputError(where + ": the checkpoint records " + std::to_string(pos.spikes.size()) +
                         " populations, this run " + std::to_string(ids.size()));
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const std::string group = "/spikes/" + net.population(ids[i]).name;
        PopulationTrace pt;
        pt.population = ids[i];
        pt.name = net.population(ids[i]).name;
        pt.timestamps = file.open_dataset(group + "/timestamps");
        pt.node_ids = file.open_dataset(group + "/node_ids");
        const std::uint64_t keep = in_file ? pos.open_in_file[i] : pos.spikes[i];
        if (keep < pos.spikes[i]) throw InputError(where + ": the checkpoint's open sample is damaged");
        too_short(group + "/timestamps", file.length(pt.timestamps), keep);
        too_short(group + "/node_ids", file.length(pt.node_ids), keep);
        file.cut(pt.timestamps, keep);
        file.cut(pt.node_ids, keep);
        pt.committed = pos.spikes[i];
        pt.written = keep;
        spikes_committed += pos.spikes[i];
        slot[ids[i]] = int(recorded.size());
        recorded.push_back(std::move(pt));
    }
    auto rows = [&](const std::string& name) {
        Handle d = file.open_dataset(name);
        too_short(name, file.length(d), pos.samples);
        file.cut(d, pos.samples);
        return d;
    };
    s_index = rows("/samples/index");
    s_start_ms = rows("/samples/start_ms");
    s_start_tick = rows("/samples/start_tick");
    s_label = rows("/samples/label");
    s_prediction = rows("/samples/prediction");
    s_recorded = rows("/samples/recorded");
    s_spikes = rows("/samples/spikes");
    for (const auto& c : population_counters) {
        pop_rows.push_back(rows(std::string("/energy/per_sample/populations/") + c.name));
        pop_totals.push_back(file.open_dataset(std::string("/energy/total/populations/") + c.name));
    }
    for (const auto& c : projection_counters) {
        proj_rows.push_back(rows(std::string("/energy/per_sample/projections/") + c.name));
        proj_totals.push_back(file.open_dataset(std::string("/energy/total/projections/") + c.name));
    }
    for (const auto& c : operator_counters) {
        op_rows.push_back(rows(std::string("/energy/per_sample/operators/") + c.name));
        op_totals.push_back(file.open_dataset(std::string("/energy/total/operators/") + c.name));
    }
    snn_rows = rows("/energy/per_sample/snn_pj");
    ann_rows = rows("/energy/per_sample/ann_pj");
    const auto& t = pos.total;
    if (t.populations.size() != net.populations().size() || t.projections.size() != net.projections().size() ||
        t.operators.size() != net.operators().size())
        throw InputError(where + ": the checkpoint's ledger does not fit the network");
    total = t;
    total_snn_pj = pos.snn_pj, total_ann_pj = pos.ann_pj;
    write_totals();
    samples = pos.samples;
    file.attribute_u64("/run", "samples_completed", samples);
    file.attribute_string("/run", "status", "running");
    any_sample = pos.any_sample;
    current = pos.last_sample;
    if (pos.open) {
        open = true;
        label = pos.open_label;
        start_tick = Tick(current) * options.ticks_per_sample;
        recording =
            options.samples.empty() || std::binary_search(options.samples.begin(), options.samples.end(), current);
        for (std::size_t i = 0; i < recorded.size() && carried; ++i) {
            auto& pt = recorded[i];
            const auto& ts = pos.open_timestamps[i];
            const auto& ids_open = pos.open_node_ids[i];
            if (ts.size() != ids_open.size()) throw InputError(where + ": the checkpoint's open sample is damaged");
            file.append(pt.timestamps, H5T_NATIVE_DOUBLE, ts.data(), pt.written, ts.size());
            file.append(pt.node_ids, H5T_NATIVE_UINT64, ids_open.data(), pt.written, ids_open.size());
            pt.written += ts.size();
        }
    }
    file.flush();
}

namespace {
// Options that cannot work are refused before the file is created (and an old one truncated).
TraceOptions validated(const std::string& path, const Network& net, TraceOptions o) {
    if (o.ticks_per_sample <= 0) throw InputError("trace " + path + ": ticks per sample must be > 0");
    if (!(o.dt_ms > 0) || !std::isfinite(o.dt_ms))
        throw InputError("trace " + path + ": dt must be a positive number of ms");
    for (const auto& name : o.populations)
        if (!net.find_population(name))
            throw InputError("trace " + path + ": population '" + name + "' to record is not in the network");
    try {
        PotentialRecorder::validate(net, o.potentials);
    } catch (const InputError& e) {
        throw InputError("trace " + path + ": " + e.what());
    }
    if (o.chunk_spikes == 0) o.chunk_spikes = TraceOptions{}.chunk_spikes;
    std::sort(o.samples.begin(), o.samples.end());
    return o;
}
} // namespace

SpikeTraceWriter::SpikeTraceWriter(const std::string& path, const Network& net, TraceOptions options,
                                   const RunMetadata& metadata)
    : impl_(std::make_unique<Impl>(path, net, validated(path, net, std::move(options)))) {
    impl_->create_layout(metadata);
}

SpikeTraceWriter::SpikeTraceWriter(const std::string& path, const Network& net, TraceOptions options,
                                   const RunMetadata& metadata, const TracePosition& position)
    : impl_(std::make_unique<Impl>(path, net, validated(path, net, std::move(options)), TraceFile::Existing{})) {
    impl_->open_layout(metadata, position);
}

SpikeTraceWriter::~SpikeTraceWriter() {
    try {
        if (impl_) impl_->close("incomplete");
    } catch (...) {
        // A destructor must not throw; the file keeps what the last flush wrote.
    }
}

void SpikeTraceWriter::begin_sample(std::uint64_t sample, std::int64_t label) {
    auto& s = *impl_;
    if (s.finished) throw std::logic_error("SpikeTraceWriter::begin_sample after finish");
    if (s.open)
        throw std::logic_error("SpikeTraceWriter::begin_sample: sample " + std::to_string(s.current) +
                               " is still open");
    // Timestamps must not go backwards, or the population groups would not be sorted by time.
    if (s.any_sample && sample <= s.current)
        throw std::logic_error("SpikeTraceWriter::begin_sample: sample " + std::to_string(sample) + " after sample " +
                               std::to_string(s.current) + " (indices must increase)");
    // Sample k holds ticks [k*T, (k+1)*T): they must be exact in a double timestamp (2^53) and,
    // times dt, finite. Checked before anything changes, so the trace stays as it was.
    constexpr std::uint64_t exact_ticks = std::uint64_t(1) << 53;
    const auto T = std::uint64_t(s.options.ticks_per_sample);
    if (sample >= exact_ticks / T)
        throw InputError("trace " + s.path + ": sample " + std::to_string(sample) + " of " + std::to_string(T) +
                         " ticks ends beyond tick 2^53 = " + std::to_string(exact_ticks) +
                         ", the last one a timestamp holds exactly");
    if (const double end_ms = double((sample + 1) * T) * s.options.dt_ms; !std::isfinite(end_ms)) {
        char dt[32];
        std::snprintf(dt, sizeof dt, "%g", s.options.dt_ms);
        throw InputError("trace " + s.path + ": sample " + std::to_string(sample) + " ends at tick " +
                         std::to_string((sample + 1) * T) + " x dt " + dt + " ms, which is not finite");
    }
    const bool recording =
        s.options.samples.empty() || std::binary_search(s.options.samples.begin(), s.options.samples.end(), sample);
    // A membrane report's frames are one time axis: (start, stop, step) cannot describe a gap.
    if (recording && !s.reports.empty() && s.last_reported && sample != *s.last_reported + 1)
        throw InputError("trace " + s.path + ": membrane reports need consecutive samples; sample " +
                         std::to_string(sample) + " follows recorded sample " + std::to_string(*s.last_reported));
    s.open = true;
    s.any_sample = true;
    s.current = sample;
    s.label = label;
    s.start_tick = Tick(sample) * s.options.ticks_per_sample;
    s.recording = recording;
}

void SpikeTraceWriter::on_potentials(std::size_t probe, Tick tick, std::span<const double> values) {
    auto& s = *impl_;
    if (!s.open) throw std::logic_error("SpikeTraceWriter::on_potentials outside begin_sample/end_sample");
    if (!s.recording) return;
    if (probe >= s.reports.size() || values.size() != s.reports[probe].width)
        throw std::logic_error("SpikeTraceWriter::on_potentials: frame does not fit TraceOptions::potentials");
    auto& r = s.reports[probe];
    // Frames arrive tick by tick: tick t of the sample is frame (sample - first) * T + t.
    const hsize_t expected = r.written + r.buffer.size() / r.width - r.committed;
    if (hsize_t(tick) != expected)
        throw std::logic_error("SpikeTraceWriter::on_potentials: tick " + std::to_string(tick) + " out of order");
    for (double v : values) r.buffer.push_back(float(v));
    if (r.buffer.size() >= r.chunk_rows * r.width) s.flush_report(r);
}

void SpikeTraceWriter::on_spikes(PopulationId population, Tick tick, std::span<const std::uint32_t> neurons) {
    auto& s = *impl_;
    if (!s.open) throw std::logic_error("SpikeTraceWriter::on_spikes outside begin_sample/end_sample");
    if (!s.recording || population >= s.slot.size() || s.slot[population] < 0) return;
    if (tick < 0 || tick >= s.options.ticks_per_sample)
        throw std::logic_error("SpikeTraceWriter::on_spikes: tick " + std::to_string(tick) + " outside the sample");
    auto& pt = s.recorded[std::size_t(s.slot[population])];
    const double t_ms = double(s.start_tick + tick) * s.options.dt_ms;
    const std::size_t limit = s.options.buffer_spikes;
    if (pt.time_buffer.capacity() == 0)
        pt.time_buffer.reserve(limit), pt.id_buffer.reserve(limit); // never grows past it
    for (std::uint32_t j : neurons) {
        pt.time_buffer.push_back(t_ms);
        pt.id_buffer.push_back(j);
        if (pt.time_buffer.size() >= limit) s.flush_population(pt);
    }
}

void SpikeTraceWriter::replay(const SampleResult& r) {
    std::vector<std::uint32_t> group;
    for (std::size_t i = 0; i < r.spikes.size();) {
        const auto& first = r.spikes[i];
        group.clear();
        for (; i < r.spikes.size() && r.spikes[i].tick == first.tick && r.spikes[i].population == first.population; ++i)
            group.push_back(r.spikes[i].neuron);
        on_spikes(first.population, first.tick, group);
    }
    const auto& probes = impl_->options.potentials;
    if (!r.potentials.empty() && r.potentials.size() != probes.size()) // empty: not kept (sample not recorded)
        throw std::logic_error("SpikeTraceWriter::replay: the result's potentials do not fit TraceOptions::potentials");
    for (std::size_t p = 0; p < r.potentials.size(); ++p) {
        const std::size_t width = probes[p].neurons.size();
        for (std::size_t f = 0; f * width < r.potentials[p].size(); ++f)
            on_potentials(p, Tick(f), std::span<const double>(r.potentials[p]).subspan(f * width, width));
    }
}

void SpikeTraceWriter::end_sample(std::int64_t prediction, const EnergyLedger& ledger) {
    auto& s = *impl_;
    if (!s.open) throw std::logic_error("SpikeTraceWriter::end_sample without begin_sample");
    const auto n_pop = s.net.populations().size(), n_proj = s.net.projections().size(), n_op = s.net.operators().size();
    if (ledger.populations.size() != n_pop || ledger.projections.size() != n_proj || ledger.operators.size() != n_op)
        throw std::logic_error("SpikeTraceWriter::end_sample: ledger does not fit the network");

    std::uint64_t spikes = 0;
    for (auto& pt : s.recorded) {
        s.flush_population(pt);
        spikes += pt.written - pt.committed;
        pt.committed = pt.written;
    }
    s.spikes_committed += spikes;
    if (s.recording && !s.reports.empty()) {
        if (!s.last_reported) s.report_first_tick = s.start_tick;
        s.last_reported = s.current;
        for (auto& r : s.reports) {
            s.flush_report(r);
            if (r.written - r.committed != hsize_t(s.options.ticks_per_sample))
                throw std::logic_error("SpikeTraceWriter::end_sample: a membrane report lacks frames of the sample");
            r.committed = r.written;
            const double time[3] = {double(s.report_first_tick) * s.options.dt_ms,
                                    double(s.report_first_tick + Tick(r.written)) * s.options.dt_ms, s.options.dt_ms};
            s.file.overwrite(r.time, H5T_NATIVE_DOUBLE, time);
        }
    }

    const hsize_t row = s.samples;
    const std::uint64_t index = s.current;
    const double start_ms = double(s.start_tick) * s.options.dt_ms;
    const std::int64_t start_tick = s.start_tick;
    const std::uint8_t recorded = s.recording ? 1 : 0;
    s.file.append(s.s_index, H5T_NATIVE_UINT64, &index, row, 1);
    s.file.append(s.s_start_ms, H5T_NATIVE_DOUBLE, &start_ms, row, 1);
    s.file.append(s.s_start_tick, H5T_NATIVE_INT64, &start_tick, row, 1);
    s.file.append(s.s_label, H5T_NATIVE_INT64, &s.label, row, 1);
    s.file.append(s.s_prediction, H5T_NATIVE_INT64, &prediction, row, 1);
    s.file.append(s.s_recorded, H5T_NATIVE_UINT8, &recorded, row, 1);
    s.file.append(s.s_spikes, H5T_NATIVE_UINT64, &spikes, row, 1);

    std::vector<std::uint64_t> v;
    for (std::size_t c = 0; c < std::size(population_counters); ++c) {
        v.resize(n_pop);
        for (std::size_t p = 0; p < n_pop; ++p) v[p] = ledger.populations[p].*population_counters[c].field;
        s.file.append_row(s.pop_rows[c], H5T_NATIVE_UINT64, v.data(), row, n_pop);
    }
    for (std::size_t c = 0; c < std::size(projection_counters); ++c) {
        v.resize(n_proj);
        for (std::size_t j = 0; j < n_proj; ++j) v[j] = ledger.projections[j].*projection_counters[c].field;
        s.file.append_row(s.proj_rows[c], H5T_NATIVE_UINT64, v.data(), row, n_proj);
    }
    for (std::size_t c = 0; c < std::size(operator_counters); ++c) {
        v.resize(n_op);
        for (std::size_t i = 0; i < n_op; ++i) v[i] = ledger.operators[i].*operator_counters[c].field;
        s.file.append_row(s.op_rows[c], H5T_NATIVE_UINT64, v.data(), row, n_op);
    }
    EnergyLedger one = ledger;
    one.samples = 1; // summarize() reports per sample
    const auto summary = summarize(one, s.net, s.options.costs);
    s.file.append(s.snn_rows, H5T_NATIVE_DOUBLE, &summary.snn_pj, row, 1);
    s.file.append(s.ann_rows, H5T_NATIVE_DOUBLE, &summary.ann_pj, row, 1);

    const auto samples_before = s.total.samples;
    s.total += ledger;
    s.total.samples = samples_before + 1;
    s.total_snn_pj += summary.snn_pj;
    s.total_ann_pj += summary.ann_pj;
    s.write_totals();

    s.samples = row + 1;
    s.file.attribute_u64("/run", "samples_completed", s.samples);
    s.open = false;
    s.file.flush(); // everything up to this sample survives a stop before the next one
}

void SpikeTraceWriter::finish(TraceStatus status) { impl_->close(status_name(status)); }

TracePosition SpikeTraceWriter::position(bool carry) {
    auto& s = *impl_;
    if (s.finished) throw std::logic_error("SpikeTraceWriter::position after finish");
    TracePosition pos;
    pos.samples = s.samples;
    pos.any_sample = s.any_sample;
    pos.last_sample = s.current;
    pos.total = s.total;
    pos.snn_pj = s.total_snn_pj, pos.ann_pj = s.total_ann_pj;
    pos.open = s.open;
    pos.open_label = s.open ? s.label : -1;
    pos.carried = s.open && carry;
    for (auto& pt : s.recorded) {
        pos.spikes.push_back(pt.committed);
        if (!s.open) continue;
        s.flush_population(pt);
        pos.open_in_file.push_back(pt.written);
        if (!carry) continue;
        auto& ts = pos.open_timestamps.emplace_back(pt.written - pt.committed);
        auto& ids = pos.open_node_ids.emplace_back(pt.written - pt.committed);
        s.file.read(pt.timestamps, H5T_NATIVE_DOUBLE, ts.data(), pt.committed, ts.size());
        s.file.read(pt.node_ids, H5T_NATIVE_UINT64, ids.data(), pt.committed, ids.size());
    }
    s.file.flush(); // the file on disk is consistent at every checkpoint (a later SIGKILL may leave it less so)
    return pos;
}

const std::string& SpikeTraceWriter::path() const { return impl_->path; }
std::uint64_t SpikeTraceWriter::samples_written() const { return impl_->samples; }
std::uint64_t SpikeTraceWriter::spikes_written() const { return impl_->spikes_committed; }

// ---------------------------------------------------------------------------------------------
// Reading a trace back.

namespace {

std::string number_text(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// Any attribute as text: strings as they are, numbers in full precision, arrays joined by ','.
std::string attribute_text(hid_t loc, const std::string& name, const std::string& where) {
    Handle a(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
    Handle type(H5Aget_type(a), H5Tclose);
    Handle space(H5Aget_space(a), H5Sclose);
    if (!a.valid() || !type.valid() || !space.valid())
        throw InputError(where + ": attribute '" + name + "' cannot be read");
    const auto cls = H5Tget_class(type);
    if (cls == H5T_STRING) {
        auto v = h5::read_string_array_attribute(loc, name, where);
        std::string out;
        for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
        return out;
    }
    const auto n = std::size_t(std::max<hssize_t>(H5Sget_simple_extent_npoints(space), 0));
    std::string out;
    if (cls == H5T_INTEGER) {
        const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
        std::vector<std::uint64_t> v(n);
        if (H5Aread(a, is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64, v.data()) < 0)
            throw InputError(where + ": attribute '" + name + "' cannot be read");
        for (std::size_t i = 0; i < n; ++i)
            out += (i ? "," : "") + (is_signed ? std::to_string(std::int64_t(v[i])) : std::to_string(v[i]));
    } else if (cls == H5T_FLOAT) {
        std::vector<double> v(n);
        if (H5Aread(a, H5T_NATIVE_DOUBLE, v.data()) < 0)
            throw InputError(where + ": attribute '" + name + "' cannot be read");
        for (std::size_t i = 0; i < n; ++i) out += (i ? "," : "") + number_text(v[i]);
    } else {
        out = "(unsupported type)";
    }
    return out;
}

// SONATA `sorting`: an enum (libsonata) or a string (bmtk); "" when absent.
std::string read_sorting(hid_t group, const std::string& where) {
    if (!h5::has_attribute(group, "sorting")) return "";
    Handle a(H5Aopen(group, "sorting", H5P_DEFAULT), H5Aclose);
    Handle type(H5Aget_type(a), H5Tclose);
    if (!a.valid() || !type.valid()) throw InputError(where + ": attribute 'sorting' cannot be read");
    if (H5Tget_class(type) == H5T_STRING) return h5::read_string_attribute(group, "sorting", where);
    if (H5Tget_class(type) != H5T_ENUM)
        throw InputError(where + ": attribute 'sorting' is neither an enum nor a string");
    Handle mem(H5Tget_native_type(type, H5T_DIR_ASCEND), H5Tclose);
    unsigned char value[16] = {};
    if (H5Tget_size(mem) > sizeof value || H5Aread(a, mem, value) < 0)
        throw InputError(where + ": attribute 'sorting' cannot be read");
    char name[64] = {};
    if (H5Tenum_nameof(mem, value, name, sizeof name) < 0)
        throw InputError(where + ": attribute 'sorting' has a value outside its enum");
    return name;
}

hsize_t length_1d(hid_t dset, const std::string& where) {
    Handle space(H5Dget_space(dset), H5Sclose);
    if (!space.valid() || H5Sget_simple_extent_ndims(space) != 1)
        throw InputError(where + ": should be one-dimensional");
    hsize_t n = 0;
    H5Sget_simple_extent_dims(space, &n, nullptr);
    return n;
}

// Streams one population's spikes in blocks (memory stays bounded for files of any length) after
// checking its datasets; `block(ms, ids, at, count)` sees each block, times in ms and finite.
template <class Block>
void for_each_spike_block(hid_t group, const std::string& sorting, const std::string& where, Block&& block) {
    Handle ts = h5::open_dataset(group, "timestamps", where);
    Handle ids = h5::open_dataset(group, "node_ids", where);
    bool signed_ids = false; // SONATA says uint64; numpy's default int64 is common in hand-written files
    {
        Handle t(H5Dget_type(ts), H5Tclose), i(H5Dget_type(ids), H5Tclose);
        if (H5Tget_class(t) != H5T_FLOAT) throw InputError(where + "/timestamps: not a floating-point dataset");
        if (H5Tget_class(i) != H5T_INTEGER) throw InputError(where + "/node_ids: not an integer dataset");
        signed_ids = H5Tget_sign(i) == H5T_SGN_2;
    }
    if (!h5::has_attribute(ts, "units"))
        throw InputError(where + "/timestamps: attribute 'units' is missing (SONATA requires it)");
    const std::string units = h5::read_string_attribute(ts, "units", where + "/timestamps");
    if (units != "ms" && units != "s") throw InputError(where + "/timestamps: units '" + units + "' (expected \"ms\")");
    const double scale = units == "s" ? 1000.0 : 1.0;
    const hsize_t n = length_1d(ts, where + "/timestamps");
    if (length_1d(ids, where + "/node_ids") != n)
        throw InputError(where + ": node_ids and timestamps have different lengths");
    h5::check_stored(ts, "timestamps", where); // a damaged header can claim billions of spikes
    h5::check_stored(ids, "node_ids", where);

    const hsize_t chunk = 1 << 20;
    std::vector<double> t(std::min(n, chunk));
    std::vector<std::uint64_t> id(t.size());
    double previous = -std::numeric_limits<double>::infinity();
    Handle file_t(H5Dget_space(ts), H5Sclose), file_i(H5Dget_space(ids), H5Sclose);
    for (hsize_t at = 0; at < n; at += chunk) {
        hsize_t count = std::min(chunk, n - at);
        Handle mem(H5Screate_simple(1, &count, nullptr), H5Sclose);
        H5Sselect_hyperslab(file_t, H5S_SELECT_SET, &at, nullptr, &count, nullptr);
        H5Sselect_hyperslab(file_i, H5S_SELECT_SET, &at, nullptr, &count, nullptr);
        if (H5Dread(ts, H5T_NATIVE_DOUBLE, mem, file_t, H5P_DEFAULT, t.data()) < 0)
            throw InputError(where + "/timestamps: cannot be read (truncated or corrupt file?)");
        if (H5Dread(ids, signed_ids ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64, mem, file_i, H5P_DEFAULT, id.data()) < 0)
            throw InputError(where + "/node_ids: cannot be read (truncated or corrupt file?)");
        for (hsize_t k = 0; k < count; ++k) {
            if (signed_ids && std::int64_t(id[k]) < 0)
                throw InputError(where + "/node_ids: element " + std::to_string(at + k) + " is negative (" +
                                 std::to_string(std::int64_t(id[k])) + ")");
            t[k] *= scale;
            if (!std::isfinite(t[k]))
                throw InputError(where + "/timestamps: element " + std::to_string(at + k) + " is not finite");
            if (sorting == "by_time" && t[k] < previous)
                throw InputError(where + "/timestamps: element " + std::to_string(at + k) +
                                 " goes back in time although sorting is by_time");
            previous = t[k];
        }
        block(std::span<const double>(t.data(), count), std::span<const std::uint64_t>(id.data(), count), at);
    }
}

void scan_population(hid_t group, TraceSummary::Population& pop, const std::string& where) {
    std::uint64_t max_id = 0;
    for_each_spike_block(group, pop.sorting, where,
                         [&](std::span<const double> ms, std::span<const std::uint64_t> ids, hsize_t at) {
                             for (std::size_t k = 0; k < ms.size(); ++k) {
                                 if (at + k == 0) pop.first_ms = pop.last_ms = ms[k];
                                 pop.first_ms = std::min(pop.first_ms, ms[k]);
                                 pop.last_ms = std::max(pop.last_ms, ms[k]);
                                 max_id = std::max(max_id, ids[k]);
                             }
                             pop.spikes += ms.size();
                         });
    pop.neurons = pop.spikes ? max_id + 1 : 0;
}

template <class T>
std::vector<T> read_column(hid_t loc, const std::string& name, hid_t memtype, const std::string& where) {
    Handle d = h5::open_dataset(loc, name, where);
    const hsize_t n = length_1d(d, where + "/" + name);
    h5::check_stored(d, name, where);
    std::vector<T> v(n);
    if (!v.empty() && H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
        throw InputError(where + "/" + name + ": cannot be read (truncated or corrupt file?)");
    return v;
}

void expect_length(std::size_t n, std::size_t expected, const std::string& object) {
    if (n != expected)
        throw InputError(object + ": has " + std::to_string(n) + " entries, expected " + std::to_string(expected));
}

// A group of a table and its path for messages.
struct At {
    hid_t group;
    std::string where;
};

// The ledger keeps a table's description in /energy/<table> and its totals in
// /energy/total/<table>: one table, two groups.
struct LedgerTable {
    Handle meta_group, sum_group;
    At meta, sum;
};

LedgerTable open_ledger_table(hid_t energy, hid_t total, const std::string& table, const std::string& where) {
    LedgerTable t{h5::open_group(energy, table, where), h5::open_group(total, table, where + "/total"), {}, {}};
    t.meta = {t.meta_group, where + "/" + table};
    t.sum = {t.sum_group, where + "/total/" + table};
    return t;
}

// The columns of one table: equal-length 1-D datasets, possibly spread over several groups
// (/energy keeps the names in one group and the totals in another). The first column read sets
// the row count; every later one must have it.
class Columns {
public:
    std::vector<std::string> strings(const At& at, const std::string& name) {
        std::vector<std::int64_t> shape;
        return rows(h5::read_strings(at.group, name, shape, at.where), at, name);
    }
    std::vector<std::uint64_t> uint64s(const At& at, const std::string& name) {
        return rows(h5::read_uint64s(at.group, name, at.where), at, name);
    }
    template <class T>
    std::vector<T> numbers(const At& at, const std::string& name, hid_t memtype) {
        return rows(read_column<T>(at.group, name, memtype, at.where), at, name);
    }

private:
    template <class V>
    V rows(V column, const At& at, const std::string& name) {
        if (!rows_) rows_ = column.size();
        else expect_length(column.size(), *rows_, at.where + "/" + name);
        return column;
    }
    std::optional<std::size_t> rows_;
};

void read_samples(hid_t file, TraceSummary& s) {
    const std::string where = s.path + ": /samples";
    Handle g = h5::open_group(file, "samples", s.path);
    if (h5::has_attribute(g, "ticks_per_sample"))
        s.ticks_per_sample = h5::read_int_attribute(g, "ticks_per_sample", where);
    if (h5::has_attribute(g, "dt_ms")) s.dt_ms = h5::read_double_attribute(g, "dt_ms", where);
    const At at{g, where};
    Columns c;
    const auto index = c.numbers<std::uint64_t>(at, "index", H5T_NATIVE_UINT64);
    const auto start = c.numbers<double>(at, "start_ms", H5T_NATIVE_DOUBLE);
    const auto label = c.numbers<std::int64_t>(at, "label", H5T_NATIVE_INT64);
    const auto prediction = c.numbers<std::int64_t>(at, "prediction", H5T_NATIVE_INT64);
    const auto recorded = c.numbers<std::uint8_t>(at, "recorded", H5T_NATIVE_UINT8);
    const auto spikes = c.numbers<std::uint64_t>(at, "spikes", H5T_NATIVE_UINT64);
    for (std::size_t k = 0; k < index.size(); ++k)
        s.samples.push_back({index[k], start[k], label[k], prediction[k], recorded[k] != 0, spikes[k], 0.0});
}

void read_energy(hid_t file, TraceSummary& s) {
    const std::string where = s.path + ": /energy";
    Handle g = h5::open_group(file, "energy", s.path);
    s.has_energy = true;
    s.e_ac_pj = h5::read_double_attribute(g, "e_ac_pj", where);
    s.e_mac_pj = h5::read_double_attribute(g, "e_mac_pj", where);
    Handle total = h5::open_group(g, "total", where);
    s.energy_samples = std::uint64_t(h5::read_int_attribute(total, "samples", where + "/total"));
    s.snn_pj = h5::read_double_attribute(total, "snn_pj", where + "/total");
    s.ann_pj = h5::read_double_attribute(total, "ann_pj", where + "/total");

    {
        const auto t = open_ledger_table(g, total, "populations", where);
        Columns c;
        const auto names = c.strings(t.meta, "name");
        const auto models = c.strings(t.meta, "model");
        const auto sizes = c.uint64s(t.meta, "size");
        const auto spikes = c.uint64s(t.sum, "spikes");
        const auto updates = c.uint64s(t.sum, "updates");
        const auto macs = c.uint64s(t.sum, "macs");
        const auto drift = h5::has_link(t.sum.group, "drift_ticks") ? c.uint64s(t.sum, "drift_ticks")
                                                                    : std::vector<std::uint64_t>(names.size());
        for (std::size_t p = 0; p < names.size(); ++p)
            s.population_energy.push_back(
                {names[p], models[p], sizes[p], spikes[p], updates[p], macs[p], s.e_mac_pj * double(macs[p]), drift[p]});
    }
    {
        const auto t = open_ledger_table(g, total, "projections", where);
        Columns c;
        const auto names = c.strings(t.meta, "name");
        const auto sources = c.strings(t.meta, "source");
        const auto targets = c.strings(t.meta, "target");
        const auto releases = c.strings(t.meta, "release");
        // Traces written before projections had roles have no such column: no role, as in the model.
        const auto roles = h5::has_link(t.meta.group, "role") ? c.strings(t.meta, "role")
                                                              : std::vector<std::string>(names.size());
        const auto ratios = c.numbers<double>(t.meta, "mask_ratio", H5T_NATIVE_DOUBLE);
        const auto synapses = c.uint64s(t.meta, "synapses");
        // Traces written before the weight memory was recorded: unknown (the memory model needs --model).
        s.stored_weights_known = h5::has_link(t.meta.group, "weights");
        const auto stored = s.stored_weights_known ? c.uint64s(t.meta, "weights") : std::vector<std::uint64_t>(names.size());
        const auto spikes_in = c.uint64s(t.sum, "spikes_in");
        const auto masked = c.uint64s(t.sum, "masked_spikes");
        const auto attempted = c.uint64s(t.sum, "attempted");
        const auto transmitted = c.uint64s(t.sum, "transmitted");
        for (std::size_t j = 0; j < names.size(); ++j)
            s.projection_energy.push_back({names[j], sources[j], targets[j], releases[j], roles[j], ratios[j], synapses[j],
                                           spikes_in[j], masked[j], attempted[j], transmitted[j],
                                           s.e_ac_pj * double(transmitted[j]), stored[j]});
    }
    if (h5::is_group(g, "operators")) { // traces from before operator nodes have none
        const auto t = open_ledger_table(g, total, "operators", where);
        Columns c;
        const auto names = c.strings(t.meta, "name");
        const auto kinds = c.strings(t.meta, "kind");
        const auto outputs = c.strings(t.meta, "output");
        const auto coincidences = c.uint64s(t.sum, "coincidences");
        const auto deliveries = c.uint64s(t.sum, "deliveries");
        const auto macs = c.uint64s(t.sum, "macs");
        const auto masked = c.uint64s(t.sum, "masked_spikes");
        const bool inputs = h5::has_link(t.meta.group, "q"); // traces from before they were recorded have none
        const std::vector<std::string> none(names.size());
        const auto q = inputs ? c.strings(t.meta, "q") : none, k = inputs ? c.strings(t.meta, "k") : none;
        const auto v = inputs ? c.strings(t.meta, "v") : none, scores = inputs ? c.strings(t.meta, "scores") : none;
        const auto ann_macs = inputs ? c.uint64s(t.meta, "ann_macs") : std::vector<std::uint64_t>(names.size());
        for (std::size_t i = 0; i < names.size(); ++i)
            s.operator_energy.push_back(
                {names[i], kinds[i], outputs[i], coincidences[i], deliveries[i], macs[i], masked[i],
                 s.e_ac_pj * double(coincidences[i] + deliveries[i]) + s.e_mac_pj * double(macs[i]), q[i], k[i], v[i],
                 scores[i], ann_macs[i]});
    }
    if (h5::is_group(g, "ann")) {
        const std::string at = where + "/ann";
        Handle a = h5::open_group(g, "ann", where);
        Columns c;
        const At meta{a, at};
        const auto layers = c.strings(meta, "layer"), kinds = c.strings(meta, "kind");
        const auto macs = c.uint64s(meta, "macs"), weights = c.uint64s(meta, "weights");
        const auto ins = c.uint64s(meta, "inputs"), outs = c.uint64s(meta, "outputs");
        AnnBaseline ann;
        for (std::size_t i = 0; i < layers.size(); ++i) {
            if (!is_ann_layer_kind(kinds[i])) throw InputError(at + "/kind: '" + kinds[i] + "' is not a layer kind");
            ann.layers.push_back({layers[i], kinds[i], macs[i], weights[i], ins[i], outs[i]});
        }
        const auto levels = h5::read_int_attribute(a, "levels", at);
        if (levels < 0 || levels > 65535) throw InputError(at + ": levels " + std::to_string(levels) + " is outside [0, 65535]");
        ann.levels = std::uint32_t(levels);
        s.ann = std::move(ann);
    }
    if (h5::has_link(g, "per_sample/snn_pj")) {
        const auto snn = read_column<double>(g, "per_sample/snn_pj", H5T_NATIVE_DOUBLE, where);
        if (snn.size() == s.samples.size())
            for (std::size_t k = 0; k < snn.size(); ++k) s.samples[k].snn_pj = snn[k];
    }
}

// Spikes per population that the ledger counted in the samples whose spikes were recorded;
// empty when the trace has no per-sample ledger to check against.
std::vector<std::uint64_t> recorded_ledger_spikes(hid_t file, const TraceSummary& s) {
    const std::string name = "energy/per_sample/populations/spikes";
    const std::size_t n_pop = s.population_energy.size();
    if (s.samples.empty() || n_pop == 0 || !h5::has_link(file, name)) return {};
    const auto rows = h5::read_uint64s(file, name, s.path + ": /energy/per_sample/populations");
    expect_length(rows.size(), s.samples.size() * n_pop, s.path + ": /" + name);
    std::vector<std::uint64_t> total(n_pop, 0);
    for (std::size_t k = 0; k < s.samples.size(); ++k)
        if (s.samples[k].recorded)
            for (std::size_t p = 0; p < n_pop; ++p) total[p] += rows[k * n_pop + p];
    return total;
}

} // namespace

std::uint64_t TraceSummary::total_spikes() const {
    std::uint64_t n = 0;
    for (const auto& p : populations) n += p.spikes;
    return n;
}

TraceSummary read_trace_summary(const std::string& path) {
    Handle file = h5::open_file(path);
    TraceSummary s;
    s.path = path;

    if (h5::is_group(file, "run")) {
        Handle run = h5::open_group(file, "run", path);
        H5O_info_t info;
        if (H5Oget_info(run, &info) < 0) throw InputError(path + ": /run cannot be read");
        for (hsize_t i = 0; i < info.num_attrs; ++i) {
            char name[256] = {};
            if (H5Aget_name_by_idx(run, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0)
                throw InputError(path + ": /run attributes cannot be read");
            s.run.emplace_back(name, attribute_text(run, name, path + ": /run"));
        }
        if (h5::has_attribute(run, "dt_ms")) s.dt_ms = h5::read_double_attribute(run, "dt_ms", path + ": /run");
        if (h5::has_attribute(run, "ticks_per_sample"))
            s.ticks_per_sample = h5::read_int_attribute(run, "ticks_per_sample", path + ": /run");
    }
    if (h5::is_group(file, "samples") || h5::has_link(file, "samples")) read_samples(file, s);
    if (h5::is_group(file, "energy") || h5::has_link(file, "energy")) read_energy(file, s);

    const auto ledger_spikes = recorded_ledger_spikes(file, s);
    Handle spikes = h5::open_group(file, "spikes", path);
    for (const auto& name : h5::member_names(spikes, path + ": /spikes")) {
        const std::string where = path + ": /spikes/" + name;
        if (!h5::is_group(spikes, name)) throw InputError(where + ": is not a group");
        Handle g = h5::open_group(spikes, name, path + ": /spikes");
        TraceSummary::Population pop;
        pop.name = name;
        pop.sorting = read_sorting(g, where);
        scan_population(g, pop, where);
        for (std::size_t p = 0; p < s.population_energy.size(); ++p) {
            const auto& e = s.population_energy[p];
            if (e.name != name) continue;
            if (pop.spikes && pop.neurons > e.size)
                throw InputError(where + "/node_ids: id " + std::to_string(pop.neurons - 1) +
                                 " is outside the population of " + std::to_string(e.size) + " neurons");
            pop.neurons = e.size;
            // The ledger counted every spike of the recorded samples: a trace that holds more or
            // fewer was cut or altered.
            if (!ledger_spikes.empty() && ledger_spikes[p] != pop.spikes)
                throw InputError(where + ": holds " + std::to_string(pop.spikes) +
                                 " spikes, the energy ledger counts " + std::to_string(ledger_spikes[p]) +
                                 " in the recorded samples");
        }
        s.populations.push_back(std::move(pop));
    }

    // Rates are averaged over the recorded samples when the trace says which they are, else
    // over [0, last spike].
    std::uint64_t recorded = 0;
    for (const auto& k : s.samples) recorded += k.recorded ? 1 : 0;
    if (!s.samples.empty() && s.ticks_per_sample > 0) {
        s.recorded_ms = double(recorded) * double(s.ticks_per_sample) * s.dt_ms;
    } else {
        for (const auto& p : s.populations) s.recorded_ms = std::max(s.recorded_ms, p.last_ms + s.dt_ms);
    }
    for (auto& p : s.populations)
        p.rate_hz =
            p.neurons && s.recorded_ms > 0 ? double(p.spikes) / double(p.neurons) / (s.recorded_ms / 1000.0) : 0.0;
    return s;
}

std::optional<std::uint64_t> grid_tick(double ms, double dt_ms) {
    const double q = std::floor(ms / dt_ms);
    if (!(ms >= 0) || !(q < double(std::uint64_t{1} << 53))) return std::nullopt;
    auto g = std::uint64_t(q);
    // ms / dt_ms is rounded: settle on the grid point as the writer computes it, double(g) * dt_ms.
    while (double(g + 1) * dt_ms <= ms) ++g;
    while (g > 0 && double(g) * dt_ms > ms) --g;
    return g;
}

SpikeFile read_spike_file(const std::string& path) {
    Handle file = h5::open_file(path);
    SpikeFile f;
    f.path = path;
    Handle spikes = h5::open_group(file, "spikes", path);
    for (const auto& name : h5::member_names(spikes, path + ": /spikes")) {
        const std::string where = path + ": /spikes/" + name;
        if (!h5::is_group(spikes, name)) throw InputError(where + ": is not a group");
        Handle g = h5::open_group(spikes, name, path + ": /spikes");
        auto& pop = f.populations.emplace_back();
        pop.name = name;
        for_each_spike_block(g, read_sorting(g, where), where,
                             [&](std::span<const double> ms, std::span<const std::uint64_t> ids, hsize_t) {
                                 pop.ms.insert(pop.ms.end(), ms.begin(), ms.end());
                                 pop.node_ids.insert(pop.node_ids.end(), ids.begin(), ids.end());
                             });
    }
    if (h5::is_group(file, "samples")) {
        Handle g = h5::open_group(file, "samples", path);
        f.sample_start_ms = read_column<double>(g, "start_ms", H5T_NATIVE_DOUBLE, path + ": /samples");
    }
    return f;
}

EnergyInputs energy_inputs(const TraceSummary& s) {
    if (!s.has_energy) throw InputError(s.path + ": has no /energy ledger (a trace written by quantal run or demo has one)");
    EnergyInputs in;
    in.samples = s.energy_samples;
    in.ticks = std::uint64_t(std::max<std::int64_t>(s.ticks_per_sample, 0));
    in.ann = s.ann;
    in.stored_weights_known = s.stored_weights_known;
    auto population = [&](const std::string& name, const std::string& where) -> std::uint32_t {
        for (std::uint32_t p = 0; p < s.population_energy.size(); ++p)
            if (s.population_energy[p].name == name) return p;
        throw InputError(s.path + ": /energy/" + where + " names population '" + name + "', which the ledger does not have");
    };
    for (const auto& p : s.population_energy) {
        PopulationCounts c;
        c.spikes = p.spikes, c.updates = p.updates, c.macs = p.macs, c.drift_ticks = p.drift_ticks;
        const bool source = p.model == "spike_source" || p.model == "bernoulli_source";
        in.populations.push_back({p.name, p.size, !source, p.model == "LIF" || p.model == "CubaLIF", c});
    }
    for (const auto& p : s.projection_energy) {
        ProjectionCounts c;
        c.spikes_in = p.spikes_in, c.masked_spikes = p.masked_spikes, c.attempted = p.attempted, c.transmitted = p.transmitted;
        in.projections.push_back({p.name, p.role, population(p.source, "projections/source"),
                                  population(p.target, "projections/target"), p.synapses, p.stored_weights, c});
    }
    for (const auto& o : s.operator_energy) {
        OperatorCounts c;
        c.coincidences = o.coincidences, c.deliveries = o.deliveries, c.macs = o.macs, c.masked_spikes = o.masked_spikes;
        EnergyInputs::Operator op{o.name, EnergyInputs::none, EnergyInputs::none, EnergyInputs::none, EnergyInputs::none,
                                  population(o.output, "operators/output"), o.ann_macs, c};
        if (!o.q.empty()) {
            op.q = population(o.q, "operators/q"), op.k = population(o.k, "operators/k");
            op.v = population(o.v, "operators/v"), op.scores = population(o.scores, "operators/scores");
        }
        in.operators.push_back(op);
    }
    return in;
}

} // namespace quantal
