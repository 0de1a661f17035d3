// ioguard-hostile: a hostile guest for ioguard-iommu and ioguard-nic, run
// as root inside the VM by tests/guest/init (ioguard.hostile=SEED:OPS) while
// the host checks that QEMU keeps answering QMP (scripts/hostile_guest.py).
//
//   ioguard-hostile SEED OPS [TRACE_FROM]
//
// From a seeded generator it performs OPS operations, each one of:
//   - a write of any width to any of the IOMMU's registers (its MMIO
//     window through /dev/mem) or the NIC's (its BAR through sysfs), with a
//     random value or a shaped one: a base register pointing at this
//     program's RAM, at MMIO (both devices', the local APIC, the IO-APIC),
//     at addresses where nothing is, with any size field;
//   - a read of any register;
//   - a write of entry-shaped words (device-table entries, page-table
//     entries, IRTEs, commands, NIC descriptors) into this program's RAM,
//     which the registers above point the devices' tables, rings and logs at;
//   - a burst of commands followed by a command-tail doorbell;
//   - a NIC test-engine DMA, or a ring of descriptors and its doorbell, at
//     the addresses dma_address() allows (away from the kernel's RAM);
//   - a write to either device's PCI configuration space: the IOMMU's
//     capability block, and both MSI capabilities;
//   - now and then, a sane set-up (every table valid, the NIC mapped through
//     a real page table), so that the random writes that follow reach the
//     deeper states too.
// After each of those, with its own generator (so that a seed's other
// operations stay what they were), now and then a disk command: on q35's
// AHCI controller (an ATA command on port 0, its PRD entries at the
// addresses dma_address() allows) or on an NVMe controller at 00:06.0 (an
// admin or I/O command, its PRPs the same), their command lists and queues
// either in this program's RAM or at IOVAs the sane set-up maps. The sane
// set-up translates the NVMe controller, so that the IOMMU refuses some of
// its DMA and allows some; the AHCI controller (requester 00:1f.2) is
// beyond its 4 KiB device table, so that the IOMMU refuses all of it.
// Every 1000 operations, and at the end, it logs (in the kernel's log)
//   IOGUARD-HOSTILE seed=S ops=N
// and at the end IOGUARD-HOSTILE-DONE seed=S ops=N; from operation
// TRACE_FROM on, it also logs each one once done (IOGUARD-HOSTILE-OP N
// KIND), to find the one that a seed's failure follows. The guest boots with
// amd_iommu=off iomem=relaxed so that Linux leaves both devices to us; the
// NIC's driver is not loaded.
// Built static by scripts/build-guest.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hw/ioguard/amd-vi-regs.h"
#include "hw/ioguard/nic-regs.h"

namespace {

[[noreturn]] void fail(const char *what)
{
    fprintf(stderr, "ioguard-hostile: %s: %s\n", what, strerror(errno));
    exit(1);
}

// splitmix64: small, seedable, and the same on every build.
class Random {
public:
    explicit Random(uint64_t seed) : state_(seed) {}
    uint64_t next()
    {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return next() % n; }
    bool chance(unsigned percent) { return below(100) < percent; }
    template <typename T, size_t N> T pick(const T (&a)[N]) { return a[below(N)]; }

private:
    uint64_t state_;
};

constexpr size_t kPage = 4096;
constexpr unsigned kPages = 32;           // this program's RAM for the devices
constexpr uint16_t kNicDevid = 0x28;      // 00:05.0, as tests place the NIC
constexpr uint16_t kNvmeDevid = 0x30;     // 00:06.0, as hostile_guest.py
                                          // places it
constexpr uint64_t kLapic = 0xfee00000, kIoapic = 0xfec00000;
constexpr uint8_t kPciCapMsi = 0x05;

// This program's RAM for the devices: one 2 MiB huge page, so that it is
// physically contiguous and a DMA that starts in it and runs on (up to
// kMaxDmaLen) stays in it. Tables, rings and logs live in its first kPages
// pages.
constexpr size_t kHugePage = 2 << 20;
constexpr uint64_t kMaxDmaLen = 512 << 10;
struct Ram {
    uint8_t *virt = nullptr;
    uint64_t base = 0;
    uint64_t phys[kPages] = {};

    void allocate()
    {
        FILE *fp = fopen("/proc/sys/vm/nr_hugepages", "w");
        if (!fp || fprintf(fp, "1\n") < 0 || fclose(fp) != 0) {
            fail("/proc/sys/vm/nr_hugepages");
        }
        virt = static_cast<uint8_t *>(mmap(nullptr, kHugePage, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
                                           MAP_POPULATE | MAP_LOCKED, -1, 0));
        if (virt == MAP_FAILED) {
            fail("mmap of a huge page");
        }
        int fd = open("/proc/self/pagemap", O_RDONLY);
        if (fd < 0) {
            fail("/proc/self/pagemap");
        }
        uint64_t entry = 0;
        if (pread(fd, &entry, 8, off_t(uintptr_t(virt) / kPage * 8)) != 8 || !(entry >> 63)) {
            fail("pagemap entry");
        }
        close(fd);
        base = (entry & ((1ULL << 55) - 1)) * kPage;
        for (unsigned i = 0; i < kPages; i++) {
            phys[i] = base + i * kPage;
        }
    }
    bool holds(uint64_t a) const { return a - base < kHugePage; }
    uint64_t *word(unsigned page, unsigned index)
    {
        return reinterpret_cast<uint64_t *>(virt + page * kPage) + index % (kPage / 8);
    }
};

// A register window mapped uncached.
struct Window {
    volatile uint8_t *base = nullptr;
    uint64_t phys = 0;
    size_t size = 0;

