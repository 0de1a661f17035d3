// ioguard-readbench: guest-side throughput of a block device.
//
//   ioguard-readbench DEVICE BLOCK_BYTES TOTAL_BYTES [random|write]
//
// Reads TOTAL_BYTES in BLOCK_BYTES requests with O_DIRECT (so each request
// reaches the device as it is, past the page cache): sequentially, starting
// over at the end of the device, or with "random" at block-aligned offsets
// from a fixed-seed generator. With "write" it writes them sequentially
// instead (the device then DMA-reads each block from memory), which
// destroys what the device held. Prints
//   IOGUARD-BENCH DEVICE BLOCK_BYTES BYTES NANOSECONDS [random|write]
// Built static by scripts/build-guest and run by the guest's init.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

static long long now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const bool random = argc == 5 && !strcmp(argv[4], "random");
    const bool writing = argc == 5 && !strcmp(argv[4], "write");
    if (argc != 4 && !random && !writing) {
        fprintf(stderr, "usage: %s DEVICE BLOCK_BYTES TOTAL_BYTES "
                        "[random|write]\n", argv[0]);
        return 2;
    }
    const char *dev = argv[1];
    const long long block = atoll(argv[2]);
    const long long total = atoll(argv[3]);
    if (block <= 0 || block % 4096 || total < block) {
        fprintf(stderr, "block must be a positive multiple of 4096 and "
                        "at most total\n");
        return 2;
    }
    int fd = open(dev, (writing ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", dev, strerror(errno));
        return 1;
    }
    const long long device_bytes = lseek(fd, 0, SEEK_END) / block * block;
    if (device_bytes < block) {
        fprintf(stderr, "%s is smaller than one block\n", dev);
        return 1;
    }
    void *buf = nullptr;
    if (posix_memalign(&buf, 4096, block)) {
        return 1;
    }
    memset(buf, 0x5a, block);   // what a write stores; touches every page
    long long done = 0;
    unsigned long long seed = 0x10f0a7d;
    const long long start = now_ns();
    while (done + block <= total) {
        long long offset = done % device_bytes;
        if (random) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            offset = (long long)((seed >> 17) % (device_bytes / block)) * block;
        }
        ssize_t n = writing ? pwrite(fd, buf, block, offset)
                          : pread(fd, buf, block, offset);
        if (n != block) {
            fprintf(stderr, "%s %s at %lld: %s\n",
                    writing ? "write" : "read", dev, offset,
                    n < 0 ? strerror(errno) : "short");
            return 1;
        }
        done += n;
    }
    const long long elapsed = now_ns() - start;
    printf("IOGUARD-BENCH %s %lld %lld %lld%s\n", dev, block, done, elapsed,
           random ? " random" : writing ? " write" : "");
    free(buf);
    close(fd);
    return 0;
}
