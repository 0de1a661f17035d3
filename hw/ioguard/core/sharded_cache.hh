// A bounded cache split into independently locked shards. Each shard is a
// small fully associative set of slots: no allocation on the DMA path, and
// a lookup compares a handful of keys.
//
// Lookups take no lock, because every DMA of the VM makes one or two: each
// shard has a sequence number that a writer (holding the shard's lock) makes
// odd before it changes a slot and even again after; a reader copies what
// it wants and tries again if the number was odd or changed meanwhile (a
// seqlock, as Linux's seqcount_t). The copy may race a writer and be torn;
// the retry throws such a copy away, which is why keys and values must be
// trivially copyable. (Copying through relaxed atomic words instead costs
// the hit path a quarter more: the word-sized stores stall the wider loads
// that copy the result on.) A reader that keeps meeting a writer waits for
// the shard's lock instead of spinning.
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
#include <type_traits>

namespace ioguard {

// What an erase or an eviction may want to know about the value it drops.
struct IgnoreDropped {
    template <typename Value> void operator()(const Value &) const {}
};

template <typename Key, typename Value, typename Hash, size_t Shards = 256,
          size_t Ways = 8>
class ShardedCache {
    static_assert(std::is_trivially_copyable_v<Key> &&
                  std::is_trivially_copyable_v<Value>);

public:
    uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

    std::optional<Value> lookup(const Key &key) const
    {
        std::optional<Value> found;
        lookup(key, found);
        return found;
    }

    // The same, into found. The result is filled in place on every path: a
    // copy of a copy just written costs a store-forwarding stall on the DMA
    // path (so does assigning the result of the lookup above).
    void lookup(const Key &key, std::optional<Value> &found) const
    {
        const Shard &s = shard(key);
        for (int attempt = 0; attempt < 4; attempt++) {
            const uint64_t before = s.sequence.load(std::memory_order_acquire);
            if (before & 1) {
                continue;           // a writer is in the middle of a change
            }
            find(s, key, found);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (s.sequence.load(std::memory_order_relaxed) == before) {
                return;
            }
        }
        std::lock_guard<std::mutex> guard(s.lock);
        find(s, key, found);
    }

    // Changes the entry of key, if there is one, with touch(Value &), and
    // returns it as it was before. Of several threads touching one entry,
    // each sees what the one before it left.
    template <typename Touch>
    std::optional<Value> update(const Key &key, Touch touch)
    {
        Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        for (Slot &slot : s.slots) {
            if (slot.valid.load(std::memory_order_relaxed) &&
                slot.key == key) {
                const Value before = slot.value;
                Value after = before;
                touch(after);
                Writing writing(s);
                slot.value = after;
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
            const bool valid = slot.valid.load(std::memory_order_relaxed);
            if (valid && slot.key == key) {
                target = &slot;
                break;
            }
            if (!valid && !target) {
                target = &slot;
            }
        }
        if (!target) {
            target = &s.slots[s.next_victim];     // round-robin replacement
            s.next_victim = (s.next_victim + 1) % Ways;
            evicted(target->value);
        }
        Writing writing(s);
        target->key = key;
        target->value = value;
        target->valid.store(true, std::memory_order_relaxed);
    }

    template <typename Erased = IgnoreDropped>
    void erase(const Key &key, Erased erased = {})
    {
        epoch_.fetch_add(1, std::memory_order_acq_rel);
        Shard &s = shard(key);
        std::lock_guard<std::mutex> guard(s.lock);
        for (Slot &slot : s.slots) {
            if (slot.valid.load(std::memory_order_relaxed) &&
                slot.key == key) {
                Writing writing(s);
                slot.valid.store(false, std::memory_order_relaxed);
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
                if (slot.valid.load(std::memory_order_relaxed) &&
                    pred(slot.key, slot.value)) {
                    Writing writing(s);
                    slot.valid.store(false, std::memory_order_relaxed);
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
                n += slot.valid.load(std::memory_order_relaxed);
            }
        }
        return n;
    }

    static constexpr size_t capacity() { return Shards * Ways; }

private:
    struct Slot {
        std::atomic<bool> valid{false};
        Key key{};
        Value value{};
    };
    struct Shard {
        mutable std::mutex lock;                // writers
        std::atomic<uint64_t> sequence{0};      // odd while a writer writes
        std::array<Slot, Ways> slots{};
        size_t next_victim = 0;
    };

    // A change to one shard's slots, made under its lock: the sequence is
    // odd from construction to destruction.
    class Writing {
    public:
        explicit Writing(Shard &s) : s_(s)
        {
            s_.sequence.store(s_.sequence.load(std::memory_order_relaxed) + 1,
                              std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_release);
        }
        ~Writing()
        {
            s_.sequence.store(s_.sequence.load(std::memory_order_relaxed) + 1,
                              std::memory_order_release);
        }
        Writing(const Writing &) = delete;
        Writing &operator=(const Writing &) = delete;

    private:
        Shard &s_;
    };

    static void find(const Shard &s, const Key &key,
                     std::optional<Value> &found)
    {
        found.reset();
        for (const Slot &slot : s.slots) {
            if (slot.valid.load(std::memory_order_relaxed) &&
                slot.key == key) {
                found.emplace(slot.value);
                return;
            }
        }
    }

    const Shard &shard(const Key &key) const
    {
        return shards_[Hash{}(key) % Shards];
    }
    Shard &shard(const Key &key) { return shards_[Hash{}(key) % Shards]; }

    std::array<Shard, Shards> shards_;
    std::atomic<uint64_t> epoch_{0};
};

} // namespace ioguard
