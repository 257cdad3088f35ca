#include "io/npy.hpp"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

#include "io/byte_stream.hpp"

namespace quantal {

using detail::ByteStream;
using detail::fail;
using detail::range_count;

namespace {

struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::uint64_t> shape;
};

// The header is a Python dict literal of str keys and str / bool / tuple-of-int values.
class HeaderParser {
public:
    HeaderParser(const std::string& path, std::string text) : path_(path), text_(std::move(text)) {}

    Header parse() {
        Header h;
        bool has_descr = false, has_order = false, has_shape = false;
        expect('{');
        while (!take('}')) {
            const std::string key = string_literal();
            expect(':');
            if (key == "descr") h.descr = string_literal(), has_descr = true;
            else if (key == "fortran_order") h.fortran_order = boolean(), has_order = true;
            else if (key == "shape") h.shape = tuple(), has_shape = true;
            else bad("unknown key '" + key + "'");
            if (!take(',')) {
                expect('}');
                break;
            }
        }
        if (!has_descr || !has_order || !has_shape) bad("it lacks 'descr', 'fortran_order' or 'shape'");
        return h;
    }

private:
    [[noreturn]] void bad(const std::string& why) { fail(path_, "the .npy header is malformed: " + why); }
    void skip_space() {
        while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
    }
    bool take(char c) {
        skip_space();
        if (at_ < text_.size() && text_[at_] == c) return ++at_, true;
        return false;
    }
    void expect(char c) {
        if (!take(c)) bad(std::string("expected '") + c + "' at character " + std::to_string(at_));
    }
    std::string string_literal() {
        skip_space();
        if (at_ >= text_.size() || (text_[at_] != '\'' && text_[at_] != '"')) bad("expected a string at character " + std::to_string(at_));
        const char quote = text_[at_++];
        const auto end = text_.find(quote, at_);
        if (end == std::string::npos) bad("a string is not closed");
        std::string s = text_.substr(at_, end - at_);
        at_ = end + 1;
        return s;
    }
    bool boolean() {
        skip_space();
        for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}})
            if (text_.compare(at_, std::strlen(word), word) == 0) return at_ += std::strlen(word), value;
        bad("'fortran_order' is neither True nor False");
    }
    std::vector<std::uint64_t> tuple() {
        expect('(');
        std::vector<std::uint64_t> dims;
        while (!take(')')) {
            skip_space();
            std::uint64_t d = 0;
            std::size_t digits = 0;
            for (; at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_])); ++at_, ++digits) {
                if (d > (UINT64_MAX - 9) / 10) bad("a dimension is too large");
                d = d * 10 + std::uint64_t(text_[at_] - '0');
            }
            if (!digits) bad("'shape' holds something other than whole numbers");
            dims.push_back(d);
            if (!take(',')) {
                expect(')');
                break;
            }
        }
        return dims;
    }

    const std::string& path_;
    std::string text_;
    std::size_t at_ = 0;
};

Header read_header(ByteStream& in, const std::string& path) {
    unsigned char magic[8];
    in.read(magic, sizeof magic, "the .npy magic");
    if (std::memcmp(magic, "\x93NUMPY", 6) != 0) fail(path, "is not a .npy file (its first bytes are not \\x93NUMPY)");
    const int major = magic[6];
    if (major < 1 || major > 3) fail(path, ".npy format version " + std::to_string(major) + " is not 1, 2 or 3");
    unsigned char size[4] = {};
    in.read(size, major == 1 ? 2 : 4, "the .npy header length");
    const std::uint32_t length = std::uint32_t(size[0]) | std::uint32_t(size[1]) << 8 | std::uint32_t(size[2]) << 16 |
                                 std::uint32_t(size[3]) << 24;
    if (length > (1u << 20)) fail(path, "the .npy header claims " + std::to_string(length) + " bytes (not plausible)");
    std::string text(length, '\0');
    in.read(text.data(), length, "the .npy header");
    Header h = HeaderParser(path, text).parse();
    if (h.fortran_order)
        fail(path, "is stored in Fortran order; save it in C order (numpy.ascontiguousarray) before using it");
    if (h.descr.size() >= 2 && h.descr[0] == '>' && h.descr.substr(1) != "u1" && h.descr.substr(1) != "i1")
        fail(path, "dtype '" + h.descr + "' is big-endian; save it little-endian (array.astype(array.dtype.newbyteorder('<')))");
    return h;
}

