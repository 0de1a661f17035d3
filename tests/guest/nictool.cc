// ioguard-nictool: what ethtool and a packet generator would do for
// ioguard-nic inside the busybox guest (which has neither).
//
//   ioguard-nictool stats IFNAME
//       every ethtool statistic of IFNAME, one per line:
//         IOGUARD-NICSTAT IFNAME NAME VALUE
//   ioguard-nictool loopback IFNAME on|off
//       turn the NIC's internal loopback (the "loopback" feature,
//       NETIF_F_LOOPBACK) on or off
//   ioguard-nictool copybreak IFNAME BYTES
//       set the tx-copybreak tunable (ethtool --set-tunable IFNAME
//       tx-copybreak BYTES), read it back and print
//         IOGUARD-COPYBREAK IFNAME BYTES
//   ioguard-nictool loop IFNAME FRAME_BYTES COUNT [WINDOW]
//       send COUNT frames of FRAME_BYTES (Ethernet header included, 60..16384)
//       to our own MAC with EtherType 0x88b5, at most WINDOW (default 64) in
//       flight, receive them back through the NIC in loopback and check
//       every byte, then print
//         IOGUARD-NICLOOP IFNAME FRAME_BYTES sent=N received=N corrupt=N
//           lost=N duplicate=N ns=ELAPSED pps=X mibps=Y sha256=HEX
//           sent_sha256=HEX
//       (one line). A frame's payload (everything after the 14-byte header)
//       is its sequence number (8 bytes, big-endian) followed by bytes of a
//       pseudo-random stream seeded by the frame size and that number.
//       received counts the distinct sequence numbers that came back (intact
//       or not), corrupt the frames whose bytes differ from what was sent,
//       lost = COUNT - received; 2 s without progress ends the run. sha256
//       is over the received payloads in sequence order, sent_sha256 over the
//       sent ones: equal when nothing was lost or damaged. ns runs from the
//       first frame sent to the last one received; pps and mibps are received
//       frames and frame bytes per second.
//       Frames are sent through a PACKET_TX_RING, so that the kernel hands
//       the driver skbs whose payload sits in page fragments of the ring (a
//       14-byte head and one or two fragments, some crossing a page
//       boundary): the driver's scatter/gather paths, not only linear
//       buffers. IOGUARD_NICTOOL_TX=copy sends with send() instead (linear
//       skbs below a page).
//
// Exit status: 0 on success (for loop: everything came back intact), 1 when
// the command failed, 2 on a usage error, 3 when loop lost, damaged or
// duplicated frames (the result line is printed all the same).
// Built static by scripts/build-guest.
#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <vector>

namespace {

// SHA-256 (FIPS 180-4)

class Sha256 {
public:
    Sha256() { reset(); }

    void reset()
    {
        static const uint32_t init[8] = {
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
        };
        std::copy(init, init + 8, h_);
        total_ = 0;
        fill_ = 0;
    }

    void update(const uint8_t *p, size_t n)
    {
        total_ += n;
        if (fill_) {
            size_t take = std::min(n, sizeof(buf_) - fill_);
            memcpy(buf_ + fill_, p, take);
            fill_ += take;
            p += take;
            n -= take;
            if (fill_ == sizeof(buf_)) {
                block(buf_);
                fill_ = 0;
            }
        }
        for (; n >= 64; p += 64, n -= 64) {
            block(p);
        }
        memcpy(buf_, p, n);
        fill_ += n;
    }

    std::string hex()
    {
        uint64_t bits = total_ * 8;
        uint8_t pad[72] = { 0x80 };
        size_t padlen = (fill_ < 56 ? 56 : 120) - fill_;
        for (int i = 0; i < 8; i++) {
            pad[padlen + i] = uint8_t(bits >> (56 - 8 * i));
        }
        update(pad, padlen + 8);
        std::string out;
        char b[9];
        for (uint32_t v : h_) {
            snprintf(b, sizeof(b), "%08x", v);
            out += b;
        }
        return out;
    }

private:
    static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

