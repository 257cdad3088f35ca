#include "io/hdf5_access.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <cstdlib>
#include <numeric>

#include "sim/errors.hpp"

namespace quantal::h5 {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw InputError(where + ": " + what); }

std::vector<std::int64_t> dataspace_shape(hid_t space) {
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0) return {};
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    return {dims.begin(), dims.end()};
}

std::size_t element_count(const std::vector<std::int64_t>& shape) {
    return std::size_t(std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>()));
}

// The element count a (possibly corrupt) header claims, in double so that it cannot overflow.
double claimed_count(const std::vector<std::int64_t>& shape) {
    return std::accumulate(shape.begin(), shape.end(), 1.0, [](double n, std::int64_t d) { return n * double(d); });
}

// Reads strings from a dataset or attribute (`is_attribute`), variable or fixed length.
std::vector<std::string> read_string_object(hid_t obj, bool is_attribute, std::vector<std::int64_t>& shape,
                                            const std::string& where) {
    Handle type(is_attribute ? H5Aget_type(obj) : H5Dget_type(obj), H5Tclose);
    Handle space(is_attribute ? H5Aget_space(obj) : H5Dget_space(obj), H5Sclose);
    if (!type.valid() || !space.valid()) fail(where, "cannot be read");
    if (H5Tget_class(type) != H5T_STRING) fail(where, "is not a string");
    shape = dataspace_shape(space);
    if (claimed_count(shape) > double(1 << 24)) fail(where, "claims " + shape_text(shape) + " strings (corrupt file?)");
    const std::size_t n = element_count(shape);
    std::vector<std::string> out(n);
    if (H5Tis_variable_str(type) > 0) {
        Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        std::vector<char*> raw(n, nullptr);
        const herr_t rc = is_attribute ? H5Aread(obj, mem, raw.data())
                                       : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data());
        if (rc < 0) fail(where, "cannot be read (truncated or corrupt file?)");
        for (std::size_t i = 0; i < n; ++i) out[i] = raw[i] ? raw[i] : "";
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, raw.data());
    } else {
        const std::size_t len = H5Tget_size(type);
        Handle mem(H5Tcopy(type), H5Tclose);
        std::vector<char> raw(n * len + 1, '\0');
        const herr_t rc = is_attribute ? H5Aread(obj, mem, raw.data())
                                       : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data());
        if (rc < 0) fail(where, "cannot be read (truncated or corrupt file?)");
        for (std::size_t i = 0; i < n; ++i) {
            std::string s(raw.data() + i * len, len);
            s.erase(s.find_last_not_of(std::string(1, '\0')) + 1); // fixed-length strings are NUL padded
            out[i] = s;
        }
    }
    return out;
}

Handle scalar_space() { return Handle(H5Screate(H5S_SCALAR), H5Sclose); }

Handle vlen_string_type() {
    Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

void replace_attribute(hid_t loc, const std::string& name) {
    if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
}

template <class T>
void write_numeric(hid_t loc, const std::string& name, const std::vector<T>& v, const std::vector<hsize_t>& shape,
                   hid_t file_type, hid_t mem_type) {
    Handle space(H5Screate_simple(int(shape.size()), shape.data(), nullptr), H5Sclose);
    Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    if (!v.empty() && v.size() >= 4096 && !shape.empty()) { // big arrays: chunked and gzip, as NIR does
        std::vector<hsize_t> chunk = shape;
        for (std::size_t i = 0; i + 1 < chunk.size(); ++i) chunk[i] = 1;
        if (chunk.back() > (1u << 20)) chunk.back() = 1u << 20;
        if (chunk.back() == 0) chunk.back() = 1;
        H5Pset_chunk(plist, int(chunk.size()), chunk.data());
        H5Pset_deflate(plist, 4);
    }
    Handle ds(H5Dcreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, plist, H5P_DEFAULT), H5Dclose);
    if (!ds.valid() || (!v.empty() && H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0))
        throw InputError("cannot write dataset '" + name + "'");
}

} // namespace

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle open_file(const std::string& path) {
    silence_errors();
    if (H5Fis_hdf5(path.c_str()) <= 0) {
        if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
            std::fclose(f);
            fail(path, "is not a readable HDF5 file (truncated or corrupt)");
        }
        fail(path, "cannot be opened (no such file?)");
    }
    // SWMR-read mode turns libhdf5 1.10's metadata accumulator off: on a damaged address near
    // 2^64 (one byte of a root group's link info, issue 10) the accumulator's overlap test wraps
    // and it copies from outside its buffer (a segfault); without it the read fails as an error.
    Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT), H5Fclose);
    if (!f.valid()) f = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!f.valid()) fail(path, "is not a readable HDF5 file (truncated or corrupt)");
    return f;
}