    void map(const char *path, uint64_t offset, uint64_t at, size_t len)
    {
        int fd = open(path, O_RDWR | O_SYNC);
        if (fd < 0) {
            fail(path);
        }
        void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset));
        if (p == MAP_FAILED) {
            fail(path);
        }
        close(fd);
        base = static_cast<volatile uint8_t *>(p);
        phys = at;
        size = len;
    }
    void write(uint64_t off, unsigned width, uint64_t v)
    {
        off = off % size & ~uint64_t(width - 1);
        volatile uint8_t *p = base + off;
        switch (width) {
        case 1: *p = uint8_t(v); break;
        case 2: *reinterpret_cast<volatile uint16_t *>(p) = uint16_t(v); break;
        case 4: *reinterpret_cast<volatile uint32_t *>(p) = uint32_t(v); break;
        default: *reinterpret_cast<volatile uint64_t *>(p) = v; break;
        }
    }
    uint64_t read(uint64_t off, unsigned width)
    {
        off = off % size & ~uint64_t(width - 1);
        volatile uint8_t *p = base + off;
        switch (width) {
        case 1: return *p;
        case 2: return *reinterpret_cast<volatile uint16_t *>(p);
        case 4: return *reinterpret_cast<volatile uint32_t *>(p);
        default: return *reinterpret_cast<volatile uint64_t *>(p);
        }
    }
};

// The sysfs folder of the PCI function with this vendor:device.
std::string find_pci(unsigned vendor, unsigned device)
{
    const std::string root = "/sys/bus/pci/devices/";
    DIR *d = opendir(root.c_str());
    if (!d) {
        fail(root.c_str());
    }
    std::string found;
    while (dirent *e = readdir(d)) {
        std::string dir = root + e->d_name;
        auto id = [&](const char *f) {
            FILE *fp = fopen((dir + "/" + f).c_str(), "r");
            unsigned v = 0;
            if (fp) {
                if (fscanf(fp, "%x", &v) != 1) {
                    v = 0;
                }
                fclose(fp);
            }
            return v;
        };
        if (id("vendor") == vendor && id("device") == device) {
            found = dir;
        }
    }
    closedir(d);
    if (found.empty()) {
        fprintf(stderr, "ioguard-hostile: no PCI function %04x:%04x\n", vendor, device);
        exit(1);
    }
    return found;
}

// The address of BAR n (sysfs's "resource": one line per BAR).
uint64_t bar_address(const std::string &dir, int n = 0)
{
    FILE *fp = fopen((dir + "/resource").c_str(), "r");
    unsigned long long start = 0, end, flags;
    for (int i = 0; i <= n; i++) {
        if (!fp || fscanf(fp, "%llx %llx %llx", &start, &end, &flags) != 3) {
            fail("resource");
        }
    }
    fclose(fp);
    return start;
}

// Memory decoding and bus mastering on (no driver did it); the config fd.
int enable_device(const std::string &dir)
{
    int fd = open((dir + "/config").c_str(), O_RDWR);
    uint16_t command = 0x6;
    if (fd < 0 || pwrite(fd, &command, 2, 4) != 2) {
        fail((dir + "/config").c_str());
    }
    return fd;
}

class Hostile {
public:
    explicit Hostile(uint64_t seed) : rnd_(seed), disk_rnd_(~seed) {}

    void set_up()
    {
        ram_.allocate();
        iommu_.map("/dev/mem", IOGUARD_MMIO_BASE, IOGUARD_MMIO_BASE, IOGUARD_MMIO_SIZE);
        std::string nic = find_pci(IOGUARD_NIC_PCI_VENDOR_ID, IOGUARD_NIC_PCI_DEVICE_ID);
        nic_.map((nic + "/resource0").c_str(), 0, bar_address(nic), IOGUARD_NIC_MMIO_SIZE);
        nic_config_ = enable_device(nic);
        std::string ahci = "/sys/bus/pci/devices/0000:00:1f.2";
        ahci_.map((ahci + "/resource5").c_str(), 0, bar_address(ahci, 5), kAhciAbarSize);
        close(enable_device(ahci));
        std::string nvme = "/sys/bus/pci/devices/0000:00:06.0";
        nvme_.map((nvme + "/resource0").c_str(), 0, bar_address(nvme), kNvmeBarSize);
        close(enable_device(nvme));
        std::string iommu = find_pci(IOGUARD_PCI_VENDOR_ID, IOGUARD_IOMMU_PCI_DEVICE_ID);
        iommu_config_ = open((iommu + "/config").c_str(), O_RDWR);
        if (iommu_config_ < 0) {
            fail("IOMMU config");
        }
        iommu_cap_ = find_capability(iommu_config_, IOGUARD_CAP_ID);
        iommu_msi_ = find_capability(iommu_config_, kPciCapMsi);
        nic_msi_ = find_capability(nic_config_, kPciCapMsi);
        nic_ats_ = find_ext_capability(nic_config_, kPciExtCapAts);
        nic_pasid_ = find_ext_capability(nic_config_, kPciExtCapPasid);
        nic_pri_ = find_ext_capability(nic_config_, kPciExtCapPri);
        ram_end_ = uint64_t(sysconf(_SC_PHYS_PAGES)) * kPage;
        if (ram_end_ > (kDmaHole & ((1u << 30) - 1))) {
            fprintf(stderr, "ioguard-hostile: wants a guest with under 576 MiB of RAM\n");
            exit(1);
        }
    }

