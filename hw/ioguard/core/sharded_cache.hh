// A bounded cache split into independently locked shards, so that lookups
// from many threads do not serialise on one lock. Each shard is a small
// fully associative set of slots: no allocation on the DMA path, and a
// lookup compares a handful of keys.
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

namespace ioguard {

// What an erase or an eviction may want to know about the value it drops.
struct IgnoreDropped {
    template <typename Value> void operator()(const Value &) const {}
};

template <typename Key, typename Value, typename Hash, size_t Shards = 256,
          size_t Ways = 8>
class ShardedCache {
public:
    uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

    std::optional<Value> lookup(const Key &key) const
    {
        const Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        for (const Slot &slot : s.slots) {
            if (slot.valid && slot.key == key) {
                return slot.value;
            }
        }
        return std::nullopt;
    }

    // A lookup that may update the entry it finds (touch(Value &)); returns
    // the entry as it was before.
    template <typename Touch>
    std::optional<Value> lookup_and_touch(const Key &key, Touch touch)
    {
        Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        for (Slot &slot : s.slots) {
            if (slot.valid && slot.key == key) {
                const Value before = slot.value;
                touch(slot.value);
                return before;
            }
        }
        return std::nullopt;
    }

    // Inserts unless an invalidation happened after filled_at was read.
    // evicted(const Value &) sees an entry replacement pushed out.
    template <typename Evicted = IgnoreDropped>
    void insert(const Key &key, const Value &value, uint64_t filled_at,
                Evicted evicted = {})
    {
        Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        if (epoch_.load(std::memory_order_acquire) != filled_at) {
            return;
        }
        Slot *target = nullptr;
        for (Slot &slot : s.slots) {
            if (slot.valid && slot.key == key) {
                target = &slot;
                break;
            }
            if (!slot.valid && !target) {
                target = &slot;
            }
        }
        if (!target) {
            target = &s.slots[s.next_victim];     // round-robin replacement
            s.next_victim = (s.next_victim + 1) % Ways;
            evicted(target->value);
        }
        *target = Slot{true, key, value};
    }

    template <typename Erased = IgnoreDropped>
    void erase(const Key &key, Erased erased = {})
    {
        epoch_.fetch_add(1, std::memory_order_acq_rel);
        Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        for (Slot &slot : s.slots) {
            if (slot.valid && slot.key == key) {
                slot.valid = false;
                erased(slot.value);
            }
        }
    }

    template <typename Predicate> void erase_if(Predicate pred)
    {
        epoch_.fetch_add(1, std::memory_order_acq_rel);
        for (Shard &s : shards_) {
            std::lock_guard<std::mutex> guard(s.lock);
            for (Slot &slot : s.slots) {
                if (slot.valid && pred(slot.key, slot.value)) {
                    slot.valid = false;
                }
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
            for (const Slot &slot : s.slots) {
                n += slot.valid;
            }
        }
        return n;
    }

    static constexpr size_t capacity() { return Shards * Ways; }

private:
    struct Slot {
        bool valid = false;
        Key key{};
        Value value{};
    };
    struct Shard {
        mutable std::mutex lock;
        std::array<Slot, Ways> slots{};
        size_t next_victim = 0;
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