Handle create_file(const std::string& path) {
    silence_errors();
    Handle plist(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    H5Pset_link_creation_order(plist, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, plist, H5P_DEFAULT), H5Fclose);
    if (!f.valid()) fail(path, "cannot be created");
    return f;
}

bool has_link(hid_t loc, const std::string& name) {
    return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0 && H5Oexists_by_name(loc, name.c_str(), H5P_DEFAULT) > 0;
}

bool is_group(hid_t loc, const std::string& name) {
    if (!has_link(loc, name)) return false;
    H5O_info_t info;
    if (H5Oget_info_by_name(loc, name.c_str(), &info, H5P_DEFAULT) < 0) return false;
    return info.type == H5O_TYPE_GROUP;
}

Handle open_group(hid_t loc, const std::string& name, const std::string& where) {
    if (!has_link(loc, name)) fail(where, "group '" + name + "' is missing");
    Handle g(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) fail(where, "'" + name + "' is not a readable group");
    return g;
}

Handle open_dataset(hid_t loc, const std::string& name, const std::string& where) {
    if (!has_link(loc, name)) fail(where, "dataset '" + name + "' is missing");
    Handle d(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) fail(where, "'" + name + "' is not a readable dataset");
    return d;
}

Handle create_group(hid_t loc, const std::string& name, const std::string& where) {
    Handle plist(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
    H5Pset_link_creation_order(plist, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    Handle g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, plist, H5P_DEFAULT), H5Gclose);
    if (!g.valid()) fail(where, "cannot create group '" + name + "'");
    return g;
}

std::vector<std::string> member_names(hid_t group, const std::string& where) {
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) fail(where, "cannot list members");
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        auto name_at = [&](H5_index_t index) -> std::string {
            const ssize_t len = H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
            if (len < 0) return {};
            std::string s(std::size_t(len) + 1, '\0');
            H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, s.data(), s.size(), H5P_DEFAULT);
            s.resize(std::size_t(len));
            return s;
        };
        std::string name = name_at(H5_INDEX_CRT_ORDER);
        if (name.empty()) name = name_at(H5_INDEX_NAME);
        if (name.empty()) fail(where, "cannot list members (truncated or corrupt file?)");
        names.push_back(std::move(name));
    }
    return names;
}

namespace {

// A corrupt header can claim any extent: refuse sizes the stored data cannot hold before
// allocating for them.
std::string gigabytes(double bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g GB", bytes / 1e9);
    return text;
}

void check_extent(hid_t ds, hid_t type, const std::vector<std::int64_t>& shape, const std::string& name,
                  const std::string& where) {
    const double n = claimed_count(shape);
    if (n > double(std::uint64_t{1} << 32))
        fail(where, "'" + name + "' claims " + shape_text(shape) + " elements (corrupt file?)");
    Handle plist(H5Dget_create_plist(ds), H5Pclose);
    if (!plist.valid() || n <= 0) return;
    const double needed = n * double(H5Tget_size(type));
    const double stored = double(H5Dget_storage_size(ds));
    const auto layout = H5Pget_layout(plist);
    if (layout == H5D_CONTIGUOUS && stored < needed)
        fail(where, "'" + name + "' is truncated or corrupt: " + std::to_string(H5Dget_storage_size(ds)) +
                        " bytes stored for " + shape_text(shape));
    if (layout != H5D_CHUNKED) return;
    // Chunked: every chunk the extent spans must be stored (an unwritten one reads as fill values,
    // so a tiny file could claim gigabytes), and the stored bytes must be able to hold the data.
    const int rank = H5Pget_chunk(plist, 0, nullptr);
    if (rank != int(shape.size())) fail(where, "'" + name + "' has a corrupt chunk layout");
    std::vector<hsize_t> chunk(shape.size());
    H5Pget_chunk(plist, rank, chunk.data());
    double chunks = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (chunk[i] == 0) fail(where, "'" + name + "' has a corrupt chunk layout");
        chunks *= std::ceil(double(shape[i]) / double(chunk[i]));
    }
    Handle space(H5Dget_space(ds), H5Sclose);
    hsize_t stored_chunks = 0;
    if (!space.valid() || H5Dget_num_chunks(ds, space, &stored_chunks) < 0)
        fail(where, "'" + name + "' cannot be read (corrupt chunk index?)");
    if (double(stored_chunks) < chunks)
        fail(where, "'" + name + "' claims " + shape_text(shape) + " in " + shape_text({std::int64_t(chunks)}) +
                        " chunks, of which " + std::to_string(stored_chunks) + " are stored (unwritten or corrupt)");
    // Deflate, the one compressing filter libhdf5 1.10 reads without plugins, packs at most 1032:1.
    const double ratio = H5Pget_nfilters(plist) > 0 ? 1032.0 : 1.0;
    if (stored * ratio < needed)
        fail(where, "'" + name + "' claims " + shape_text(shape) + " but stores only " +
                        std::to_string(H5Dget_storage_size(ds)) + " bytes (truncated or corrupt)");
    // Read as doubles at most: 8 bytes per element in memory.
    check_memory(n * 8.0, name, where);
}

} // namespace

