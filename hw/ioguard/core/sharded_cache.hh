// A bounded hash cache split into independently locked shards, so that
// lookups from many threads do not serialise on one lock.
//
// Invalidation is exact: every invalidation bumps an epoch before it erases.
// A filler reads the epoch before it reads guest tables and inserts only if
// no invalidation happened since, so a result computed from tables that an
// invalidation has already retired is never cached.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace ioguard {

template <typename Key, typename Value, typename Hash, size_t Shards = 64,
          size_t PerShard = 64>
class ShardedCache {
public:
    uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

    std::optional<Value> lookup(const Key &key) const
    {
        const Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        auto it = s.map.find(key);
        if (it == s.map.end()) {
            return std::nullopt;
        }
        return it->second;
    }

    // Inserts unless an invalidation happened after filled_at was read.
    void insert(const Key &key, const Value &value, uint64_t filled_at)
    {
        Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        if (epoch_.load(std::memory_order_acquire) != filled_at) {
            return;
        }
        if (s.map.size() >= PerShard && !s.map.count(key)) {
            s.map.erase(s.map.begin());
        }
        s.map.insert_or_assign(key, value);
    }

    void erase(const Key &key)
    {
        epoch_.fetch_add(1, std::memory_order_acq_rel);
        Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        s.map.erase(key);
    }

    template <typename Predicate> void erase_if(Predicate pred)
    {
        epoch_.fetch_add(1, std::memory_order_acq_rel);
        for (Shard &s : shards_) {
            std::lock_guard<std::mutex> guard(s.lock);
            for (auto it = s.map.begin(); it != s.map.end();) {
                it = pred(it->first, it->second) ? s.map.erase(it)
                                                 : std::next(it);
            }
        }
    }

    void clear()
    {
        erase_if([](const Key &, const Value &) { return true; });
    }

    size_t size() const
    {
        size_t n = 0;
        for (const Shard &s : shards_) {
            std::lock_guard<std::mutex> guard(s.lock);
            n += s.map.size();
        }
        return n;
    }

private:
    struct Shard {
        mutable std::mutex lock;
        std::unordered_map<Key, Value, Hash> map;
    };

    const Shard &shard(const Key &key) const
    {
        return shards_[Hash{}(key) % Shards];
    }
    Shard &shard(const Key &key) { return shards_[Hash{}(key) % Shards]; }

    std::array<Shard, Shards> shards_;
    std::atomic<uint64_t> epoch_{0};
};

} // namespace ioguard