    // Progress goes to the kernel's log (/dev/kmsg), which the serial
    // console prints by polling: this guest may well have remapped away the
    // UART's interrupt, and a write to the console tty would then wait
    // forever.
    void run(uint64_t seed, uint64_t ops, uint64_t trace_from)
    {
        FILE *kmsg = fopen("/dev/kmsg", "w");
        if (!kmsg) {
            fail("/dev/kmsg");
        }
        for (uint64_t n = 1; n <= ops; n++) {
            const char *op = step(), *disk = "";
            if (disk_rnd_.below(100) < kDiskOdds) {
                disk = disk_rnd_.chance(50) ? ahci_command() : nvme_command();
            }
            if (n >= trace_from) {
                fprintf(kmsg, "IOGUARD-HOSTILE-OP %llu %s%s\n", (unsigned long long)n, op, disk);
                fflush(kmsg);
            }
            if (n % 1000 == 0 || n == ops) {
                fprintf(kmsg, "IOGUARD-HOSTILE seed=%llu ops=%llu\n", (unsigned long long)seed,
                        (unsigned long long)n);
                fflush(kmsg);
            }
        }
        fprintf(kmsg, "IOGUARD-HOSTILE-DONE seed=%llu ops=%llu\n", (unsigned long long)seed,
                (unsigned long long)ops);
        fclose(kmsg);
    }

private:
    // An extended capability (PCIe: ioguard-nic with ats=on); 0 if none.
    static uint16_t find_ext_capability(int fd, uint16_t id)
    {
        uint16_t at = 0x100;
        for (int hops = 0; at >= 0x100 && hops < 64; hops++) {
            uint32_t header = 0;
            if (pread(fd, &header, 4, at) != 4 || header == 0) {
                return 0;
            }
            if ((header & 0xffff) == id) {
                return at;
            }
            at = uint16_t(header >> 20) & ~3u;
        }
        return 0;
    }

    static uint8_t find_capability(int fd, uint8_t id)
    {
        uint8_t at = 0;
        if (pread(fd, &at, 1, 0x34) != 1) {
            return 0;
        }
        for (int hops = 0; at && hops < 48; hops++) {
            uint8_t cap[2] = {};
            if (pread(fd, cap, 2, at) != 2) {
                return 0;
            }
            if (cap[0] == id) {
                return at;
            }
            at = cap[1];
        }
        return 0;
    }

    // An address a hostile guest would aim a device at.
    uint64_t address()
    {
        switch (rnd_.below(10)) {
        case 0: case 1: case 2: case 3:      // our RAM, anywhere in it
            return ram_.phys[rnd_.below(kPages)] + rnd_.below(kPage);
        case 4: return iommu_.phys + rnd_.below(IOGUARD_MMIO_SIZE);
        case 5: return nic_.phys + rnd_.below(IOGUARD_NIC_MMIO_SIZE);
        case 6: return rnd_.chance(50) ? kLapic + rnd_.below(kPage) : kIoapic;
        case 7: return 0xe0000000ULL + (rnd_.below(0x1000) << 12); // nothing there (PCI hole)
        case 8: return 1ULL << (32 + rnd_.below(20));              // nothing either
        default: return rnd_.next();
        }
    }
    uint64_t page_address() { return address() & ~uint64_t(kPage - 1); }
    // An IOVA the NIC can be given: small ones (the sane set-up maps them),
    // our RAM's, either device's registers, or addresses where nothing is.
    // Nothing else: with the IOMMU off or in passthrough an IOVA is a
    // physical address, and through a hostile 1 GiB page entry at 0 its
    // low 30 bits are. A DMA into the guest kernel's RAM stops the guest
    // running this test, and one into another device's registers tests
    // that device, not ioguard's (QEMU's HPET, for one, then spins in a
    // timer loop forever). So any other address becomes one in
    // [kDmaHole, kDmaHoleEnd), where nothing is and whose low 30 bits are
    // above RAM. (The first 1 MiB is RAM that Linux reserves and never
    // uses.)
    static constexpr uint64_t kDmaHole = 0xe4000000, kDmaHoleEnd = 0xfe000000;
    uint32_t dma_address() { return dma_address(rnd_); }
    uint32_t dma_address(Random &rnd)
    {
        uint64_t a;
        switch (rnd.below(5)) {
        case 0: return uint32_t(rnd.below(16 * kPage));
        case 1: return uint32_t(ram_.phys[rnd.below(kPages)] + rnd.below(kPage));
        case 2: return uint32_t(iommu_.phys + rnd.below(IOGUARD_MMIO_SIZE));
        case 3: return uint32_t(nic_.phys + rnd.below(IOGUARD_NIC_MMIO_SIZE));
        default: a = uint32_t(rnd.next()); break;
        }
        if (!ram_.holds(a) && !(a >= kDmaHole && a < kDmaHoleEnd)) {
            a = kDmaHole + a % (kDmaHoleEnd - kDmaHole);
        }
        return uint32_t(a);
    }
    uint32_t dma_length() { return uint32_t(1 + rnd_.below(rnd_.chance(90) ? 2 * kPage : kMaxDmaLen)); }
    unsigned width() { return 1u << rnd_.below(4); }
    uint64_t size_field() { return rnd_.chance(70) ? 8 + rnd_.below(8) : rnd_.below(16); }

    // A base register value: address, with a length field in 59:56.
    uint64_t base_value()
    {
        uint64_t v = page_address() & IOGUARD_BASE_ADDR_MASK;
        return rnd_.chance(80) ? v | size_field() << IOGUARD_BASE_LEN_SHIFT : v | rnd_.next() << 52;
    }

