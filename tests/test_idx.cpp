// IDX reader: gzip and plain files, ranges, and clear errors for wrong or truncated files.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "io/idx.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("quantal_test_idx_" + name)).string();
}

std::vector<unsigned char> idx_bytes(std::uint32_t magic, std::vector<std::uint32_t> dims, std::size_t data_bytes) {
    std::vector<unsigned char> b;
    auto put = [&](std::uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
    };
    put(magic);
    for (auto d : dims) put(d);
    for (std::size_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<unsigned char>(i * 7 % 256));
    return b;
}

void write_gz(const std::string& path, const std::vector<unsigned char>& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), unsigned(bytes.size()));
    gzclose(f);
}

void write_plain(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

} // namespace

TEST_CASE("IDX images and labels, gzip or plain, with offset and limit", "[idx]") {
    const auto images = temp_path("images.gz"), plain = temp_path("images"), labels = temp_path("labels.gz");
    write_gz(images, idx_bytes(0x803, {5, 3, 2}, 5 * 6));
    write_plain(plain, idx_bytes(0x803, {5, 3, 2}, 5 * 6));
    write_gz(labels, idx_bytes(0x801, {5}, 5));

    const auto all = read_idx_images(images);
    CHECK(all.count == 5);
    CHECK(all.rows == 3);
    CHECK(all.cols == 2);
    REQUIRE(all.pixels.size() == 30);
    CHECK(all.image(1)[0] == 6 * 7 % 256);
    CHECK(read_idx_images(plain).pixels == all.pixels);

    const auto some = read_idx_images(images, 2, 2);
    CHECK(some.count == 2);
    CHECK(std::vector<std::uint8_t>(some.image(0).begin(), some.image(0).end()) ==
          std::vector<std::uint8_t>(all.image(2).begin(), all.image(2).end()));
    CHECK(read_idx_images(images, 3, 100).count == 2); // limit clipped to the file

    const auto l = read_idx_labels(labels, 1);
    CHECK(l == std::vector<std::uint8_t>{7, 14, 21, 28});
    for (const auto& p : {images, plain, labels}) std::filesystem::remove(p);
}

TEST_CASE("IDX errors name the file and what is wrong", "[idx]") {
    const auto path = temp_path("bad.gz");
    SECTION("missing") { REQUIRE_THROWS_WITH(read_idx_images(temp_path("nope.gz")), Contains("nope.gz") && Contains("cannot be opened")); }
    SECTION("labels read as images") {
        write_gz(path, idx_bytes(0x801, {5}, 5));
        REQUIRE_THROWS_WITH(read_idx_images(path), Contains(path) && Contains("magic number 0x00000801"));
    }
    SECTION("truncated data") {
        write_gz(path, idx_bytes(0x803, {5, 3, 2}, 20));
        REQUIRE_THROWS_AS(read_idx_images(path), InputError);
        REQUIRE_THROWS_WITH(read_idx_images(path), Contains(path) && Contains("truncated"));
    }
    SECTION("offset past the end") {
        write_gz(path, idx_bytes(0x801, {5}, 5));
        REQUIRE_THROWS_WITH(read_idx_labels(path, 5), Contains("offset 5"));
    }
    std::filesystem::remove(path);
}

TEST_CASE("the Debian Fashion-MNIST test set reads as 10000 images of 28 x 28", "[idx]") {
    const std::string dir = "/usr/share/datasets/fashion-mnist/";
    // A prerequisite, not an option: scripts/install-deps.sh installs dataset-fashion-mnist, and a
    // missing data set must fail here rather than pass without a single assertion.
    INFO("Fashion-MNIST missing from " << dir << ": run scripts/install-deps.sh (apt package dataset-fashion-mnist)");
    REQUIRE(std::filesystem::exists(dir + "t10k-images-idx3-ubyte.gz"));
    REQUIRE(std::filesystem::exists(dir + "t10k-labels-idx1-ubyte.gz"));
    const auto images = read_idx_images(dir + "t10k-images-idx3-ubyte.gz", 9990);
    CHECK(images.count == 10);
    CHECK(images.rows == 28);
    CHECK(images.cols == 28);
    const auto labels = read_idx_labels(dir + "t10k-labels-idx1-ubyte.gz");
    CHECK(labels.size() == 10000);
    CHECK(labels[0] == 9); // the first test image is an ankle boot
}

TEST_CASE("an IDX header claiming more images than the file holds is truncated, not allocated", "[idx]") {
    // 10 x 65535 x 65535 claims 43 GB: the pixels are read as they arrive, so a short file fails
    // after its own few bytes instead of on allocating the claim (issue 10).
    const auto images = temp_path("huge_claim.gz"), labels = temp_path("huge_labels.gz");
    write_gz(images, idx_bytes(0x803, {10, 65535, 65535}, 1000));
    write_gz(labels, idx_bytes(0x801, {0xFFFFFFFFu}, 1000));
    CHECK_THROWS_WITH(read_idx_images(images), Contains(images) && Contains("truncated"));
    CHECK_THROWS_WITH(read_idx_images(images, 3, 2), Contains(images) && Contains("truncated"));
    CHECK_THROWS_WITH(read_idx_labels(labels), Contains(labels) && Contains("truncated"));
    CHECK(read_idx_labels(labels, 0, 1000).size() == 1000); // what is there can be read
    for (const auto& p : {images, labels}) std::filesystem::remove(p);
}
