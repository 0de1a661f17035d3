// A fake machine for engine tests: guest RAM, the host callbacks, and a
// driver-like helper that programs the IOMMU through its registers and
// builds device tables and v1 page tables in guest memory.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/iommu-engine.h"

namespace ioguard_test {

constexpr uint64_t kRamSize = 32ULL << 20;

// The configuration the tests start from; fields after verifier (STREAMING,
// the latency model) are off.
inline IoguardConfig test_config(bool intremap = true, bool ga = true,
                                 bool xtsup = false, bool stats = true,
                                 unsigned fault_records = 64,
                                 bool verifier = false)
{
    IoguardConfig c{};
    c.intremap = intremap;
    c.ga = ga;
    c.xtsup = xtsup;
    c.stats = stats;
    c.fault_records = fault_records;
    c.verifier = verifier;
    return c;
}

struct Machine {
    std::vector<uint8_t> ram = std::vector<uint8_t>(kRamSize);
    int interrupts = 0;
    std::vector<std::pair<uint64_t, uint32_t>> messages;
    std::vector<std::string> guest_errors;
    std::vector<int> irt_invalidations;
    std::vector<int> devtab_changes;
    struct PagesInvalidated {
        int domain;
        uint64_t first, last;
        bool operator==(const PagesInvalidated &) const = default;
    };
    std::vector<PagesInvalidated> pages_invalidated;
    struct DeviceIotlbInvalidated {
        uint16_t devid;
        uint64_t first, last;
        bool operator==(const DeviceIotlbInvalidated &) const = default;
    };
    std::vector<DeviceIotlbInvalidated> device_iotlb_invalidations;
    struct PageResponse {
        uint16_t devid;
        bool pasid_valid;
        uint32_t pasid;
        uint16_t group;
        unsigned code;
        bool operator==(const PageResponse &) const = default;
    };
    std::vector<PageResponse> page_responses;
    std::vector<uint32_t> commands_seen;            // opcodes
    std::vector<IoguardFaultRecord> records_seen;   // as the host is told
    uint64_t now = 0;
    uint64_t wake_deadline = 0;                     // 0: none asked for
    IoguardIommu *iommu = nullptr;

    static bool read_ram(void *o, uint64_t addr, void *buf, uint64_t len)
    {
        auto *m = static_cast<Machine *>(o);
        if (addr >= kRamSize || len > kRamSize - addr) {
            return false;
        }
        memcpy(buf, m->ram.data() + addr, len);
        return true;
    }
    static bool write_ram(void *o, uint64_t addr, const void *buf,
                          uint64_t len)
    {
        auto *m = static_cast<Machine *>(o);
        if (addr >= kRamSize || len > kRamSize - addr) {
            return false;
        }
        memcpy(m->ram.data() + addr, buf, len);
        return true;
    }
    static void raise_interrupt(void *o)
    {
        static_cast<Machine *>(o)->interrupts++;
    }
    static void deliver_msi(void *o, uint64_t address, uint32_t data)
    {
        static_cast<Machine *>(o)->messages.push_back({address, data});
    }
    static void guest_error(void *o, const char *msg)
    {
        static_cast<Machine *>(o)->guest_errors.push_back(msg);
    }
    static void irt_invalidated(void *o, int devid)
    {
        static_cast<Machine *>(o)->irt_invalidations.push_back(devid);
    }
    static void devtab_changed(void *o, int devid)
    {
        static_cast<Machine *>(o)->devtab_changes.push_back(devid);
    }
    static uint64_t now_ns(void *o) { return static_cast<Machine *>(o)->now; }
    static void command_executed(void *o, const uint32_t cmd[4], uint64_t)
    {
        static_cast<Machine *>(o)->commands_seen.push_back(cmd[1] >> 28);
    }
    static void fault_recorded(void *o, const IoguardFaultRecord *r)
    {
        static_cast<Machine *>(o)->records_seen.push_back(*r);
    }
    static void wake_at(void *o, uint64_t deadline_ns)
    {
        static_cast<Machine *>(o)->wake_deadline = deadline_ns;
    }
    static void iommu_pages_invalidated(void *o, int domain, uint64_t first,
                                        uint64_t last)
    {
        static_cast<Machine *>(o)->pages_invalidated.push_back(
            {domain, first, last});
    }
    static void device_iotlb_invalidated(void *o, uint16_t devid,
                                         uint64_t first, uint64_t last)
    {
        static_cast<Machine *>(o)->device_iotlb_invalidations.push_back(
            {devid, first, last});
    }
    static void page_response(void *o, uint16_t devid, bool pasid_valid,
                              uint32_t pasid, uint16_t group, unsigned code)
    {
        static_cast<Machine *>(o)->page_responses.push_back(
            {devid, pasid_valid, pasid, group, code});
    }

