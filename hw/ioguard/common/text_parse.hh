// Small parsers shared by the engine's text formats (STREAMING rules, fault
// rules): they take exactly the text they are given and report what they
// could not read through the caller, who names the bad part.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ioguard {

// A hexadecimal number of at most max_digits digits ("0x" allowed), all of s.
inline bool parse_hex(std::string_view s, unsigned max_digits, uint64_t &out)
{
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s.remove_prefix(2);
    }
    if (s.empty() || s.size() > max_digits) {
        return false;
    }
    out = 0;
    for (char c : s) {
        unsigned digit;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
        } else {
            return false;
        }
        out = out << 4 | digit;
    }
    return true;
}

// A decimal number, all of s, that fits in 64 bits.
inline bool parse_decimal(std::string_view s, uint64_t &out)
{
    if (s.empty() || s.size() > 20) {
        return false;
    }
    out = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        const uint64_t digit = uint64_t(c - '0');
        if (out > (UINT64_MAX - digit) / 10) {
            return false;
        }
        out = out * 10 + digit;
    }
    return true;
}

// "bb:dd.f" in hex, as lspci prints it, into a requester (device) ID.
inline bool parse_requester(std::string_view s, uint16_t &devid)
{
    uint64_t bus, dev, fn;
    if (s.size() != 7 || s[2] != ':' || s[5] != '.' ||
        !parse_hex(s.substr(0, 2), 2, bus) ||
        !parse_hex(s.substr(3, 2), 2, dev) || dev > 0x1f ||
        !parse_hex(s.substr(6, 1), 1, fn) || fn > 7) {
        return false;
    }
    devid = uint16_t(bus << 8 | dev << 3 | fn);
    return true;
}

// before + part + after (appended one by one: GCC 12 warns wrongly about
// chains of std::string operator+).
inline std::string message(const char *before, std::string_view part,
                           const char *after)
{
    std::string m(before);
    m.append(part);
    m.append(after);
    return m;
}

} // namespace ioguard