double available_memory() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    double kb = 0;
    std::string unit;
    while (meminfo >> key >> kb >> unit)
        if (key == "MemAvailable:") return kb * 1024.0;
    return std::numeric_limits<double>::infinity();
}

void check_memory(double bytes, const std::string& name, const std::string& where, double available) {
    if (bytes > available)
        fail(where, "'" + name + "' needs " + gigabytes(bytes) + " of memory once read, but " + gigabytes(available) +
                        " is available");
}

void check_stored(hid_t ds, const std::string& name, const std::string& where) {
    Handle type(H5Dget_type(ds), H5Tclose);
    Handle space(H5Dget_space(ds), H5Sclose);
    if (!type.valid() || !space.valid()) fail(where, "'" + name + "' cannot be read");
    check_extent(ds, type, dataspace_shape(space), name, where);
}

Array read_array(hid_t loc, const std::string& name, const std::string& where) {
    Handle ds = open_dataset(loc, name, where);
    Handle type(H5Dget_type(ds), H5Tclose);
    Handle space(H5Dget_space(ds), H5Sclose);
    const auto cls = H5Tget_class(type);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) fail(where, "'" + name + "' is not numeric");
    Array a;
    a.shape = dataspace_shape(space);
    check_extent(ds, type, a.shape, name, where);
    a.values.resize(element_count(a.shape));
    if (!a.values.empty() && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.values.data()) < 0)
        fail(where, "'" + name + "' cannot be read (truncated or corrupt file?)");
    return a;
}

namespace {
// An integer dataset of any stored width, converted by HDF5 to the native type T.
template <class T>
std::vector<T> read_integers(hid_t loc, const std::string& name, hid_t native, const std::string& where) {
    Handle ds = open_dataset(loc, name, where);
    Handle type(H5Dget_type(ds), H5Tclose);
    Handle space(H5Dget_space(ds), H5Sclose);
    if (H5Tget_class(type) != H5T_INTEGER) fail(where, "'" + name + "' is not an integer array");
    check_extent(ds, type, dataspace_shape(space), name, where);
    std::vector<T> v(element_count(dataspace_shape(space)));
    if (!v.empty() && H5Dread(ds, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
        fail(where, "'" + name + "' cannot be read (truncated or corrupt file?)");
    return v;
}
} // namespace

std::vector<std::int64_t> read_ints(hid_t loc, const std::string& name, const std::string& where) {
    return read_integers<std::int64_t>(loc, name, H5T_NATIVE_INT64, where);
}

std::vector<std::uint64_t> read_uint64s(hid_t loc, const std::string& name, const std::string& where) {
    return read_integers<std::uint64_t>(loc, name, H5T_NATIVE_UINT64, where);
}

bool is_string_dataset(hid_t loc, const std::string& name) {
    if (!has_link(loc, name)) return false;
    Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) return false;
    Handle type(H5Dget_type(ds), H5Tclose);
    return H5Tget_class(type) == H5T_STRING;
}

std::string read_string(hid_t loc, const std::string& name, const std::string& where) {
    Handle ds = open_dataset(loc, name, where);
    std::vector<std::int64_t> shape;
    auto v = read_string_object(ds, false, shape, where + ": '" + name + "'");
    if (v.size() != 1) fail(where, "'" + name + "' should hold one string, it has shape " + shape_text(shape));
    return v[0];
}

std::vector<std::string> read_strings(hid_t loc, const std::string& name, std::vector<std::int64_t>& shape,
                                      const std::string& where) {
    Handle ds = open_dataset(loc, name, where);
    return read_string_object(ds, false, shape, where + ": '" + name + "'");
}

bool has_attribute(hid_t loc, const std::string& name) { return H5Aexists(loc, name.c_str()) > 0; }

std::vector<std::string> attribute_names(hid_t loc, const std::string& where) {
    std::vector<std::string> names;
    hsize_t index = 0;
    const H5A_operator2_t collect = [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->emplace_back(name);
        return 0;
    };
    if (H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, &index, collect, &names) < 0)
        fail(where, "cannot list attributes (truncated or corrupt file?)");
    return names;
}