    explicit Machine(IoguardConfig config = test_config())
    {
        static const IoguardHostOps ops = {read_ram, write_ram,
                                           raise_interrupt, deliver_msi,
                                           guest_error,
                                           irt_invalidated, devtab_changed,
                                           now_ns, command_executed,
                                           fault_recorded, wake_at,
                                           iommu_pages_invalidated,
                                           device_iotlb_invalidated,
                                           page_response};
        iommu = ioguard_iommu_new(&ops, this, &config);
    }
    ~Machine() { ioguard_iommu_free(iommu); }
    Machine(const Machine &) = delete;
    Machine &operator=(const Machine &) = delete;

    uint64_t r64(uint64_t a) const
    {
        uint64_t v;
        memcpy(&v, ram.data() + a, 8);
        return v;
    }
    void w64(uint64_t a, uint64_t v) { memcpy(ram.data() + a, &v, 8); }
    uint32_t r32(uint64_t a) const
    {
        uint32_t v;
        memcpy(&v, ram.data() + a, 4);
        return v;
    }
    void w32(uint64_t a, uint32_t v) { memcpy(ram.data() + a, &v, 4); }

    uint64_t mmio_read(uint64_t off, unsigned size = 8)
    {
        return ioguard_iommu_mmio_read(iommu, off, size);
    }
    void mmio_write(uint64_t off, uint64_t v, unsigned size = 8)
    {
        ioguard_iommu_mmio_write(iommu, off, v, size);
    }
};

// Guest-physical layout used by Driver.
constexpr uint64_t kDevTable = 0x200000;     // 2 MiB: all 65536 requesters
constexpr uint64_t kCmdBuf = 0x400000;       // 512 entries
constexpr uint64_t kEventLog = 0x410000;     // 512 entries
constexpr uint64_t kSemaphore = 0x420000;
constexpr uint64_t kTablePool = 0x1000000;   // page tables come from here

// Does what Linux's amd_iommu driver does, in miniature.
struct Driver {
    Machine &m;
    uint64_t next_table = kTablePool;
    uint64_t cmd_tail = 0;
    uint64_t evt_head = 0;
    uint64_t sem_value = 0;

    explicit Driver(Machine &machine) : m(machine) {}

    void enable(uint64_t extra_control = 0)
    {
        m.mmio_write(MMIO_DEV_TABLE_OFFSET, kDevTable | 0x1ff);
        m.mmio_write(MMIO_CMD_BUF_OFFSET, kCmdBuf | (9ULL << 56));
        m.mmio_write(MMIO_EVT_BUF_OFFSET, kEventLog | (9ULL << 56));
        m.mmio_write(MMIO_CMD_HEAD_OFFSET, 0, 4);
        m.mmio_write(MMIO_CMD_TAIL_OFFSET, 0, 4);
        m.mmio_write(MMIO_EVT_HEAD_OFFSET, 0, 4);
        m.mmio_write(MMIO_EVT_TAIL_OFFSET, 0, 4);
        m.mmio_write(MMIO_CONTROL_OFFSET,
                     (1ULL << CONTROL_IOMMU_EN) | (1ULL << CONTROL_EVT_LOG_EN) |
                         (1ULL << CONTROL_EVT_INT_EN) |
                         (1ULL << CONTROL_CMDBUF_EN) | extra_control);
    }

    uint64_t alloc_table()
    {
        uint64_t t = next_table;
        next_table += 4096;
        memset(m.ram.data() + t, 0, 4096);
        return t;
    }

    void set_dte(uint16_t devid, uint64_t q0, uint64_t q1 = 0, uint64_t q2 = 0,
                 uint64_t q3 = 0)
    {
        const uint64_t a = kDevTable + devid * 32ULL;
        m.w64(a, q0);
        m.w64(a + 8, q1);
        m.w64(a + 16, q2);
        m.w64(a + 24, q3);
    }