    uint64_t dte_word()
    {
        uint64_t v = 1 | (rnd_.below(3) << 1)            // V, TV, (bit 2)
            | (rnd_.below(8) << 9)                           // Mode
            | (page_address() & IOGUARD_BASE_ADDR_MASK)      // Page-table root
            | (rnd_.below(4) << 61);                         // IR, IW
        if (rnd_.chance(30)) {      // guest translation: GIoV, GV, GLX, GCR3
            v |= rnd_.below(4) << 54 | rnd_.below(4) << DTE_GLX_SHIFT |
                 rnd_.below(8) << DTE_GCR3_SHIFT_A;
        }
        return rnd_.chance(80) ? v : rnd_.next();
    }
    uint64_t pte_word()
    {
        if (rnd_.chance(30)) {      // a v2 entry or a GCR3 entry: P, R/W,
                                    // U/S, A, D, PS
            return (page_address() & IOGUARD_BASE_ADDR_MASK) | 1 |
                   (rnd_.next() & (IOMMU_PAGE_RW | IOMMU_PAGE_USER |
                                   IOMMU_PAGE_ACCESS | IOMMU_PAGE_DIRTY |
                                   IOMMU_PAGE_PSE));
        }
        uint64_t v = 1 | (rnd_.below(8) << 9)                // PR, NextLevel
            | (page_address() & IOGUARD_BASE_ADDR_MASK)
            | (rnd_.below(4) << 61) | (rnd_.below(2) << 1);  // IR/IW, STREAMING
        return rnd_.chance(85) ? v : rnd_.next();
    }
    uint64_t command_word(bool first)
    {
        if (!first) {
            return rnd_.chance(50) ? address() | 1 : rnd_.next();
        }
        uint64_t opcode = rnd_.below(12);
        return (opcode << 60) | (rnd_.next() & 0x0fffffffffffffffULL);
    }
    // MSI data and IRTEs deliver fixed or lowest-priority interrupts with
    // any vector; an INIT, SMI or NMI would stop the guest running this
    // program (the random words written elsewhere may still do it).
    uint32_t msi_data() { return uint32_t(rnd_.below(256) | rnd_.below(2) << 8); }
    uint64_t irte_word()       // either format: IntType is bits 4:2
    {
        return (rnd_.next() & ~uint64_t(0x1c)) | rnd_.below(2) << 2;
    }

    uint64_t descriptor_word()
    {
        uint64_t len = rnd_.chance(70) ? 1 + rnd_.below(2048) : rnd_.below(65536);  // 0 too
        uint64_t flags = (rnd_.chance(80) ? NIC_DESC_OWN : 0) | (rnd_.chance(60) ? NIC_DESC_EOP : 0);
        return dma_address() | len << 32 | flags << 48;
    }

    // Entry-shaped words into our RAM: wherever the devices now look.
    void write_ram()
    {
        unsigned page = unsigned(rnd_.below(kPages)), index = unsigned(rnd_.below(kPage / 8));
        unsigned count = 1 + unsigned(rnd_.below(8));
        unsigned kind = unsigned(rnd_.below(6));
        for (unsigned i = 0; i < count; i++) {
            uint64_t v;
            switch (kind) {
            case 0: v = dte_word(); break;
            case 1: v = pte_word(); break;
            case 2: v = command_word(i % 2 == 0); break;
            case 3: v = descriptor_word(); break;
            case 4: v = irte_word(); break;
            default: v = rnd_.next(); break;
            }
            *ram_.word(page, index + i) = v;
        }
    }

    void iommu_register_write()
    {
        static const uint64_t regs[] = {
            MMIO_DEV_TABLE_OFFSET, MMIO_CMD_BUF_OFFSET, MMIO_EVT_BUF_OFFSET,
            MMIO_CONTROL_OFFSET, MMIO_EXCL_BASE_OFFSET, MMIO_EXCL_LIMIT_OFFSET,
            MMIO_EXT_FEATURES, MMIO_PPR_LOG_OFFSET, MMIO_GA_LOG_BASE_OFFSET,
            MMIO_GA_LOG_TAIL_OFFSET, MMIO_INTCAPXT_EVT_OFFSET, MMIO_CMD_HEAD_OFFSET,
            MMIO_CMD_TAIL_OFFSET, MMIO_EVT_HEAD_OFFSET, MMIO_EVT_TAIL_OFFSET,
            MMIO_STATUS_OFFSET, MMIO_PPR_HEAD_OFFSET, MMIO_PPR_TAIL_OFFSET,
            IOGUARD_MMIO_CONTROL,
        };
        if (rnd_.chance(15)) {
            iommu_.write(rnd_.below(IOGUARD_MMIO_SIZE), width(), rnd_.next());
            return;
        }
        uint64_t reg = rnd_.pick(regs), v;
        switch (reg) {
        case MMIO_DEV_TABLE_OFFSET:
            v = (page_address() & IOGUARD_BASE_ADDR_MASK) | rnd_.below(IOGUARD_DEV_TABLE_SIZE_MASK + 1);
            break;
        case MMIO_CMD_BUF_OFFSET: case MMIO_EVT_BUF_OFFSET:
        case MMIO_PPR_LOG_OFFSET: case MMIO_GA_LOG_BASE_OFFSET: case MMIO_EXCL_BASE_OFFSET:
        case MMIO_EXCL_LIMIT_OFFSET: case MMIO_GA_LOG_TAIL_OFFSET:
            v = base_value();
            break;
        case MMIO_CONTROL_OFFSET:
            v = rnd_.next() | (rnd_.chance(70) ? 1ULL << CONTROL_IOMMU_EN : 0);
            break;
        case MMIO_CMD_HEAD_OFFSET: case MMIO_CMD_TAIL_OFFSET: case MMIO_EVT_HEAD_OFFSET:
        case MMIO_EVT_TAIL_OFFSET: case MMIO_PPR_HEAD_OFFSET: case MMIO_PPR_TAIL_OFFSET:
            v = rnd_.chance(80) ? rnd_.below(kPage) & IOGUARD_RING_PTR_MASK : rnd_.next();
            break;
        default:
            v = rnd_.next();
        }
        iommu_.write(reg, rnd_.chance(85) ? 8 : width(), v);
    }

