#pragma once
// Files that must never be half-written or silently damaged (checkpoints, a sweep's state):
//   magic (8 bytes) | format version (u32, little-endian) | payload length (u64) | payload |
//   SHA-256 of everything before it (32 bytes).
// Written atomically (FILE.tmp, fsync, rename, fsync of the directory), so a crash, `kill -9` or
// a full disk leaves the previous file intact; read back only when every byte is as written.
#include <array>
#include <cstdint>
#include <string>

namespace quantal {

struct SealedKind {
    std::array<char, 8> magic;  // identifies the kind of file
    std::uint32_t version;      // of the payload's layout: another version is refused
    const char* what;           // "checkpoint", "sweep state": names the file in messages
};

// InputError naming `what` and the path, with the system's reason, if it cannot be written.
void write_sealed(const std::string& path, const SealedKind& kind, const std::string& payload);
// The payload. InputError naming the file for one that is missing, of another kind or version,
// truncated or damaged (any byte changed).
std::string read_sealed(const std::string& path, const SealedKind& kind);

// The SHA-256 of a file's bytes, as 64 lowercase hex digits (OpenSSL's libcrypto).
std::string sha256_file(const std::string& path);

} // namespace quantal