    static uint64_t dte_translated(uint64_t root, unsigned mode)
    {
        return DTE_FLAG_V | DTE_FLAG_TV | uint64_t(mode) << DTE_MODE_SHIFT |
               root | DTE_FLAG_IR | DTE_FLAG_IW;
    }

    // Map one page of the default size of `leaf_level` (4K at 1, 2M at 2..)
    // as Linux does: no level skipping, IR/IW on every PDE.
    void map(uint64_t root, unsigned mode, uint64_t iova, uint64_t pa,
             bool read, bool write, unsigned leaf_level = 1)
    {
        uint64_t table = root;
        for (unsigned level = mode; level > leaf_level; level--) {
            const uint64_t idx = (iova >> (12 + 9 * (level - 1))) & 0x1ff;
            uint64_t pde = m.r64(table + idx * 8);
            if (!(pde & IOMMU_PTE_PR)) {
                const uint64_t next = alloc_table();
                pde = next | IOMMU_PTE_PR | IOMMU_PTE_IR | IOMMU_PTE_IW |
                      uint64_t(level - 1) << IOMMU_PTE_NEXT_LEVEL_SHIFT;
                m.w64(table + idx * 8, pde);
            }
            table = pde & IOMMU_PTE_ADDR_MASK;
        }
        const uint64_t idx = (iova >> (12 + 9 * (leaf_level - 1))) & 0x1ff;
        m.w64(table + idx * 8, pa | IOMMU_PTE_PR | IOMMU_PTE_FC |
                                   (read ? IOMMU_PTE_IR : 0) |
                                   (write ? IOMMU_PTE_IW : 0));
    }

    // Guest translation (guest-translation=on): the DTE Linux's
    // set_dte_entry writes in v2 mode (V, TV, IR, IW, GV, GIoV, GLX, the
    // GCR3 table in three pieces; q2 the paging mode) with host tables of
    // `host_mode` levels at host_root, or none.
    struct GuestDte {
        uint64_t q0, q1, q2;
    };
    static GuestDte guest_dte(uint64_t gcr3_table, uint16_t domain,
                              unsigned glx = 0,
                              unsigned paging = GUEST_PGTABLE_4_LEVEL,
                              uint64_t host_root = 0, unsigned host_mode = 0)
    {
        GuestDte d;
        d.q0 = DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR | DTE_FLAG_IW |
               DTE_FLAG_GV | DTE_FLAG_GIOV | uint64_t(glx) << DTE_GLX_SHIFT |
               ((gcr3_table >> 12) & 0x7) << DTE_GCR3_SHIFT_A |
               uint64_t(host_mode) << DTE_MODE_SHIFT | host_root;
        d.q1 = domain | ((gcr3_table >> 15) & 0xffff) << DTE_GCR3_SHIFT_B |
               ((gcr3_table >> 31) & 0x1fffff) << DTE_GCR3_SHIFT_C;
        d.q2 = uint64_t(paging) << DTE_GPT_LEVEL_SHIFT;
        return d;
    }

    // What Linux's io_pgtable_v2.c writes into every v2 entry.
    static constexpr uint64_t kV2TableFlags =
        IOMMU_PAGE_PRESENT | IOMMU_PAGE_RW | IOMMU_PAGE_USER |
        IOMMU_PAGE_ACCESS;
    static constexpr uint64_t kV2LeafFlags = kV2TableFlags | IOMMU_PAGE_DIRTY;

    // Maps gva to pa in the `levels`-level v2 tables under root with a
    // leaf at `leaf_level` (1: 4 KiB, 2: 2 MiB, 3: 1 GiB), table_flags on
    // the way and leaf_flags at the end. Returns the leaf's address.
    uint64_t map_v2(uint64_t root, uint64_t gva, uint64_t pa,
                    uint64_t leaf_flags = kV2LeafFlags,
                    unsigned leaf_level = 1, unsigned levels = 4,
                    uint64_t table_flags = kV2TableFlags)
    {
        uint64_t table = root;
        for (unsigned level = levels; level > leaf_level; level--) {
            const uint64_t index = (gva >> (12 + 9 * (level - 1))) & 0x1ff;
            uint64_t entry = m.r64(table + index * 8);
            if (!(entry & IOMMU_PAGE_PRESENT)) {
                entry = alloc_table() | table_flags;
                m.w64(table + index * 8, entry);
            }
            table = entry & IOMMU_PAGE_ADDR_MASK;
        }
        const uint64_t index = (gva >> (12 + 9 * (leaf_level - 1))) & 0x1ff;
        m.w64(table + index * 8,
              pa | leaf_flags | (leaf_level > 1 ? IOMMU_PAGE_PSE : 0));
        return table + index * 8;
    }