    void nic_register_write()
    {
        static const uint64_t regs[] = {
            NIC_REG_CTRL, NIC_REG_STATUS, NIC_REG_INT_STATUS, NIC_REG_INT_MASK,
            NIC_REG_TX_RING_BASE, NIC_REG_TX_RING_SIZE, NIC_REG_TX_TAIL,
            NIC_REG_RX_RING_BASE, NIC_REG_RX_RING_SIZE, NIC_REG_RX_TAIL,
            NIC_REG_TE_SRC, NIC_REG_TE_DST, NIC_REG_TE_LEN, NIC_REG_TE_PATTERN, NIC_REG_TE_CMD,
            NIC_REG_TE_PASID,
        };
        if (rnd_.chance(15)) {
            nic_.write(rnd_.below(IOGUARD_NIC_MMIO_SIZE), width(), rnd_.next());
            return;
        }
        uint64_t reg = rnd_.pick(regs), v;
        switch (reg) {
        case NIC_REG_TX_RING_BASE: case NIC_REG_RX_RING_BASE: case NIC_REG_TE_SRC: case NIC_REG_TE_DST:
            v = dma_address();
            break;
        case NIC_REG_TX_RING_SIZE: case NIC_REG_RX_RING_SIZE: case NIC_REG_TX_TAIL: case NIC_REG_RX_TAIL:
            v = rnd_.chance(80) ? rnd_.below(300) : rnd_.next();
            break;
        case NIC_REG_TE_LEN:
            v = rnd_.chance(80) ? 1 + rnd_.below(3 * kPage) : rnd_.next();
            break;
        case NIC_REG_CTRL:
            v = rnd_.chance(5) ? NIC_CTRL_RESET : rnd_.below(16);
            break;
        case NIC_REG_TE_CMD:
            v = rnd_.below(5);
            break;
        case NIC_REG_TE_PASID:
            // A small PASID (Linux's are), valid or not, user or not.
            v = (rnd_.chance(70) ? NIC_TE_PASID_VALID : 0) |
                (rnd_.chance(30) ? NIC_TE_PASID_PRIVILEGED : 0) |
                (rnd_.chance(80) ? rnd_.below(8) : rnd_.next() & NIC_TE_PASID_MASK);
            break;
        default:
            v = rnd_.next();
        }
        nic_.write(reg, 4, v);
    }

    void register_read()
    {
        if (rnd_.chance(50)) {
            iommu_.read(rnd_.below(IOGUARD_MMIO_SIZE), width());
        } else {
            nic_.read(rnd_.below(IOGUARD_NIC_MMIO_SIZE), width());
        }
    }

    // Commands at the command buffer's current head, then a tail doorbell.
    void command_burst()
    {
        unsigned page = unsigned(rnd_.below(4)), count = 1 + unsigned(rnd_.below(16));
        for (unsigned i = 0; i < 2 * count; i++) {
            *ram_.word(page, i) = command_word(i % 2 == 0);
        }
        iommu_.write(MMIO_CMD_BUF_OFFSET, 8, ram_.phys[page] | 8ULL << IOGUARD_BASE_LEN_SHIFT);
        iommu_.write(MMIO_CMD_HEAD_OFFSET, 8, 0);
        iommu_.write(MMIO_CMD_TAIL_OFFSET, 8, count * 16ULL);
    }

    void nic_dma()
    {
        if (rnd_.chance(50)) {
            nic_.write(NIC_REG_TE_SRC, 4, dma_address());
            nic_.write(NIC_REG_TE_DST, 4, dma_address());
            nic_.write(NIC_REG_TE_LEN, 4, dma_length());
            nic_.write(NIC_REG_TE_PATTERN, 4, rnd_.next());
            nic_.write(NIC_REG_TE_CMD, 4, 1 + rnd_.below(3));
            return;
        }
        // A ring in one of our pages, full of descriptors, and its doorbell.
        bool tx = rnd_.chance(50);
        unsigned page = 8 + unsigned(rnd_.below(8)), size = 2 + unsigned(rnd_.below(255));
        for (unsigned i = 0; i < 2 * size && i < kPage / 8; i += 2) {
            *ram_.word(page, i) = descriptor_word();
            *ram_.word(page, i + 1) = 0;
        }
        uint32_t base = rnd_.chance(80) ? uint32_t(ram_.phys[page]) : dma_address();
        nic_.write(tx ? NIC_REG_TX_RING_BASE : NIC_REG_RX_RING_BASE, 4, base);
        nic_.write(tx ? NIC_REG_TX_RING_SIZE : NIC_REG_RX_RING_SIZE, 4, size);
        nic_.write(NIC_REG_CTRL, 4, NIC_CTRL_TX_EN | NIC_CTRL_RX_EN |
                   (rnd_.chance(70) ? NIC_CTRL_LOOPBACK : 0));
        nic_.write(tx ? NIC_REG_TX_TAIL : NIC_REG_RX_TAIL, 4, rnd_.below(size + 2));
    }

