// The byte format of saved engine state (snapshots and migration): little
// endian 64-bit words, read back by a reader that refuses anything short
// or out of range instead of trusting it.
#pragma once

#include <cstdint>
#include <vector>

namespace ioguard {

class StateWriter {
public:
    void put(uint64_t v)
    {
        for (int i = 0; i < 8; i++) {
            bytes.push_back(uint8_t(v >> (8 * i)));
        }
    }
    std::vector<uint8_t> bytes;
};

class StateReader {
public:
    StateReader(const uint8_t *data, size_t size) : data_(data), size_(size)
    {
    }
    // The next word, or false (and every later get false) past the end.
    bool get(uint64_t &v)
    {
        if (!ok_ || size_ - pos_ < 8) {
            ok_ = false;
            return false;
        }
        v = 0;
        for (int i = 0; i < 8; i++) {
            v |= uint64_t(data_[pos_ + i]) << (8 * i);
        }
        pos_ += 8;
        return true;
    }
    // A count of items, each at least min_words (> 0) long: no more than
    // max, nor than what is left can hold.
    bool get_count(uint64_t &n, uint64_t min_words, uint64_t max)
    {
        return get(n) && n <= max && n <= (size_ - pos_) / 8 / min_words;
    }
    bool done() const { return ok_ && pos_ == size_; }

private:
    const uint8_t *data_;
    size_t size_;
    size_t pos_ = 0;
    bool ok_ = true;
};

} // namespace ioguard
