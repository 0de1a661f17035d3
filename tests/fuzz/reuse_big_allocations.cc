// Each fuzz run creates and frees an IOMMU, whose caches make it a 400 KiB
// object. Under AddressSanitizer every allocation that big is a fresh mmap,
// and faulting its pages in was most of the fuzzing time (a few thousand
// runs a second instead of tens of thousands). These global operators keep
// the last freed big block for the next allocation of the same size; every
// other allocation goes straight to malloc/free, which ASan still checks.
#include <malloc.h>

#include <cstdlib>
#include <new>

namespace {

constexpr size_t kBig = 64 << 10;
// A run frees a few big blocks (the IOMMU, its per-bus statistics): keep
// one of each size.
struct Spare {
    void *block = nullptr;
    size_t size = 0;
};
Spare spares[8];

void *allocate(size_t n)
{
    if (n >= kBig) {
        for (Spare &s : spares) {
            if (s.block && s.size == n) {
                void *p = s.block;
                s.block = nullptr;
                return p;
            }
        }
    }
    return malloc(n ? n : 1);
}

// Sizes as malloc_usable_size() reports them (ASan: the size asked for),
// so that sized and unsized deletes agree.
void release(void *p)
{
    const size_t n = p ? malloc_usable_size(p) : 0;
    if (n >= kBig) {
        for (Spare &s : spares) {
            if (!s.block) {
                s = Spare{p, n};
                return;
            }
        }
    }
    free(p);
}

} // namespace

void *operator new(size_t n)
{
    void *p = allocate(n);
    if (!p) {
        abort();    // the engine is built without exceptions
    }
    return p;
}
void *operator new[](size_t n) { return operator new(n); }
void *operator new(size_t n, const std::nothrow_t &) noexcept
{
    return allocate(n);
}
void *operator new[](size_t n, const std::nothrow_t &) noexcept
{
    return allocate(n);
}
void operator delete(void *p) noexcept { release(p); }
void operator delete[](void *p) noexcept { release(p); }
void operator delete(void *p, size_t) noexcept { release(p); }
void operator delete[](void *p, size_t) noexcept { release(p); }