    // PCI configuration: the IOMMU's capability block (read-only: the
    // write must change nothing) and both devices' MSI capability, aimed
    // at the local APIC with any vector or at addresses where nothing is.
    // (Not at RAM: an MSI is a DMA write, and the guest's own memory is
    // not what this test is about.)
    void config_write()
    {
        bool iommu = rnd_.chance(50);
        int fd = iommu ? iommu_config_ : nic_config_;
        uint8_t msi = iommu ? iommu_msi_ : nic_msi_;
        uint32_t v;
        off_t off;
        if (iommu && iommu_cap_ && rnd_.chance(30)) {
            off = iommu_cap_ + off_t(rnd_.below(IOGUARD_CAP_SIZE) & ~3u);
            v = uint32_t(rnd_.next());
        } else if (!iommu && nic_ats_ && rnd_.chance(30)) {
            // ATS on (mostly) or off, any STU: the NIC's DMA then goes
            // through its own translation cache.
            off = nic_ats_ + 4;     // capability | control << 16
            v = uint32_t((rnd_.chance(80) ? 0x8000u : 0) |
                         rnd_.below(32)) << 16;
        } else if (!iommu && nic_pasid_ && rnd_.chance(20)) {
            // PASIDs and PRI on (mostly), off, reset; PRI's status bits
            // written to clear, any number of requests allowed.
            switch (rnd_.below(3)) {
            case 0: off = nic_pasid_ + 4; v = uint32_t(rnd_.below(8)) << 16; break;
            case 1: off = nic_pri_ + 4; v = uint32_t(rnd_.next()); break;
            default: off = nic_pri_ + 12; v = uint32_t(rnd_.next()); break;
            }
        } else if (msi) {
            switch (rnd_.below(4)) {
            case 0: off = msi; v = uint32_t(rnd_.below(2)) << 16; break;   // MSI enable
            case 1:
                off = msi + 4;
                v = uint32_t(rnd_.chance(80) ? kLapic | (rnd_.below(0x100000) & ~3u)
                                             : 0xe0000000u + (rnd_.below(0x10000) << 4));
                break;
            case 2: off = msi + 8; v = 0; break;                           // address 63:32
            default: off = msi + 12; v = msi_data(); break;
            }
        } else {
            return;
        }
        if (pwrite(fd, &v, 4, off) != 4) {
            // refused by the kernel: nothing reached the device
        }
    }

    // Every table valid: device table in page 16 with the NIC translated
    // through a 3-level table (pages 17..19) mapping IOVA 0..64 KiB onto
    // pages 20..31, command buffer in page 0, event log in page 1; the
    // NIC's rings in pages 8 and 9, the IOMMU enabled. Now and then the
    // same mapping in guest (v2) tables instead: the GCR3 table in page 2,
    // four levels in pages 3..6, GTEn set (guest-translation=on).
    void sane_set_up()
    {
        const bool guest_tables = rnd_.chance(30);
        memset(ram_.virt + 16 * kPage, 0, 4 * kPage);
        memset(ram_.virt + 2 * kPage, 0, 5 * kPage);
        for (uint16_t devid : {kNicDevid, kNvmeDevid}) {
            if (guest_tables) {
                const uint64_t gcr3 = ram_.phys[2];
                *ram_.word(16, devid * 4) =
                    1 | 2 | DTE_FLAG_GIOV | DTE_FLAG_GV | (3ULL << 61) |
                    ((gcr3 >> 12) & 7) << DTE_GCR3_SHIFT_A;
                *ram_.word(16, devid * 4 + 1) =
                    ((gcr3 >> 15) & 0xffff) << DTE_GCR3_SHIFT_B |
                    ((gcr3 >> 31) & 0x1fffff) << DTE_GCR3_SHIFT_C;
            } else {
                *ram_.word(16, devid * 4) = 1 | 2 | (3ULL << 9) | ram_.phys[17] | (3ULL << 61);
            }
        }
        *ram_.word(17, 0) = 1 | (2ULL << 9) | ram_.phys[18] | (3ULL << 61);
        *ram_.word(18, 0) = 1 | (1ULL << 9) | ram_.phys[19] | (3ULL << 61);
        for (unsigned i = 0; i < 16; i++) {
            *ram_.word(19, i) = 1 | ram_.phys[20 + i % 12] | (3ULL << 61) |
                                (rnd_.chance(30) ? 2 : 0);
        }
        const uint64_t v2_table = IOMMU_PAGE_PRESENT | IOMMU_PAGE_RW |
                                  IOMMU_PAGE_USER;
        *ram_.word(2, 0) = ram_.phys[3] | GCR3_VALID;
        for (unsigned level = 3; level < 6; level++) {
            *ram_.word(level, 0) = ram_.phys[level + 1] | v2_table;
        }
        for (unsigned i = 0; i < 16; i++) {
            *ram_.word(6, i) = ram_.phys[20 + i % 12] | v2_table |
                               (rnd_.chance(30) ? IOMMU_PAGE_ACCESS : 0);
        }
        iommu_.write(MMIO_CONTROL_OFFSET, 8, 0);
        iommu_.write(MMIO_DEV_TABLE_OFFSET, 8, ram_.phys[16]);
        iommu_.write(MMIO_CMD_BUF_OFFSET, 8, ram_.phys[0] | 8ULL << IOGUARD_BASE_LEN_SHIFT);
        iommu_.write(MMIO_EVT_BUF_OFFSET, 8, ram_.phys[1] | 8ULL << IOGUARD_BASE_LEN_SHIFT);
        iommu_.write(MMIO_CMD_HEAD_OFFSET, 8, 0);
        iommu_.write(MMIO_CMD_TAIL_OFFSET, 8, 0);
        iommu_.write(MMIO_EVT_HEAD_OFFSET, 8, 0);
        iommu_.write(MMIO_EVT_TAIL_OFFSET, 8, 0);
        iommu_.write(IOGUARD_MMIO_CONTROL, 8, rnd_.below(2));
        iommu_.write(MMIO_CONTROL_OFFSET, 8,
                     1ULL << CONTROL_IOMMU_EN | 1ULL << CONTROL_EVT_LOG_EN |
                     1ULL << CONTROL_CMDBUF_EN | 1ULL << CONTROL_COMWAIT_EN |
                     (guest_tables ? 1ULL << CONTROL_GT_EN : 0));
        nic_.write(NIC_REG_CTRL, 4, NIC_CTRL_RESET);
        nic_.write(NIC_REG_INT_MASK, 4, NIC_INT_ALL);
    }

