#include "io/sealed_file.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

#include "sim/errors.hpp"

namespace quantal {

namespace {

constexpr std::size_t magic_bytes = 8, header_bytes = magic_bytes + 4 + 8, digest_bytes = 32;

using Digest = std::array<unsigned char, digest_bytes>;

class Sha256 {
public:
    Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("libcrypto: cannot start a SHA-256");
    }
    void add(const void* data, std::size_t n) {
        if (EVP_DigestUpdate(ctx_.get(), data, n) != 1) throw std::runtime_error("libcrypto: SHA-256 update failed");
    }
    Digest digest() {
        Digest d{};
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(ctx_.get(), d.data(), &n) != 1 || n != d.size())
            throw std::runtime_error("libcrypto: SHA-256 failed");
        return d;
    }

private:
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

void put_le(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(char((v >> (8 * i)) & 0xFF));
}
std::uint64_t get_le(const std::string& in, std::size_t at, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t(static_cast<unsigned char>(in[at + std::size_t(i)])) << (8 * i);
    return v;
}

std::string system_reason() { return std::strerror(errno); }

// Writes all of `data` to fd; false with errno set on failure.
bool write_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        data += w, n -= std::size_t(w);
    }
    return true;
}

} // namespace

std::string sha256_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path + ": cannot be read to compute its SHA-256 (" + system_reason() + ")");
    Sha256 sha;
    std::vector<char> block(std::size_t(1) << 20);
    while (in) {
        in.read(block.data(), std::streamsize(block.size()));
        sha.add(block.data(), std::size_t(in.gcount()));
    }
    if (in.bad()) throw InputError(path + ": read error while computing its SHA-256");
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    for (unsigned char b : sha.digest()) text += hex[b >> 4], text += hex[b & 15];
    return text;
}

void write_sealed(const std::string& path, const SealedKind& kind, const std::string& payload) {
    std::string header(kind.magic.data(), magic_bytes);
    put_le(header, kind.version, 4);
    put_le(header, payload.size(), 8);
    Sha256 sha;
    sha.add(header.data(), header.size());
    sha.add(payload.data(), payload.size());
    const auto d = sha.digest();

    // Atomic replacement: the old file stays until the new one is complete on disk.
    const std::string tmp = path + ".tmp";
    auto fail = [&](const std::string& what) {
        const std::string reason = system_reason();
        ::unlink(tmp.c_str());
        throw InputError(std::string(kind.what) + " " + path + ": cannot " + what + " (" + reason + ")");
    };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("create " + tmp);
    if (!write_all(fd, header.data(), header.size()) || !write_all(fd, payload.data(), payload.size()) ||
        !write_all(fd, reinterpret_cast<const char*>(d.data()), d.size()) || ::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        fail("write " + tmp);
    }
    if (::close(fd) != 0) fail("write " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename " + tmp + " to it");
    // The rename itself is durable once the directory is synced.
    const auto dir = std::filesystem::path(path).parent_path();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::string read_sealed(const std::string& path, const SealedKind& kind) {
    const std::string where = std::string(kind.what) + " " + path;
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw InputError(where + ": cannot be read (" + system_reason() + ")");
    const std::streamoff size = in.tellg();
    if (size < 0) throw InputError(where + ": cannot be read (not a regular file?)");
    std::string bytes(std::size_t(size), '\0');
    in.seekg(0);
    if (!in.read(bytes.data(), size)) throw InputError(where + ": read error");
    if (bytes.size() < magic_bytes || bytes.compare(0, magic_bytes, kind.magic.data(), magic_bytes) != 0)
        throw InputError(where + ": is not a quantal " + kind.what);
    if (bytes.size() < header_bytes + digest_bytes)
        throw InputError(where + ": is truncated (" + std::to_string(bytes.size()) + " bytes)");
    const std::uint64_t length = get_le(bytes, magic_bytes + 4, 8);
    if (length != bytes.size() - header_bytes - digest_bytes)
        throw InputError(where + ": is truncated or damaged (" + std::to_string(bytes.size()) +
                         " bytes, its header says " + std::to_string(length + header_bytes + digest_bytes) + ")");
    Sha256 sha;
    sha.add(bytes.data(), bytes.size() - digest_bytes);
    const auto d = sha.digest();
    if (bytes.compare(bytes.size() - digest_bytes, digest_bytes, reinterpret_cast<const char*>(d.data()), d.size()) !=
        0)
        throw InputError(where + ": is damaged (its SHA-256 does not match its contents)");
    const auto version = std::uint32_t(get_le(bytes, magic_bytes, 4));
    if (version != kind.version)
        throw InputError(where + ": has format version " + std::to_string(version) + ", this quantal reads version " +
                         std::to_string(kind.version));
    return bytes.substr(header_bytes, length);
}

} // namespace quantal
