// ioguard-svatool: shared virtual addressing with ioguard-nic's test
// engine, from a process's side. The NIC's driver binds this process's
// address space to the device for each command written to its dma_test
// file (sva-read, sva-write), so the device reaches our own pointers,
// through our PASID:
//
//   ioguard-svatool DMA_TEST_FILE
//
// prints one line per case, IOGUARD-SVA CASE ok|FAILED DETAILS:
//   present        a malloc()ed buffer we filled: the device reads it, CRC
//                  checked
//   faulted-read   pages we mapped but never touched: the device's reads
//                  fault them in (page requests), zeros
//   faulted-write  the same for writes: the device fills them, we find its
//                  pattern in our memory
//   refused        an address we never mapped: the device's page request
//                  fails and the driver reports te-page (code 10)
// and exits 0 if every case passed. The binary is static and not
// position-independent, so malloc()'s heap sits below 4 GiB, where the
// 32-bit device can reach it; the mappings are placed there too.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr size_t kLen = 16384;          // four pages
constexpr uintptr_t kFaultedRead = 0x20000000;
constexpr uintptr_t kFaultedWrite = 0x20100000;
constexpr uintptr_t kNeverMapped = 0x30000000;
constexpr unsigned kTePage = 10;        // NIC_ERR_TE_PAGE

// zlib's CRC-32, as the device computes it.
uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffff;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320u & -(c & 1));
        }
    }
    return ~c;
}

// One command to the driver, and its result line.
std::string command(const char *file, const std::string &cmd)
{
    int fd = open(file, O_RDWR);
    if (fd < 0) {
        perror(file);
        exit(1);
    }
    if (write(fd, cmd.data(), cmd.size()) < 0) {
        perror("dma_test command");
    }
    char line[256] = {};
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, line, sizeof(line) - 1);
    close(fd);
    std::string r(line, n > 0 ? size_t(n) : 0);
    while (!r.empty() && r.back() == '\n') {
        r.pop_back();
    }
    return r;
}

std::string hex(uintptr_t v)
{
    char b[32];
    snprintf(b, sizeof(b), "0x%" PRIxPTR, v);
    return b;
}

bool report(const char *name, bool ok, const std::string &detail)
{
    printf("IOGUARD-SVA %s %s %s\n", name, ok ? "ok" : "FAILED",
           detail.c_str());
    fflush(stdout);
    return ok;
}

void *map_at(uintptr_t at)
{
    void *p = mmap(reinterpret_cast<void *>(at), kLen,
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || reinterpret_cast<uintptr_t>(p) != at) {
        perror("mmap");
        exit(1);
    }
    return p;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DMA_TEST_FILE\n", argv[0]);
        return 2;
    }
    const char *file = argv[1];
    bool all = true;

    // present: our own heap, filled by us.
    auto *buf = static_cast<uint8_t *>(malloc(kLen));
    const uintptr_t at = reinterpret_cast<uintptr_t>(buf);
    if (!buf || at + kLen > (uintptr_t{1} << 32)) {
        return report("present", false, "malloc() gave " + hex(at)) ? 0 : 1;
    }
    for (size_t i = 0; i < kLen; i++) {
        buf[i] = uint8_t(i * 13 + 7);
    }
    char want[16];
    snprintf(want, sizeof(want), "crc=0x%08x", crc32(buf, kLen));
    std::string r = command(file, "sva-read " + hex(at) + " " +
                                      std::to_string(kLen));
    all &= report("present", r.rfind("ok", 0) == 0 &&
                                 r.find(want) != std::string::npos,
                  "addr=" + hex(at) + " " + r);

    // faulted-read: mapped, never touched: zero pages, faulted in.
    map_at(kFaultedRead);
    std::string zeros(kLen, '\0');
    snprintf(want, sizeof(want), "crc=0x%08x",
             crc32(reinterpret_cast<const uint8_t *>(zeros.data()), kLen));
    r = command(file, "sva-read " + hex(kFaultedRead) + " " +
                          std::to_string(kLen));
    all &= report("faulted-read", r.rfind("ok", 0) == 0 &&
                                      r.find(want) != std::string::npos,
                  r);

    // faulted-write: the device fills pages we never touched.
    auto *w = static_cast<uint8_t *>(map_at(kFaultedWrite));
    r = command(file, "sva-write " + hex(kFaultedWrite) + " " +
                          std::to_string(kLen) + " 0x5a");
    bool filled = true;
    for (size_t i = 0; i < kLen; i++) {
        filled &= w[i] == 0x5a;
    }
    all &= report("faulted-write", r.rfind("ok", 0) == 0 && filled,
                  r + (filled ? " memory=0x5a" : " memory=WRONG"));

    // refused: nothing there.
    r = command(file, "sva-read " + hex(kNeverMapped) + " 4096");
    all &= report("refused",
                  r.rfind("error", 0) == 0 &&
                      r.find("code=" + std::to_string(kTePage)) !=
                          std::string::npos &&
                      r.find("addr=" + std::string("0x30000000")) !=
                          std::string::npos,
                  r);
    return all ? 0 : 1;
}