    void block(const uint8_t *p)
    {
        static const uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b,
            0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
            0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7,
            0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
            0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152,
            0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
            0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
            0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
            0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
            0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
            0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
        };
        uint32_t w[64];
        for (int i = 0; i < 16; i++) {
            w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 |
                   uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
        }
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3];
        uint32_t e = h_[4], f = h_[5], g = h_[6], h = h_[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) +
                          ((e & f) ^ (~e & g)) + k[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) +
                          ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        h_[0] += a; h_[1] += b; h_[2] += c; h_[3] += d;
        h_[4] += e; h_[5] += f; h_[6] += g; h_[7] += h;
    }

    uint32_t h_[8];
    uint8_t buf_[64];
    size_t fill_;
    uint64_t total_;
};

// Helpers

long long now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

[[noreturn]] void fail(const char *fmt, const char *a = "", const char *b = "")
{
    fprintf(stderr, "ioguard-nictool: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    exit(1);
}

bool parse_number(const char *s, long long lo, long long hi, long long *out)
{
    char *end = nullptr;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

// ethtool through SIOCETHTOOL

class Ethtool {
public:
    explicit Ethtool(const char *ifname) : ifname_(ifname)
    {
        if (strlen(ifname) >= IFNAMSIZ) {
            fail("interface name too long: %s", ifname);
        }
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd_ < 0) {
            fail("socket: %s", strerror(errno));
        }
    }
    ~Ethtool() { close(fd_); }

    // 0 or an errno
    int call(void *cmd)
    {
        ifreq ifr = {};
        strncpy(ifr.ifr_name, ifname_, IFNAMSIZ - 1);
        ifr.ifr_data = static_cast<char *>(cmd);
        return ioctl(fd_, SIOCETHTOOL, &ifr) < 0 ? errno : 0;
    }

    void must(void *cmd, const char *what)
    {
        int err = call(cmd);
        if (err) {
            fail("%s: %s", what, strerror(err));
        }
    }

    // How many strings a string set has.
    uint32_t set_size(uint32_t set)
    {
        std::vector<uint8_t> buf(sizeof(ethtool_sset_info) + sizeof(uint32_t));
        auto *info = reinterpret_cast<ethtool_sset_info *>(buf.data());
        info->cmd = ETHTOOL_GSSET_INFO;
        info->sset_mask = 1ULL << set;
        must(info, "ETHTOOL_GSSET_INFO");
        if (!(info->sset_mask & (1ULL << set))) {
            fail("%s has no such ethtool string set", ifname_);
        }
        return info->data[0];
    }

    std::vector<std::string> strings(uint32_t set, uint32_t n)
    {
        std::vector<uint8_t> buf(sizeof(ethtool_gstrings) + size_t(n) * ETH_GSTRING_LEN);
        auto *gs = reinterpret_cast<ethtool_gstrings *>(buf.data());
        gs->cmd = ETHTOOL_GSTRINGS;
        gs->string_set = set;
        gs->len = n;
        must(gs, "ETHTOOL_GSTRINGS");
        std::vector<std::string> out;
        for (uint32_t i = 0; i < std::min(n, gs->len); i++) {
            const char *s = reinterpret_cast<const char *>(gs->data) + i * ETH_GSTRING_LEN;
            out.emplace_back(s, strnlen(s, ETH_GSTRING_LEN));
        }
        return out;
    }

private:
    const char *ifname_;
    int fd_;
};

int cmd_stats(const char *ifname)
{
    Ethtool et(ifname);
    uint32_t n = et.set_size(ETH_SS_STATS);
    std::vector<std::string> names = et.strings(ETH_SS_STATS, n);

    std::vector<uint8_t> buf(sizeof(ethtool_stats) + size_t(n) * sizeof(uint64_t));
    auto *st = reinterpret_cast<ethtool_stats *>(buf.data());
    st->cmd = ETHTOOL_GSTATS;
    st->n_stats = n;
    et.must(st, "ETHTOOL_GSTATS");
    for (uint32_t i = 0; i < std::min<uint32_t>(st->n_stats, names.size()); i++) {
        printf("IOGUARD-NICSTAT %s %s %llu\n", ifname, names[i].c_str(),
               static_cast<unsigned long long>(st->data[i]));
    }
    return 0;
}

int cmd_loopback(const char *ifname, bool on)
{
    Ethtool et(ifname);
    uint32_t n = et.set_size(ETH_SS_FEATURES);
    std::vector<std::string> names = et.strings(ETH_SS_FEATURES, n);
    auto it = std::find(names.begin(), names.end(), "loopback");
    if (it == names.end()) {
        fail("%s: the kernel names no \"loopback\" feature", ifname);
    }
    const uint32_t bit = uint32_t(it - names.begin());
    const uint32_t blocks = (n + 31) / 32;

    std::vector<uint8_t> get(sizeof(ethtool_gfeatures) +
                             blocks * sizeof(ethtool_get_features_block));
    auto *gf = reinterpret_cast<ethtool_gfeatures *>(get.data());
    gf->cmd = ETHTOOL_GFEATURES;
    gf->size = blocks;
    et.must(gf, "ETHTOOL_GFEATURES");
    if (!(gf->features[bit / 32].available & (1u << (bit % 32)))) {
        fail("%s cannot change its loopback feature", ifname);
    }

    std::vector<uint8_t> set(sizeof(ethtool_sfeatures) +
                             blocks * sizeof(ethtool_set_features_block));
    auto *sf = reinterpret_cast<ethtool_sfeatures *>(set.data());
    sf->cmd = ETHTOOL_SFEATURES;
    sf->size = blocks;
    sf->features[bit / 32].valid = 1u << (bit % 32);
    sf->features[bit / 32].requested = on ? 1u << (bit % 32) : 0;
    et.must(sf, "ETHTOOL_SFEATURES");

    // A positive answer of SFEATURES only says "not all as wished": look.
    et.must(gf, "ETHTOOL_GFEATURES");
    bool active = gf->features[bit / 32].active & (1u << (bit % 32));
    if (active != on) {
        fail("%s: loopback is still %s", ifname, active ? "on" : "off");
    }
    return 0;
}

// loop

constexpr uint16_t kEtherType = 0x88b5;     // IEEE local experimental
constexpr size_t kHeader = 14;
constexpr long long kStallNs = 2000000000LL;

// The payload of frame `seq`: seq (8 bytes, big-endian), then a
// pseudo-random stream (xorshift64*) seeded by the frame size and seq.
void make_payload(uint64_t seq, size_t frame_bytes, uint8_t *p, size_t len)
{
    for (int i = 0; i < 8; i++) {
        p[i] = uint8_t(seq >> (56 - 8 * i));
    }
    uint64_t x = (0x9e3779b97f4a7c15ULL * (seq + 1)) ^ (frame_bytes << 32) ^
                 0x10a1ULL;
    x = x ? x : 1;
    for (size_t i = 8; i < len; i += 8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = x * 0x2545f4914f6cdd1dULL;
        for (size_t j = 0; j < 8 && i + j < len; j++) {
            p[i + j] = uint8_t(v >> (8 * j));
        }
    }
}

enum : uint8_t { kMissing, kIntact, kCorrupt };

// A PACKET_TX_RING (TPACKET_V2): frames are written into a shared ring and
// sent by one send() for all of them.
class TxRing {
public:
    ~TxRing()
    {
        if (map_) {
            munmap(map_, len_);
        }
    }

    // False if the kernel offers no TX ring: send() then.
    bool setup(int fd, size_t frame_bytes, unsigned frames)
    {
        int version = TPACKET_V2;
        if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0) {
            return false;
        }
        const size_t page = size_t(sysconf(_SC_PAGESIZE));
        // Frames are packed back to back in one block: many of them cross
        // a page boundary, and their payload becomes two fragments.
        frame_size_ = TPACKET_ALIGN(TPACKET2_HDRLEN + frame_bytes);
        tpacket_req req = {};
        req.tp_frame_size = unsigned(frame_size_);
        req.tp_block_size = unsigned((frame_size_ * frames + page - 1) / page * page);
        req.tp_block_nr = 1;
        req.tp_frame_nr = unsigned(req.tp_block_size / frame_size_);
        if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
            return false;
        }
        len_ = req.tp_block_size;
        void *m = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            fail("mmap of the TX ring: %s", strerror(errno));
        }
        map_ = static_cast<uint8_t *>(m);
        frames_ = req.tp_frame_nr;
        fd_ = fd;
        return true;
    }

    explicit operator bool() const { return map_ != nullptr; }

    // Queue one frame; false while the next slot is still being sent.
    bool queue(const uint8_t *frame, size_t len)
    {
        uint8_t *slot = map_ + next_ * frame_size_;
        auto *h = reinterpret_cast<tpacket2_hdr *>(slot);
        const uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
        if (status == TP_STATUS_WRONG_FORMAT) {
            fail("the kernel refused a frame in the TX ring (wrong format)");
        }
        if (status != TP_STATUS_AVAILABLE) {
            return false;
        }
        memcpy(slot + TPACKET2_HDRLEN - sizeof(sockaddr_ll), frame, len);
        h->tp_len = uint32_t(len);
        __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        next_ = (next_ + 1) % frames_;
        pending_ = true;
        return true;
    }

    // Send what is queued: 0, or an errno (EAGAIN and ENOBUFS leave the
    // frames queued for the next flush).
    int flush()
    {
        if (!pending_) {
            return 0;
        }
        if (send(fd_, nullptr, 0, MSG_DONTWAIT) < 0) {
            return errno;
        }
        pending_ = false;
        return 0;
    }

