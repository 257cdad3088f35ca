#pragma once
// Small RAII layer over the HDF5 C API for the model and NIR readers/writers. Every reading
// function takes `where` ("model.nir: node 'fc1'") and throws InputError("<where>: <what>"),
// so a user sees one line naming the file and the object; HDF5's own error stack is silenced.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace quantal::h5 {

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Handle {
public:
    using Closer = herr_t (*)(hid_t);
    Handle() = default;
    Handle(hid_t id, Closer close) : id_(id), close_(close) {}
    Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            reset();
            id_ = o.id_;
            close_ = o.close_;
            o.id_ = H5I_INVALID_HID;
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }
    hid_t get() const { return id_; }
    operator hid_t() const { return id_; }
    bool valid() const { return id_ >= 0; }

private:
    void reset() {
        if (id_ >= 0 && close_) close_(id_);
        id_ = H5I_INVALID_HID;
    }
    hid_t id_ = H5I_INVALID_HID;
    Closer close_ = nullptr;
};

// Turns off HDF5's automatic error printing (errors become exceptions with context instead).
void silence_errors();

Handle open_file(const std::string& path);   // read-only; InputError if missing or not HDF5
Handle create_file(const std::string& path); // truncates; InputError if it cannot be created

bool has_link(hid_t loc, const std::string& name);
bool is_group(hid_t loc, const std::string& name);
Handle open_group(hid_t loc, const std::string& name, const std::string& where);
Handle open_dataset(hid_t loc, const std::string& name, const std::string& where);
Handle create_group(hid_t loc, const std::string& name, const std::string& where);
// Member names in creation order when the file tracks it, else alphabetical.
std::vector<std::string> member_names(hid_t group, const std::string& where);

// Numeric arrays of any integer or float type, converted by HDF5; shape as stored.
struct Array {
    std::vector<double> values;
    std::vector<std::int64_t> shape; // empty for a scalar
};
Array read_array(hid_t loc, const std::string& name, const std::string& where);
std::vector<std::int64_t> read_ints(hid_t loc, const std::string& name, const std::string& where);
std::vector<std::uint64_t> read_uint64s(hid_t loc, const std::string& name, const std::string& where);
bool is_string_dataset(hid_t loc, const std::string& name);
// Scalar or 1-element string dataset, variable or fixed length.
std::string read_string(hid_t loc, const std::string& name, const std::string& where);
// String dataset of any shape (NIR edges: (E, 2)); shape returned through `shape`.
std::vector<std::string> read_strings(hid_t loc, const std::string& name, std::vector<std::int64_t>& shape,
                                      const std::string& where);

// InputError unless dataset `ds` stores the bytes its extent claims (contiguous: all of them;
// chunked: every chunk the extent spans, and enough bytes for deflate's largest ratio). Call before
// allocating for, or streaming through, a dataset whose header may be corrupt.
void check_stored(hid_t ds, const std::string& name, const std::string& where);

// Before a dataset is read into memory: `bytes` (what it takes once read) must fit in
// `available` (MemAvailable of /proc/meminfo by default). InputError naming the dataset, with both
// sizes: a file within its stored bytes may still claim more than the machine has (deflate packs
// zeros 1032:1, so 30 MB on disk can claim 32 GB).
// The memory the system can give without swapping, in bytes (infinity if it cannot be told).
double available_memory();
void check_memory(double bytes, const std::string& name, const std::string& where, double available = available_memory());

bool has_attribute(hid_t loc, const std::string& name);
// Every attribute name of an object, in name order.
std::vector<std::string> attribute_names(hid_t loc, const std::string& where);
std::string read_string_attribute(hid_t loc, const std::string& name, const std::string& where);
std::vector<std::string> read_string_array_attribute(hid_t loc, const std::string& name, const std::string& where);
double read_double_attribute(hid_t loc, const std::string& name, const std::string& where);
std::int64_t read_int_attribute(hid_t loc, const std::string& name, const std::string& where);

void write_string_attribute(hid_t loc, const std::string& name, const std::string& value);
void write_string_array_attribute(hid_t loc, const std::string& name, const std::vector<std::string>& values);
void write_double_attribute(hid_t loc, const std::string& name, double value);
void write_int_attribute(hid_t loc, const std::string& name, std::int64_t value);

void write_dataset(hid_t loc, const std::string& name, const std::vector<float>& v, const std::vector<hsize_t>& shape);
void write_dataset(hid_t loc, const std::string& name, const std::vector<double>& v, const std::vector<hsize_t>& shape);
void write_dataset(hid_t loc, const std::string& name, const std::vector<std::int64_t>& v, const std::vector<hsize_t>& shape);
void write_dataset(hid_t loc, const std::string& name, const std::vector<std::uint64_t>& v, const std::vector<hsize_t>& shape);
void write_dataset(hid_t loc, const std::string& name, const std::vector<std::uint32_t>& v, const std::vector<hsize_t>& shape);

std::string shape_text(const std::vector<std::int64_t>& shape);

} // namespace quantal::h5
