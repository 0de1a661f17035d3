// The cache behind the IOTLB, the device table cache and the page directory
// cache: lookups take no lock, so a lookup that races an insert or an erase
// must see the entry whole or not at all.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../../hw/ioguard/core/sharded_cache.hh"

namespace {

struct Hash {
    size_t operator()(uint64_t k) const { return k; }
};

// Words that a writer always sets alike: a torn copy would differ. Many
// of them, so that a copy takes long enough to be caught in the middle.
struct Quad {
    uint64_t w[64];
};

Quad quad(uint64_t n)
{
    Quad q;
    for (uint64_t &w : q.w) {
        w = n;
    }
    return q;
}

bool torn(const Quad &q)
{
    for (uint64_t w : q.w) {
        if (w != q.w[0]) {
            return true;
        }
    }
    return false;
}

using Cache = ioguard::ShardedCache<uint64_t, Quad, Hash, 1, 2>;

TEST(ShardedCacheTest, LookupFindsWhatWasInserted)
{
    Cache c;
    EXPECT_FALSE(c.lookup(7));
    c.insert(7, quad(4), c.epoch());
    const auto q = c.lookup(7);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->w[63], 4u);
    c.erase(7);
    EXPECT_FALSE(c.lookup(7));
}

TEST(ShardedCacheTest, InsertAfterAnInvalidationIsDropped)
{
    Cache c;
    const uint64_t filled_at = c.epoch();
    c.erase(8);
    c.insert(7, quad(1), filled_at);
    EXPECT_FALSE(c.lookup(7));
}

// One shard of two ways, three keys: the writer keeps replacing and erasing
// the entries the reader looks up.
TEST(ShardedCacheTest, ARacingLookupNeverSeesATornEntry)
{
    Cache c;
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (uint64_t n = 1; !stop.load(std::memory_order_relaxed); n++) {
            c.insert(n % 3, quad(n), c.epoch());
            if (n % 7 == 0) {
                c.erase((n / 7) % 3);
            }
        }
    });
    uint64_t torn_copies = 0, found = 0;
    for (int i = 0; i < 1000000; i++) {
        if (const auto q = c.lookup(i % 3)) {
            found++;
            torn_copies += torn(*q);
        }
    }
    stop = true;
    writer.join();
    EXPECT_GT(found, 0u);
    EXPECT_EQ(torn_copies, 0u);
}

} // namespace