private:
    uint8_t *map_ = nullptr;
    size_t len_ = 0, frame_size_ = 0;
    unsigned frames_ = 0, next_ = 0;
    int fd_ = -1;
    bool pending_ = false;
};

int cmd_loop(const char *ifname, long long frame_bytes, long long count,
             long long window)
{
    const unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex) {
        fail("no interface %s", ifname);
    }
    int fd = socket(AF_PACKET, SOCK_RAW, htons(kEtherType));
    if (fd < 0) {
        fail("AF_PACKET socket: %s (root needed)", strerror(errno));
    }
    ifreq ifr = {};
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
        fail("SIOCGIFHWADDR %s: %s", ifname, strerror(errno));
    }
    uint8_t mac[6];
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);

    sockaddr_ll sll = {};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(kEtherType);
    sll.sll_ifindex = int(ifindex);
    if (bind(fd, reinterpret_cast<sockaddr *>(&sll), sizeof(sll)) < 0) {
        fail("bind to %s: %s", ifname, strerror(errno));
    }
    // Our own frames on their way out are no business of ours.
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) {
        fail("PACKET_IGNORE_OUTGOING: %s", strerror(errno));
    }
    // Room for a whole window (a page-sized RX buffer each, and then some)
    // so that the socket itself never drops one.
    int bufsize = int(std::max<long long>(4 << 20, window * (frame_bytes + 8192) * 2));
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) < 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)) < 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    }

    TxRing ring;
    const char *txmode = getenv("IOGUARD_NICTOOL_TX");
    if (!(txmode && !strcmp(txmode, "copy"))) {
        ring.setup(fd, size_t(frame_bytes), unsigned(std::min<long long>(window, 256)));
    }

    const size_t plen = size_t(frame_bytes) - kHeader;
    std::vector<uint8_t> tx(frame_bytes), rx(65536), want(plen);
    memcpy(&tx[0], mac, 6);             // to ourselves
    memcpy(&tx[6], mac, 6);
    tx[12] = kEtherType >> 8;
    tx[13] = kEtherType & 0xff;

    std::vector<uint8_t> state(size_t(count), kMissing);
    std::map<uint64_t, std::vector<uint8_t>> damaged;   // corrupt payloads by seq
    Sha256 sent_hash;
    long long sent = 0, received = 0, corrupt = 0, duplicate = 0;
    const long long start = now_ns();
    long long last_rx = start, last_progress = start;

    while (received < count) {
        bool progress = false;
        // Send while the window has room.
        while (sent < count && sent - received < window) {
            make_payload(uint64_t(sent), size_t(frame_bytes), &tx[kHeader], plen);
            if (ring) {
                if (!ring.queue(tx.data(), tx.size())) {
                    break;              // every slot in flight: later
                }
                sent_hash.update(&tx[kHeader], plen);
                sent++;
                progress = true;
                continue;
            }
            ssize_t n = send(fd, tx.data(), tx.size(), MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)) {
                break;                  // the queue is full: try again later
            }
            if (n < 0 && errno == EMSGSIZE) {
                char size[32];
                snprintf(size, sizeof(size), "%lld", frame_bytes);
                fail("%s-byte frames exceed the MTU of %s + 14: raise it "
                     "(ip link set IFNAME mtu N)", size, ifname);
            }
            if (n != ssize_t(tx.size())) {
                fail("send on %s: %s", ifname, n < 0 ? strerror(errno) : "short");
            }
            sent_hash.update(&tx[kHeader], plen);
            sent++;
            progress = true;
        }
        if (ring) {
            int err = ring.flush();
            if (err == EMSGSIZE) {
                char size[32];
                snprintf(size, sizeof(size), "%lld", frame_bytes);
                fail("%s-byte frames exceed the MTU of %s + 14: raise it "
                     "(ip link set IFNAME mtu N)", size, ifname);
            }
            if (err && err != EAGAIN && err != ENOBUFS && err != EINTR) {
                fail("send on %s: %s", ifname, strerror(err));
            }
        }
        // Take whatever came back.
        for (;;) {
            sockaddr_ll from = {};
            socklen_t fromlen = sizeof(from);
            ssize_t n = recvfrom(fd, rx.data(), rx.size(), MSG_DONTWAIT | MSG_TRUNC,
                                 reinterpret_cast<sockaddr *>(&from), &fromlen);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    break;
                }
                fail("recv on %s: %s", ifname, strerror(errno));
            }
            if (from.sll_pkttype == PACKET_OUTGOING) {
                continue;
            }
            const size_t got = std::min<size_t>(size_t(n), rx.size());
            uint64_t seq = UINT64_MAX;
            if (got >= kHeader + 8) {
                seq = 0;
                for (int i = 0; i < 8; i++) {
                    seq = seq << 8 | rx[kHeader + i];
                }
            }
            if (seq >= uint64_t(sent)) {
                corrupt++;              // no frame of ours: cannot place it
                continue;
            }
            if (state[seq] != kMissing) {
                duplicate++;
                continue;
            }
            make_payload(seq, size_t(frame_bytes), want.data(), plen);
            bool intact = size_t(n) == size_t(frame_bytes) &&
                          !memcmp(rx.data(), tx.data(), kHeader) &&
                          !memcmp(&rx[kHeader], want.data(), plen);
            if (intact) {
                state[seq] = kIntact;
            } else {
                state[seq] = kCorrupt;
                corrupt++;
                damaged[seq].assign(rx.begin() + std::min(got, kHeader), rx.begin() + got);
            }
            received++;
            last_rx = now_ns();
            progress = true;
        }
        const long long now = now_ns();
        if (progress) {
            last_progress = now;
        } else if (now - last_progress >= kStallNs) {
            break;                      // the rest is lost
        }
        if (received < count) {
            pollfd pfd = { fd, POLLIN, 0 };
            if (sent < count && sent - received < window) {
                pfd.events |= POLLOUT;
            }
            long long left_ms = (kStallNs - (now - last_progress)) / 1000000 + 1;
            // A full qdisc does not make the socket unwritable: don't spin.
            poll(&pfd, 1, int(std::min<long long>(left_ms, progress ? 0 : 10)));
        }
    }

    const long long elapsed = (received ? last_rx : now_ns()) - start;
    Sha256 rx_hash;
    for (long long seq = 0; seq < count; seq++) {
        if (state[seq] == kIntact) {
            make_payload(uint64_t(seq), size_t(frame_bytes), want.data(), plen);
            rx_hash.update(want.data(), plen);
        } else if (state[seq] == kCorrupt) {
            const std::vector<uint8_t> &d = damaged[uint64_t(seq)];
            rx_hash.update(d.data(), d.size());
        }
    }
    const long long lost = count - received;
    const double secs = elapsed > 0 ? elapsed / 1e9 : 1e-9;
    printf("IOGUARD-NICLOOP %s %lld sent=%lld received=%lld corrupt=%lld lost=%lld "
           "duplicate=%lld ns=%lld pps=%.1f mibps=%.2f sha256=%s sent_sha256=%s\n",
           ifname, frame_bytes, sent, received, corrupt, lost, duplicate, elapsed,
           received / secs, received * double(frame_bytes) / (1 << 20) / secs,
           rx_hash.hex().c_str(), sent_hash.hex().c_str());
    fflush(stdout);

    if (lost || corrupt || duplicate) {
        tpacket_stats ps = {};
        socklen_t pslen = sizeof(ps);
        getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &ps, &pslen);
        fprintf(stderr, "ioguard-nictool: %s: %lld lost, %lld corrupt, %lld duplicate "
                        "(socket drops: %u)\n",
                ifname, lost, corrupt, duplicate, ps.tp_drops);
        close(fd);
        return 3;
    }
    close(fd);
    return 0;
}

