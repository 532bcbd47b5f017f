// SHA-256 (FIPS 180-4), small and dependency-free, for the embed_worker
// example's `sha256` task kind. Pure functions: safe to call from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace embed {

// The 32-byte digest of `data`.
std::array<std::uint8_t, 32> sha256(std::string_view data);

// The digest as 64 lowercase hex digits, e.g. sha256_hex("abc") ==
// "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".
std::string sha256_hex(std::string_view data);

}  // namespace embed