    // Where a disk controller's command list or queue number k (0..5)
    // goes: IOVA k pages, which the sane set-up maps onto page 20 + k, or
    // page 2 + k of our RAM by its physical address. Returns the address
    // for the controller; *host (if wanted) is where this program writes it.
    uint64_t disk_structure(unsigned k, bool translated, uint8_t **host = nullptr)
    {
        unsigned page = translated ? 20 + k : 2 + k;
        if (host) {
            *host = ram_.virt + page * kPage;
        }
        return translated ? k * kPage : ram_.phys[page];
    }

    // An ATA command in a slot of AHCI port 0; now and then the port is
    // (re)started first, as a driver does after an error.
    const char *ahci_command()
    {
        Random &r = disk_rnd_;
        bool translated = r.chance(50);
        uint8_t *list, *table;
        uint64_t clb = disk_structure(0, translated, &list);
        uint64_t ctba = disk_structure(1, translated, &table);
        if (r.chance(20)) {
            ahci_.write(kAhciPxCmd, 4, 0);
            if (r.chance(50)) {             // COMRESET
                ahci_.write(kAhciPxSctl, 4, 1);
                ahci_.write(kAhciPxSctl, 4, 0);
            }
            ahci_.write(kAhciGhc, 4, 1u << 31);     // AHCI enable
            ahci_.write(kAhciPxClb, 4, uint32_t(clb));
            ahci_.write(kAhciPxFb, 4, uint32_t(clb + 0x400));
            ahci_.write(kAhciPxIs, 4, ~0u);
            ahci_.write(kAhciPxCmd, 4, 0x10);       // FIS receive
            ahci_.write(kAhciPxCmd, 4, 0x11);       // and start
        }
        static const uint8_t commands[] = {
            0x25, 0x35, 0xc8, 0xca,     // READ/WRITE DMA (EXT)
            0x60, 0x61,                 // READ/WRITE FPDMA QUEUED
            0xec, 0x20, 0x2f,           // IDENTIFY, READ SECTORS, READ LOG EXT
            0x06,                       // DATA SET MANAGEMENT (TRIM)
        };
        uint8_t cmd = r.pick(commands);
        bool ncq = cmd == 0x60 || cmd == 0x61;
        bool write = cmd == 0x35 || cmd == 0xca || cmd == 0x61 || cmd == 0x06;
        unsigned slot = unsigned(r.below(32)), count = 1 + unsigned(r.below(16));
        uint64_t lba = r.below(1 << 20);
        uint8_t fis[20] = {
            0x27, 0x80, cmd, uint8_t(ncq ? count : r.below(256)),
            uint8_t(lba), uint8_t(lba >> 8), uint8_t(lba >> 16), 0x40,
            uint8_t(lba >> 24), 0, 0, 0,
            uint8_t(ncq ? slot << 3 : count), 0,
        };
        memcpy(table, fis, sizeof(fis));
        unsigned prds = 1 + unsigned(r.below(4));
        for (unsigned i = 0; i < prds; i++) {
            uint32_t *prd = reinterpret_cast<uint32_t *>(table + 0x80 + 16 * i);
            prd[0] = dma_address(r);
            prd[1] = 0;
            prd[2] = 0;
            prd[3] = uint32_t(r.below(2 * kPage)) | 1;    // byte count - 1
        }
        uint32_t *header = reinterpret_cast<uint32_t *>(list + 32 * slot);
        header[0] = 5 | (write ? 1u << 6 : 0) | prds << 16;
        header[1] = 0;
        header[2] = uint32_t(ctba);
        header[3] = 0;
        if (ncq) {
            ahci_.write(kAhciPxSact, 4, 1u << slot);
        }
        ahci_.write(kAhciPxCi, 4, 1u << slot);
        return " ahci-command";
    }