std::string shape_text(const std::vector<std::uint64_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

// The data are little-endian and read as they are: quantal builds for little-endian hosts only.
static_assert(std::endian::native == std::endian::little);

// Skips `skip_values` values, then reads `values` of them into `out` as doubles, in blocks.
template <class T>
void read_values(ByteStream& in, std::vector<double>& out, std::uint64_t values, std::uint64_t skip_values,
                 const std::string& what) {
    in.skip(skip_values * sizeof(T), what);
    constexpr std::uint64_t block = std::uint64_t(1) << 20;
    std::vector<T> buffer;
    out.clear();
    while (out.size() < values) {
        const auto n = std::size_t(std::min<std::uint64_t>(block, values - out.size()));
        buffer.resize(n);
        in.read(buffer.data(), n * sizeof(T), what);
        out.insert(out.end(), buffer.begin(), buffer.end());
    }
}

} // namespace

std::size_t NpySamples::sample_size() const {
    return std::size_t(std::accumulate(shape.begin(), shape.end(), std::uint64_t{1}, std::multiplies<>()));
}

NpySamples read_npy_samples(const std::string& path, std::uint64_t offset, std::uint64_t limit, int min_ndim,
                            int max_ndim) {
    ByteStream in(path);
    const Header h = read_header(in, path);
    if (int(h.shape.size()) < min_ndim || int(h.shape.size()) > max_ndim)
        fail(path, "shape " + shape_text(h.shape) + " has " + std::to_string(h.shape.size()) + " dimensions, expected " +
                       (min_ndim == max_ndim ? std::to_string(min_ndim) : std::to_string(min_ndim) + " to " + std::to_string(max_ndim)) +
                       " (samples first: (N, H, W) or (N, C, H, W))");
    NpySamples out;
    out.shape.assign(h.shape.begin() + 1, h.shape.end());
    for (auto d : out.shape)
        if (d == 0 || d > (1u << 24)) fail(path, "shape " + shape_text(h.shape) + " has an implausible dimension");
    const std::uint64_t per_sample = out.sample_size();
    if (per_sample > (std::uint64_t(1) << 32)) fail(path, "shape " + shape_text(h.shape) + ": samples are implausibly large");
    out.count = range_count(path, h.shape[0], offset, limit, "samples");
    const std::string what = "the data (samples " + std::to_string(offset) + ".." + std::to_string(offset + out.count) +
                             " of shape " + shape_text(h.shape) + ")";
    const std::string d = h.descr.size() == 3 && (h.descr[0] == '<' || h.descr[0] == '|' || h.descr[0] == '=')
                              ? h.descr.substr(1) : h.descr;
    if (d == "u1") read_values<std::uint8_t>(in, out.values, out.count * per_sample, offset * per_sample, what), out.dtype = "uint8";
    else if (d == "f4") read_values<float>(in, out.values, out.count * per_sample, offset * per_sample, what), out.dtype = "float32";
    else if (d == "f8") read_values<double>(in, out.values, out.count * per_sample, offset * per_sample, what), out.dtype = "float64";
    else fail(path, "dtype '" + h.descr + "' is not one of uint8 ('|u1'), float32 ('<f4'), float64 ('<f8')");
    for (std::size_t i = 0; i < out.values.size(); ++i)
        if (!std::isfinite(out.values[i]))
            fail(path, "sample " + std::to_string(offset + i / per_sample) + " has a value that is not finite");
    return out;
}

std::vector<std::uint64_t> read_npy_labels(const std::string& path, std::uint64_t offset, std::uint64_t limit) {
    ByteStream in(path);
    const Header h = read_header(in, path);
    if (h.shape.size() != 1) fail(path, "labels of shape " + shape_text(h.shape) + ": expected a 1-d array (N,)");
    const auto count = range_count(path, h.shape[0], offset, limit, "labels");
    const std::string d = h.descr.size() == 3 && (h.descr[0] == '<' || h.descr[0] == '|' || h.descr[0] == '=')
                              ? h.descr.substr(1) : h.descr;
    std::vector<double> v;
    const std::string what = "the label data";
    if (d == "u1") read_values<std::uint8_t>(in, v, count, offset, what);
    else if (d == "i1") read_values<std::int8_t>(in, v, count, offset, what);
    else if (d == "u2") read_values<std::uint16_t>(in, v, count, offset, what);
    else if (d == "i2") read_values<std::int16_t>(in, v, count, offset, what);
    else if (d == "u4") read_values<std::uint32_t>(in, v, count, offset, what);
    else if (d == "i4") read_values<std::int32_t>(in, v, count, offset, what);
    else if (d == "i8") read_values<std::int64_t>(in, v, count, offset, what);
    else if (d == "u8") read_values<std::uint64_t>(in, v, count, offset, what);
    else fail(path, "labels of dtype '" + h.descr + "': expected an integer dtype");
    std::vector<std::uint64_t> labels(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] < 0) fail(path, "label " + std::to_string(std::int64_t(v[i])) + " at index " + std::to_string(offset + i) + " is negative");
        labels[i] = std::uint64_t(v[i]);
    }
    return labels;
}

} // namespace quantal