    // Returns the guest address of the leaf PTE for iova (4K leaves).
    uint64_t pte_address(uint64_t root, unsigned mode, uint64_t iova)
    {
        uint64_t table = root;
        for (unsigned level = mode; level > 1; level--) {
            const uint64_t idx = (iova >> (12 + 9 * (level - 1))) & 0x1ff;
            table = m.r64(table + idx * 8) & IOMMU_PTE_ADDR_MASK;
        }
        return table + ((iova >> 12) & 0x1ff) * 8;
    }

    void queue(uint32_t dw0, uint32_t dw1, uint32_t dw2 = 0, uint32_t dw3 = 0)
    {
        const uint64_t a = kCmdBuf + cmd_tail;
        m.w32(a, dw0);
        m.w32(a + 4, dw1);
        m.w32(a + 8, dw2);
        m.w32(a + 12, dw3);
        cmd_tail = (cmd_tail + 16) % (512 * 16);
        m.mmio_write(MMIO_CMD_TAIL_OFFSET, cmd_tail, 4);
    }

    // COMPLETION_WAIT with store; true when the IOMMU wrote the semaphore.
    bool completion_wait()
    {
        sem_value++;
        queue(uint32_t(kSemaphore) | CMD_COMPL_WAIT_STORE_MASK,
              uint32_t(CMD_COMPL_WAIT) << 28, uint32_t(sem_value),
              uint32_t(sem_value >> 32));
        return m.r64(kSemaphore) == sem_value;
    }

    void inv_dte(uint16_t devid)
    {
        queue(devid, uint32_t(CMD_INV_DEV_ENTRY) << 28);
    }
    void inv_pages(uint16_t domain, uint64_t address, bool s, bool pde = true)
    {
        queue(0, uint32_t(CMD_INV_IOMMU_PAGES) << 28 | domain,
              uint32_t(address & ~0xfffULL) | (s ? 1 : 0) | (pde ? 2 : 0),
              uint32_t(address >> 32));
    }
    // As Linux's build_inv_iotlb_pages, for one page.
    void inv_iotlb_page(uint16_t devid, uint64_t address)
    {
        queue(devid | 32u << 24, uint32_t(CMD_INV_IOTLB_PAGES) << 28 | devid,
              uint32_t(address & ~0xfffULL), uint32_t(address >> 32));
    }
    void inv_domain(uint16_t domain)
    {
        inv_pages(domain, CMD_INV_IOMMU_ALL_PAGES_ADDRESS, true);
    }

    struct Ev {
        unsigned type, flags;
        uint16_t devid, domain;
        uint64_t address;
    };
    // Drains the event log as Linux does (zeroing consumed entries).
    std::vector<Ev> events()
    {
        std::vector<Ev> out;
        const uint64_t tail = m.mmio_read(MMIO_EVT_TAIL_OFFSET, 4);
        while (evt_head != tail) {
            const uint64_t a = kEventLog + evt_head;
            const uint32_t dw0 = m.r32(a), dw1 = m.r32(a + 4);
            out.push_back(Ev{dw1 >> 28, (dw1 >> 16) & 0xfff,
                             uint16_t(dw0 & 0xffff), uint16_t(dw1 & 0xffff),
                             uint64_t(m.r32(a + 12)) << 32 | m.r32(a + 8)});
            memset(m.ram.data() + a, 0, 16);
            evt_head = (evt_head + 16) % (512 * 16);
        }
        m.mmio_write(MMIO_EVT_HEAD_OFFSET, evt_head, 4);
        return out;
    }

    IoguardTranslation translate(uint16_t devid, uint64_t iova, unsigned perm)
    {
        IoguardTranslation t;
        ioguard_iommu_translate(m.iommu, devid, iova, perm, &t);
        // Faults close together coalesce; tests step time past that.
        m.now += 10000000;
        return t;
    }

    IoguardStats stats()
    {
        IoguardStats s;
        ioguard_iommu_get_stats(m.iommu, &s);
        return s;
    }
};

} // namespace ioguard_test