namespace {
Handle open_attribute(hid_t loc, const std::string& name, const std::string& where) {
    if (!has_attribute(loc, name)) fail(where, "attribute '" + name + "' is missing");
    Handle a(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
    if (!a.valid()) fail(where, "attribute '" + name + "' cannot be read");
    return a;
}

template <class T> T read_scalar_attribute(hid_t loc, const std::string& name, hid_t mem, const std::string& where) {
    Handle a = open_attribute(loc, name, where);
    Handle type(H5Aget_type(a), H5Tclose);
    Handle space(H5Aget_space(a), H5Sclose);
    const auto cls = H5Tget_class(type);
    if ((cls != H5T_FLOAT && cls != H5T_INTEGER) || H5Sget_simple_extent_npoints(space) != 1)
        fail(where, "attribute '" + name + "' is not a number");
    T value{};
    if (H5Aread(a, mem, &value) < 0) fail(where, "attribute '" + name + "' cannot be read");
    return value;
}
} // namespace

std::string read_string_attribute(hid_t loc, const std::string& name, const std::string& where) {
    Handle a = open_attribute(loc, name, where);
    std::vector<std::int64_t> shape;
    auto v = read_string_object(a, true, shape, where + ": attribute '" + name + "'");
    if (v.size() != 1) fail(where, "attribute '" + name + "' should hold one string");
    return v[0];
}

std::vector<std::string> read_string_array_attribute(hid_t loc, const std::string& name, const std::string& where) {
    Handle a = open_attribute(loc, name, where);
    std::vector<std::int64_t> shape;
    return read_string_object(a, true, shape, where + ": attribute '" + name + "'");
}

double read_double_attribute(hid_t loc, const std::string& name, const std::string& where) {
    return read_scalar_attribute<double>(loc, name, H5T_NATIVE_DOUBLE, where);
}

std::int64_t read_int_attribute(hid_t loc, const std::string& name, const std::string& where) {
    return read_scalar_attribute<std::int64_t>(loc, name, H5T_NATIVE_INT64, where);
}

void write_string_attribute(hid_t loc, const std::string& name, const std::string& value) {
    replace_attribute(loc, name);
    Handle type = vlen_string_type();
    Handle space = scalar_space();
    Handle a(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* p = value.c_str();
    if (!a.valid() || H5Awrite(a, type, &p) < 0) throw InputError("cannot write attribute '" + name + "'");
}

void write_string_array_attribute(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
    replace_attribute(loc, name);
    Handle type = vlen_string_type();
    const hsize_t n = values.size();
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Handle a(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    std::vector<const char*> ptrs;
    for (const auto& s : values) ptrs.push_back(s.c_str());
    if (!a.valid() || (n && H5Awrite(a, type, ptrs.data()) < 0))
        throw InputError("cannot write attribute '" + name + "'");
}

void write_double_attribute(hid_t loc, const std::string& name, double value) {
    replace_attribute(loc, name);
    Handle space = scalar_space();
    Handle a(H5Acreate2(loc, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.valid() || H5Awrite(a, H5T_NATIVE_DOUBLE, &value) < 0)
        throw InputError("cannot write attribute '" + name + "'");
}

void write_int_attribute(hid_t loc, const std::string& name, std::int64_t value) {
    replace_attribute(loc, name);
    Handle space = scalar_space();
    Handle a(H5Acreate2(loc, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.valid() || H5Awrite(a, H5T_NATIVE_INT64, &value) < 0)
        throw InputError("cannot write attribute '" + name + "'");
}

void write_dataset(hid_t loc, const std::string& name, const std::vector<float>& v, const std::vector<hsize_t>& shape) {
    write_numeric(loc, name, v, shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT);
}
void write_dataset(hid_t loc, const std::string& name, const std::vector<double>& v, const std::vector<hsize_t>& shape) {
    write_numeric(loc, name, v, shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
}
void write_dataset(hid_t loc, const std::string& name, const std::vector<std::int64_t>& v,
                   const std::vector<hsize_t>& shape) {
    write_numeric(loc, name, v, shape, H5T_STD_I64LE, H5T_NATIVE_INT64);
}
void write_dataset(hid_t loc, const std::string& name, const std::vector<std::uint64_t>& v,
                   const std::vector<hsize_t>& shape) {
    write_numeric(loc, name, v, shape, H5T_STD_U64LE, H5T_NATIVE_UINT64);
}
void write_dataset(hid_t loc, const std::string& name, const std::vector<std::uint32_t>& v,
                   const std::vector<hsize_t>& shape) {
    write_numeric(loc, name, v, shape, H5T_STD_U32LE, H5T_NATIVE_UINT32);
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string t = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + std::to_string(shape[i]);
    return t + (shape.size() == 1 ? ",)" : ")");
}

} // namespace quantal::h5