int cmd_copybreak(const char *ifname, uint32_t bytes)
{
    Ethtool et(ifname);
    // The tunable's value follows the header (its flexible array).
    std::vector<uint8_t> buf(sizeof(ethtool_tunable) + sizeof(uint32_t));
    auto *tuna = reinterpret_cast<ethtool_tunable *>(buf.data());
    uint8_t *value = buf.data() + sizeof(ethtool_tunable);
    tuna->cmd = ETHTOOL_STUNABLE;
    tuna->id = ETHTOOL_TX_COPYBREAK;
    tuna->type_id = ETHTOOL_TUNABLE_U32;
    tuna->len = sizeof(uint32_t);
    memcpy(value, &bytes, sizeof(bytes));
    et.must(tuna, "ETHTOOL_STUNABLE tx-copybreak");
    tuna->cmd = ETHTOOL_GTUNABLE;
    uint32_t now = ~0u;
    memcpy(value, &now, sizeof(now));
    et.must(tuna, "ETHTOOL_GTUNABLE tx-copybreak");
    memcpy(&now, value, sizeof(now));
    printf("IOGUARD-COPYBREAK %s %u\n", ifname, now);
    return now == bytes ? 0 : 1;
}

[[noreturn]] void usage()
{
    fprintf(stderr,
            "usage: ioguard-nictool stats IFNAME\n"
            "       ioguard-nictool loopback IFNAME on|off\n"
            "       ioguard-nictool copybreak IFNAME BYTES\n"
            "       ioguard-nictool loop IFNAME FRAME_BYTES COUNT [WINDOW]\n"
            "         FRAME_BYTES 60..16384 (header included), COUNT >= 1,\n"
            "         WINDOW 1..4096 frames in flight (default 64)\n");
    exit(2);
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc < 3) {
        usage();
    }
    const std::string cmd = argv[1];
    const char *ifname = argv[2];
    if (cmd == "stats" && argc == 3) {
        return cmd_stats(ifname);
    }
    if (cmd == "loopback" && argc == 4) {
        const std::string mode = argv[3];
        if (mode != "on" && mode != "off") {
            usage();
        }
        return cmd_loopback(ifname, mode == "on");
    }
    if (cmd == "copybreak" && argc == 4) {
        long long bytes;
        if (!parse_number(argv[3], 0, UINT32_MAX, &bytes)) {
            usage();
        }
        return cmd_copybreak(ifname, uint32_t(bytes));
    }
    if (cmd == "loop" && (argc == 5 || argc == 6)) {
        long long frame_bytes, count, window = 64;
        if (!parse_number(argv[3], 60, 16384, &frame_bytes) ||
            !parse_number(argv[4], 1, 1LL << 30, &count) ||
            (argc == 6 && !parse_number(argv[5], 1, 4096, &window))) {
            usage();
        }
        return cmd_loop(ifname, frame_bytes, count, window);
    }
    usage();
}