    // An NVMe admin command, or an I/O command once the controller has an
    // I/O queue pair (which an admin command may create); now and then the
    // controller is (re)enabled with its admin queues first.
    const char *nvme_command()
    {
        Random &r = disk_rnd_;
        bool translated = r.chance(50);
        uint8_t *asq, *iosq;    // the controller writes the completion queues
        uint64_t asq_a = disk_structure(2, translated, &asq);
        uint64_t acq_a = disk_structure(3, translated);
        uint64_t iosq_a = disk_structure(4, translated, &iosq);
        uint64_t iocq_a = disk_structure(5, translated);
        if (r.chance(15)) {
            nvme_.write(kNvmeCc, 4, 0);
            nvme_.write(kNvmeAqa, 4, (kNvmeQueue - 1) << 16 | (kNvmeQueue - 1));
            nvme_.write(kNvmeAsq, 8, asq_a);
            nvme_.write(kNvmeAcq, 8, acq_a);
            // EN, 64-byte SQ and 16-byte CQ entries, 4 KiB pages
            nvme_.write(kNvmeCc, 4, r.chance(90) ? 1 | 6 << 16 | 4 << 20 : uint32_t(r.next()));
            nvme_tail_[0] = nvme_tail_[1] = 0;
        }
        bool io = r.chance(50);
        uint32_t c[16] = {};
        static const uint8_t admin[] = {0x06, 0x05, 0x01, 0x02, 0x09, 0x0a};
        static const uint8_t ios[] = {0x02, 0x01, 0x00, 0x08, 0x05};
        uint8_t opcode = io ? r.pick(ios) : r.pick(admin);
        c[0] = opcode | uint32_t(r.below(65536)) << 16;
        c[1] = r.chance(90) ? 1 : uint32_t(r.next());      // namespace
        c[6] = dma_address(r);                              // PRP1
        c[8] = dma_address(r) & ~uint32_t(kPage - 1);      // PRP2: a page
        c[10] = uint32_t(r.next());
        c[11] = uint32_t(r.next());
        c[12] = uint32_t(r.below(8));                       // NLB: up to 4 KiB
        if (!io && (opcode == 0x05 || opcode == 0x01)) {    // create I/O CQ, SQ 1
            c[6] = uint32_t(opcode == 0x05 ? iocq_a : iosq_a);
            c[10] = (kNvmeQueue - 1) << 16 | 1;
            c[11] = opcode == 0x05 ? 1 : 1 << 16 | 1;
        } else if (!io && opcode == 0x02) {                 // log page: 4 KiB at most
            c[10] = (c[10] & 0xff) | uint32_t(r.below(1024)) << 16;
        }
        unsigned q = io ? 1 : 0;
        memcpy((q ? iosq : asq) + nvme_tail_[q] * 64, c, sizeof(c));
        nvme_tail_[q] = (nvme_tail_[q] + 1) % kNvmeQueue;
        nvme_.write(kNvmeDoorbells + q * 8, 4, nvme_tail_[q]);
        if (r.chance(30)) {                                 // a CQ head doorbell
            nvme_.write(kNvmeDoorbells + q * 8 + 4, 4, uint32_t(r.below(kNvmeQueue + 2)));
        }
        return " nvme-command";
    }

    // The operations and their odds: each takes the draws of 0..99 below
    // its bound and above the previous one's.
    struct Op {
        unsigned below;
        void (Hostile::*run)();
        const char *name;
    };
    static constexpr Op kOps[] = {
        {22, &Hostile::iommu_register_write, "iommu-register-write"},
        {40, &Hostile::nic_register_write, "nic-register-write"},
        {48, &Hostile::register_read, "register-read"},
        {68, &Hostile::write_ram, "write-ram"},
        {76, &Hostile::command_burst, "command-burst"},
        {94, &Hostile::nic_dma, "nic-dma"},
        {98, &Hostile::config_write, "config-write"},
        {100, &Hostile::sane_set_up, "sane-set-up"},
    };

    // One operation, chosen by its odds; returns its name.
    const char *step()
    {
        const unsigned r = unsigned(rnd_.below(100));
        for (const Op &op : kOps) {
            if (r < op.below) {
                (this->*op.run)();
                return op.name;
            }
        }
        return "";      // not reached: the last bound is 100
    }

    // The disk controllers: q35's ICH9 AHCI (port 0 at ABAR + 0x100) and
    // QEMU's NVMe controller.
    static constexpr unsigned kDiskOdds = 6;        // percent of operations
    static constexpr size_t kAhciAbarSize = 0x1000;
    static constexpr uint64_t kAhciGhc = 0x04, kAhciPxClb = 0x100, kAhciPxFb = 0x108,
        kAhciPxIs = 0x110, kAhciPxCmd = 0x118, kAhciPxSctl = 0x12c, kAhciPxSact = 0x134,
        kAhciPxCi = 0x138;
    static constexpr size_t kNvmeBarSize = 0x2000;
    static constexpr uint64_t kNvmeCc = 0x14, kNvmeAqa = 0x24, kNvmeAsq = 0x28, kNvmeAcq = 0x30,
        kNvmeDoorbells = 0x1000;
    static constexpr uint32_t kNvmeQueue = 16;

    Random rnd_;
    Random disk_rnd_;           // the disk commands' own
    Ram ram_;
    Window iommu_, nic_, ahci_, nvme_;
    unsigned nvme_tail_[2] = {};
    int nic_config_ = -1, iommu_config_ = -1;
    uint16_t nic_ats_ = 0;
    uint16_t nic_pasid_ = 0, nic_pri_ = 0;     // ioguard-nic with pri=on
    static constexpr uint16_t kPciExtCapAts = 0x000f;
    static constexpr uint16_t kPciExtCapPri = 0x0013;
    static constexpr uint16_t kPciExtCapPasid = 0x001b;
    uint8_t iommu_cap_ = 0, iommu_msi_ = 0, nic_msi_ = 0;
    uint64_t ram_end_ = 0;
};

bool parse(const char *s, uint64_t *out)
{
    char *end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end) {
        return false;
    }
    *out = v;
    return true;
}

}  // namespace

int main(int argc, char **argv)
{
    uint64_t seed = 0, ops = 0, trace_from = UINT64_MAX;
    if (argc < 3 || argc > 4 || !parse(argv[1], &seed) || !parse(argv[2], &ops) ||
        (argc == 4 && !parse(argv[3], &trace_from))) {
        fprintf(stderr, "usage: ioguard-hostile SEED OPS [TRACE_FROM]\n");
        return 2;
    }
    Hostile hostile(seed);
    hostile.set_up();
    hostile.run(seed, ops, trace_from);
    return 0;
}
