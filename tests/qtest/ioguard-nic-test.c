/*
 * qtests for ioguard-nic: the device alone (rings, loopback, a real socket
 * backend, the test engine, hostile programming) and one test behind
 * ioguard-iommu, where a refused DMA must come back as a device error and
 * an IO_PAGE_FAULT for the NIC's requester.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include "libqtest.h"
#include "ioguard-migration.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "libqos/pci-pc.h"
#include "qemu/bswap.h"
#include "qemu/sockets.h"
#include "standard-headers/linux/pci_regs.h"
#include "hw/ioguard/nic-regs.h"
#include "ioguard-iommu-driver.h"    /* DEV_TABLE, EVENT_LOG */

#define NIC_DEVFN       QPCI_DEVFN(5, 0)
#define NIC_MAC         "52:54:00:12:34:56"

/* Guest-physical layout */
#define TX_RING         0x100000
#define RX_RING         0x110000
#define TX_BUF          0x200000
#define RX_BUF          0x300000
#define TE_BUF          0x400000
#define UNASSIGNED      0xd0000000u     /* PCI hole, no BAR there */

typedef struct Nic {
    QTestState *qts;
    QPCIBus *pcibus;
    QPCIDevice *dev;
    QPCIBar bar;
    int sock;                   /* our end of -netdev socket, or -1 */
    uint32_t tx_tail, rx_tail;
} Nic;

/*
 * iommu: ioguard-iommu's properties (NULL: no IOMMU), which comes before
 * the NIC as it must.
 */
static void nic_start_full(Nic *n, const char *iommu, const char *extra,
                           bool with_socket)
{
    const char *fw = g_getenv("IOGUARD_FIRMWARE");
    int pair[2] = { -1, -1 };
    g_autofree char *netdev = NULL;

    memset(n, 0, sizeof(*n));
    if (with_socket) {
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), ==, 0);
        netdev = g_strdup_printf("-netdev socket,fd=%d,id=n0", pair[1]);
    } else {
        netdev = g_strdup("-netdev hubport,hubid=0,id=n0");
    }
    n->qts = qtest_initf("%s%s -M q35 -m 256M -nodefaults %s%s %s "
                         "-device ioguard-nic,addr=0x5,netdev=n0,mac=" NIC_MAC
                         "%s", fw ? "-L " : "", fw ? fw : "",
                         iommu ? "-device ioguard-iommu," : "",
                         iommu ? iommu : "", netdev, extra);
    if (with_socket) {
        close(pair[1]);
    }
    n->sock = pair[0];
    n->pcibus = qpci_new_pc(n->qts, NULL);
    n->dev = qpci_device_find(n->pcibus, NIC_DEVFN);
    g_assert(n->dev);
    qpci_device_enable(n->dev);
    n->bar = qpci_iomap(n->dev, IOGUARD_NIC_BAR, NULL);
}

static void nic_start(Nic *n, const char *extra, bool with_socket)
{
    nic_start_full(n, NULL, extra, with_socket);
}

static void nic_stop(Nic *n)
{
    if (n->sock >= 0) {
        close(n->sock);
    }
    g_free(n->dev);
    qpci_free_pc(n->pcibus);
    qtest_quit(n->qts);
}

static uint32_t rd(Nic *n, uint32_t reg)
{
    return qpci_io_readl(n->dev, n->bar, reg);
}

static void wr(Nic *n, uint32_t reg, uint32_t val)
{
    qpci_io_writel(n->dev, n->bar, reg, val);
}

/* The device works in bottom halves: each register read lets them run. */
static uint32_t wait_reg(Nic *n, uint32_t reg, uint32_t want)
{
    uint32_t v = 0;

    for (int i = 0; i < 5000; i++) {
        v = rd(n, reg);
        if (v == want) {
            break;
        }
        g_usleep(1000);
    }
    return v;
}

static void put_desc(Nic *n, uint64_t at, uint32_t addr, uint16_t len,
                     uint16_t flags)
{
    struct ioguard_nic_desc d = {
        .addr = cpu_to_le32(addr), .len = cpu_to_le16(len),
        .flags = cpu_to_le16(flags),
    };
    qtest_memwrite(n->qts, at, &d, sizeof(d));
}

static struct ioguard_nic_desc get_desc(Nic *n, uint64_t at)
{
    struct ioguard_nic_desc d;

    qtest_memread(n->qts, at, &d, sizeof(d));
    d.addr = le32_to_cpu(d.addr);
    d.len = le16_to_cpu(d.len);
    d.flags = le16_to_cpu(d.flags);
    d.status = le16_to_cpu(d.status);
    d.written_len = le16_to_cpu(d.written_len);
    return d;
}

static void setup_rings(Nic *n, uint32_t size, uint32_t ctrl)
{
    qtest_memset(n->qts, TX_RING, 0, size * NIC_DESC_SIZE);
    qtest_memset(n->qts, RX_RING, 0, size * NIC_DESC_SIZE);
    wr(n, NIC_REG_TX_RING_SIZE, size);
    wr(n, NIC_REG_TX_RING_BASE, TX_RING);
    wr(n, NIC_REG_RX_RING_SIZE, size);
    wr(n, NIC_REG_RX_RING_BASE, RX_RING);
    wr(n, NIC_REG_INT_MASK, NIC_INT_ALL);
    wr(n, NIC_REG_CTRL, NIC_CTRL_TX_EN | NIC_CTRL_RX_EN | ctrl);
    n->tx_tail = n->rx_tail = 0;
}

/* Post count RX buffers of buf_len bytes each. */
static void post_rx(Nic *n, uint32_t size, int count, uint16_t buf_len)
{
    for (int i = 0; i < count; i++) {
        uint32_t idx = n->rx_tail;

        put_desc(n, RX_RING + idx * NIC_DESC_SIZE, RX_BUF + idx * 0x4000,
                 buf_len, NIC_DESC_OWN);
        n->rx_tail = (idx + 1) % size;
    }
    wr(n, NIC_REG_RX_TAIL, n->rx_tail);
}

/* Queue one TX packet made of fragments of the given lengths. */
static void post_tx(Nic *n, uint32_t size, const uint16_t *frags, int count,
                    uint32_t buf)
{
    for (int i = 0; i < count; i++) {
        uint32_t idx = n->tx_tail;

        put_desc(n, TX_RING + idx * NIC_DESC_SIZE, buf, frags[i],
                 NIC_DESC_OWN | (i + 1 == count ? NIC_DESC_EOP : 0));
        buf += frags[i];
        n->tx_tail = (idx + 1) % size;
    }
    wr(n, NIC_REG_TX_TAIL, n->tx_tail);
}

static void fill_frame(uint8_t *frame, size_t len, uint8_t seed)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

    memcpy(frame, mac, 6);              /* to ourselves */
    memcpy(frame + 6, mac, 6);
    frame[12] = 0x88;
    frame[13] = 0xb5;
    for (size_t i = 14; i < len; i++) {
        frame[i] = seed + i * 7;
    }
}

/* zlib's CRC-32, to check the test engine's TE_CRC */
static uint32_t crc32_of(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffff;

    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xedb88320 & -(crc & 1));
        }
    }
    return ~crc;
}

static void assert_error(Nic *n, uint32_t code, uint32_t addr)
{
    g_assert_cmphex(rd(n, NIC_REG_STATUS) & NIC_STATUS_ERROR, ==,
                    NIC_STATUS_ERROR);
    g_assert_cmpuint(rd(n, NIC_REG_ERR_CODE), ==, code);
    g_assert_cmphex(rd(n, NIC_REG_ERR_ADDR), ==, addr);
    g_assert_cmphex(rd(n, NIC_REG_INT_STATUS) & NIC_INT_ERROR, ==,
                    NIC_INT_ERROR);
    wr(n, NIC_REG_STATUS, NIC_STATUS_ERROR);        /* W1C */
    wr(n, NIC_REG_INT_STATUS, NIC_INT_ERROR);
    g_assert_cmpuint(rd(n, NIC_REG_ERR_CODE), ==, NIC_ERR_NONE);
}

static void assert_no_error(Nic *n)
{
    g_assert_cmpuint(rd(n, NIC_REG_ERR_CODE), ==, NIC_ERR_NONE);
    g_assert_cmphex(rd(n, NIC_REG_STATUS) & NIC_STATUS_ERROR, ==, 0);
}

static void test_identity(void)
{
    Nic n;

    nic_start(&n, "", false);
    g_assert_cmphex(qpci_config_readw(n.dev, PCI_VENDOR_ID), ==,
                    IOGUARD_NIC_PCI_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(n.dev, PCI_DEVICE_ID), ==,
                    IOGUARD_NIC_PCI_DEVICE_ID);
    g_assert_cmphex(rd(&n, NIC_REG_ID), ==, IOGUARD_NIC_ID);
    g_assert_cmphex(rd(&n, NIC_REG_CAP), ==,
                    NIC_CAP_SG | NIC_CAP_LOOPBACK | NIC_CAP_TEST_ENGINE |
                    NIC_MAX_FRAGS << NIC_CAP_MAX_FRAGS_SHIFT);
    g_assert_cmphex(rd(&n, NIC_REG_MAC_LO), ==, 0x12005452);
    g_assert_cmphex(rd(&n, NIC_REG_MAC_HI), ==, 0x5634);
    g_assert_cmphex(rd(&n, NIC_REG_STATUS), ==, NIC_STATUS_LINK_UP);
    /* Registers are 32-bit: a byte write is ignored, a byte read is 0. */
    qpci_io_writeb(n.dev, n.bar, NIC_REG_INT_MASK, 0xff);
    g_assert_cmphex(rd(&n, NIC_REG_INT_MASK), ==, 0);
    g_assert_cmphex(qpci_io_readb(n.dev, n.bar, NIC_REG_ID), ==, 0);

    /* Link state follows the backend: set_link, as a user would. */
    wr(&n, NIC_REG_INT_MASK, NIC_INT_ALL);
    qtest_qmp_assert_success(n.qts, "{'execute': 'set_link', 'arguments': "
                             "{'name': 'n0', 'up': false}}");
    g_assert_cmphex(rd(&n, NIC_REG_STATUS), ==, 0);
    g_assert_cmphex(rd(&n, NIC_REG_INT_STATUS), ==, NIC_INT_LINK);
    wr(&n, NIC_REG_INT_STATUS, NIC_INT_LINK);
    qtest_qmp_assert_success(n.qts, "{'execute': 'set_link', 'arguments': "
                             "{'name': 'n0', 'up': true}}");
    g_assert_cmphex(rd(&n, NIC_REG_STATUS), ==, NIC_STATUS_LINK_UP);
    g_assert_cmphex(rd(&n, NIC_REG_INT_STATUS), ==, NIC_INT_LINK);
    nic_stop(&n);

    nic_start(&n, ",sg=off", false);
    g_assert_cmphex(rd(&n, NIC_REG_CAP), ==,
                    NIC_CAP_LOOPBACK | NIC_CAP_TEST_ENGINE |
                    1 << NIC_CAP_MAX_FRAGS_SHIFT);
    nic_stop(&n);
}

/* A three-fragment packet goes round through internal loopback. */
static void test_loopback_sg(void)
{
    const uint16_t frags[] = { 14, 1000, 486 };
    uint8_t frame[1500], got[1500];
    struct ioguard_nic_desc d;
    Nic n;

    nic_start(&n, "", false);
    setup_rings(&n, 8, NIC_CTRL_LOOPBACK);
    g_assert_cmphex(rd(&n, NIC_REG_STATUS), ==, NIC_STATUS_LINK_UP |
                    NIC_STATUS_TX_RUNNING | NIC_STATUS_RX_RUNNING);
    fill_frame(frame, sizeof(frame), 1);
    qtest_memwrite(n.qts, TX_BUF, frame, sizeof(frame));
    post_tx(&n, 8, frags, 3, TX_BUF);

    /* No receive buffer yet: loopback waits instead of dropping. */
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_HEAD, 3), ==, 0);
    post_rx(&n, 8, 1, 2048);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_HEAD, 3), ==, 3);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_HEAD, 1), ==, 1);

    d = get_desc(&n, RX_RING);
    g_assert_cmphex(d.flags, ==, NIC_DESC_EOP);          /* OWN cleared */
    g_assert_cmphex(d.status, ==, NIC_DESC_ST_DONE);
    g_assert_cmpuint(d.written_len, ==, sizeof(frame));
    qtest_memread(n.qts, RX_BUF, got, sizeof(got));
    g_assert(memcmp(frame, got, sizeof(frame)) == 0);
    for (int i = 0; i < 3; i++) {
        d = get_desc(&n, TX_RING + i * NIC_DESC_SIZE);
        g_assert_cmphex(d.flags & NIC_DESC_OWN, ==, 0);
        g_assert_cmphex(d.status, ==, NIC_DESC_ST_DONE);
    }
    g_assert_cmpuint(get_desc(&n, TX_RING + 2 * NIC_DESC_SIZE).written_len,
                     ==, sizeof(frame));
    g_assert_cmpuint(rd(&n, NIC_REG_TX_PACKETS), ==, 1);
    g_assert_cmpuint(rd(&n, NIC_REG_RX_PACKETS), ==, 1);
    g_assert_cmphex(rd(&n, NIC_REG_INT_STATUS), ==,
                    NIC_INT_TX_DONE | NIC_INT_RX);
    wr(&n, NIC_REG_INT_STATUS, NIC_INT_TX_DONE);
    g_assert_cmphex(rd(&n, NIC_REG_INT_STATUS), ==, NIC_INT_RX);
    assert_no_error(&n);

    /* Round the ring twice with single-fragment packets. */
    for (int i = 0; i < 12; i++) {
        const uint16_t len = 60 + i;

        post_rx(&n, 8, 1, 2048);
        post_tx(&n, 8, &len, 1, TX_BUF);
        g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_PACKETS, 2 + i), ==, 2 + i);
    }
    g_assert_cmpuint(rd(&n, NIC_REG_TX_HEAD), ==, n.tx_tail);
    g_assert_cmpuint(rd(&n, NIC_REG_RX_HEAD), ==, n.rx_tail);
    nic_stop(&n);
}

static void sock_send_frame(Nic *n, const uint8_t *frame, uint32_t len)
{
    uint32_t be = cpu_to_be32(len);

    g_assert_cmpint(write(n->sock, &be, 4), ==, 4);
    g_assert_cmpint(write(n->sock, frame, len), ==, len);
}

static uint32_t sock_recv_frame(Nic *n, uint8_t *frame, uint32_t max)
{
    uint32_t be, len;

    g_assert_cmpint(recv(n->sock, &be, 4, MSG_WAITALL), ==, 4);
    len = be32_to_cpu(be);
    g_assert_cmpuint(len, <=, max);
    g_assert_cmpint(recv(n->sock, frame, len, MSG_WAITALL), ==, len);
    return len;
}

/* Through a real backend: -netdev socket, frames both ways. */
static void test_socket_backend(void)
{
    const uint16_t frags[] = { 100, 900 };
    uint8_t frame[1000], got[1000], bcast[200];
    struct ioguard_nic_desc d;
    Nic n;

    nic_start(&n, "", true);
    setup_rings(&n, 16, 0);
    post_rx(&n, 16, 4, 2048);

    fill_frame(frame, sizeof(frame), 9);
    qtest_memwrite(n.qts, TX_BUF, frame, sizeof(frame));
    post_tx(&n, 16, frags, 2, TX_BUF);
    g_assert_cmpuint(sock_recv_frame(&n, got, sizeof(got)), ==, sizeof(frame));
    g_assert(memcmp(frame, got, sizeof(frame)) == 0);

    /* A frame for us and a broadcast arrive; one for another MAC does not. */
    fill_frame(frame, sizeof(frame), 3);
    sock_send_frame(&n, frame, sizeof(frame));
    frame[5] ^= 1;
    sock_send_frame(&n, frame, sizeof(frame));
    fill_frame(bcast, sizeof(bcast), 4);
    memset(bcast, 0xff, 6);
    sock_send_frame(&n, bcast, sizeof(bcast));
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_PACKETS, 2), ==, 2);
    frame[5] ^= 1;
    qtest_memread(n.qts, RX_BUF, got, sizeof(got));
    g_assert(memcmp(frame, got, sizeof(frame)) == 0);
    d = get_desc(&n, RX_RING + NIC_DESC_SIZE);
    g_assert_cmpuint(d.written_len, ==, sizeof(bcast));
    g_assert_cmphex(get_desc(&n, RX_RING + 2 * NIC_DESC_SIZE).flags, ==,
                    NIC_DESC_OWN);                       /* still ours */

    /* A frame longer than the buffer is dropped and counted. */
    post_rx(&n, 16, 1, 64);     /* replaces nothing: a 5th, small buffer */
    sock_send_frame(&n, frame, sizeof(frame));          /* into buffer 3 */
    sock_send_frame(&n, frame, sizeof(frame));          /* buffer 4 */
    sock_send_frame(&n, frame, sizeof(frame));          /* too long for 5 */
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_DROPPED, 1), ==, 1);
    d = get_desc(&n, RX_RING + 4 * NIC_DESC_SIZE);
    g_assert_cmphex(d.status, ==, NIC_DESC_ST_DONE | NIC_DESC_ST_ERROR |
                    NIC_ERR_DESC_LEN << NIC_DESC_ST_ERR_SHIFT);
    g_assert_cmpuint(rd(&n, NIC_REG_RX_PACKETS), ==, 4);
    nic_stop(&n);
}

static void te_run(Nic *n, uint32_t op, uint32_t src, uint32_t dst,
                   uint32_t len, uint32_t pattern)
{
    wr(n, NIC_REG_TE_SRC, src);
    wr(n, NIC_REG_TE_DST, dst);
    wr(n, NIC_REG_TE_LEN, len);
    wr(n, NIC_REG_TE_PATTERN, pattern);
    wr(n, NIC_REG_TE_CMD, op);
    for (int i = 0; i < 5000 && (rd(n, NIC_REG_TE_STATUS) &
                                 NIC_TE_STATUS_BUSY); i++) {
        g_usleep(1000);
    }
    g_assert_cmphex(rd(n, NIC_REG_TE_STATUS) & NIC_TE_STATUS_DONE, ==,
                    NIC_TE_STATUS_DONE);
}

static void test_test_engine(void)
{
    g_autofree uint8_t *buf = g_malloc(3 * 4096);
    g_autofree uint8_t *got = g_malloc(3 * 4096);
    Nic n;

    nic_start(&n, "", false);
    for (int i = 0; i < 3 * 4096; i++) {
        buf[i] = i * 13 + (i >> 8);
    }
    qtest_memwrite(n.qts, TE_BUF + 100, buf, 3 * 4096);

    te_run(&n, NIC_TE_OP_READ, TE_BUF + 100, 0, 3 * 4096, 0);
    g_assert_cmphex(rd(&n, NIC_REG_TE_STATUS), ==, NIC_TE_STATUS_DONE);
    g_assert_cmphex(rd(&n, NIC_REG_TE_CRC), ==, crc32_of(buf, 3 * 4096));
    g_assert_cmpuint(rd(&n, NIC_REG_TE_DONE_LEN), ==, 3 * 4096);
    g_assert_cmphex(rd(&n, NIC_REG_INT_STATUS), ==, NIC_INT_TEST_DONE);

    te_run(&n, NIC_TE_OP_COPY, TE_BUF + 100, TE_BUF + 0x10000 + 7,
           3 * 4096, 0);
    qtest_memread(n.qts, TE_BUF + 0x10000 + 7, got, 3 * 4096);
    g_assert(memcmp(buf, got, 3 * 4096) == 0);
    g_assert_cmphex(rd(&n, NIC_REG_TE_CRC), ==, crc32_of(buf, 3 * 4096));

    te_run(&n, NIC_TE_OP_WRITE, 0, TE_BUF + 0x20000, 5000, 0x5a);
    qtest_memread(n.qts, TE_BUF + 0x20000, got, 5001);
    for (int i = 0; i < 5000; i++) {
        g_assert_cmphex(got[i], ==, 0x5a);
    }
    g_assert_cmphex(got[5000], ==, 0);
    assert_no_error(&n);

    /* 1 MiB takes several bottom-half runs (128 KiB each): all of it. */
    {
        g_autofree uint8_t *big = g_malloc(NIC_TE_MAX_LEN);
        g_autofree uint8_t *copied = g_malloc(NIC_TE_MAX_LEN);

        for (uint32_t i = 0; i < NIC_TE_MAX_LEN; i++) {
            big[i] = i * 7 + (i >> 12);
        }
        qtest_memwrite(n.qts, TE_BUF, big, NIC_TE_MAX_LEN);
        te_run(&n, NIC_TE_OP_COPY, TE_BUF, TE_BUF + 2 * NIC_TE_MAX_LEN,
               NIC_TE_MAX_LEN, 0);
        g_assert_cmpuint(rd(&n, NIC_REG_TE_DONE_LEN), ==, NIC_TE_MAX_LEN);
        qtest_memread(n.qts, TE_BUF + 2 * NIC_TE_MAX_LEN, copied,
                      NIC_TE_MAX_LEN);
        g_assert(memcmp(big, copied, NIC_TE_MAX_LEN) == 0);
        g_assert_cmphex(rd(&n, NIC_REG_TE_CRC), ==,
                        crc32_of(big, NIC_TE_MAX_LEN));
        assert_no_error(&n);
    }

    /* Where nothing answers, the DMA fails: chunk address and progress. */
    te_run(&n, NIC_TE_OP_COPY, TE_BUF, UNASSIGNED - 4096 - 8, 2 * 4096, 0);
    g_assert_cmphex(rd(&n, NIC_REG_TE_STATUS), ==,
                    NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR);
    g_assert_cmphex(rd(&n, NIC_REG_TE_ERR_ADDR), ==, UNASSIGNED - 4096 - 8);
    g_assert_cmpuint(rd(&n, NIC_REG_TE_DONE_LEN), ==, 0);
    assert_error(&n, NIC_ERR_TE_DMA, UNASSIGNED - 4096 - 8);
    g_assert_cmpuint(rd(&n, NIC_REG_DMA_ERRORS), ==, 1);
    nic_stop(&n);
}

/* Hostile programming: every case ends in an error status, nothing more. */
static void test_hostile_rings(void)
{
    struct ioguard_nic_desc d;
    uint16_t len;
    Nic n;

    nic_start(&n, "", false);
    /* Bad ring geometry: not started. */
    const struct { uint32_t base, size; } bad[] = {
        { TX_RING, 0 }, { TX_RING, 1 }, { TX_RING, NIC_RING_MAX_SIZE + 1 },
        { TX_RING + 8, 8 }, { 0xfffffff0u, 2 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        wr(&n, NIC_REG_TX_RING_SIZE, bad[i].size);
        wr(&n, NIC_REG_TX_RING_BASE, bad[i].base);
        wr(&n, NIC_REG_CTRL, NIC_CTRL_TX_EN);
        g_assert_cmphex(rd(&n, NIC_REG_STATUS) & NIC_STATUS_TX_RUNNING, ==, 0);
        assert_error(&n, NIC_ERR_RING_CONFIG, bad[i].base);
    }

    setup_rings(&n, 32, NIC_CTRL_LOOPBACK);
    post_rx(&n, 32, 31, 2048);
    /* A tail beyond the ring is refused. */
    wr(&n, NIC_REG_TX_TAIL, 32);
    assert_error(&n, NIC_ERR_RING_INDEX, 32);
    /* Ring registers cannot move under a running ring. */
    wr(&n, NIC_REG_TX_RING_BASE, 0x1000);
    g_assert_cmphex(rd(&n, NIC_REG_TX_RING_BASE), ==, TX_RING);

    /* A zero-length fragment spoils its packet. */
    const uint16_t zero[] = { 100, 0 };
    post_tx(&n, 32, zero, 2, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_HEAD, 2), ==, 2);
    assert_error(&n, NIC_ERR_DESC_LEN, TX_RING + NIC_DESC_SIZE);
    d = get_desc(&n, TX_RING);
    g_assert_cmphex(d.status, ==, NIC_DESC_ST_DONE | NIC_DESC_ST_ERROR |
                    NIC_ERR_DESC_LEN << NIC_DESC_ST_ERR_SHIFT);

    /* A packet too long, and one shorter than a header. */
    const uint16_t huge[] = { 9000, 9000 };
    post_tx(&n, 32, huge, 2, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_HEAD, 4), ==, 4);
    assert_error(&n, NIC_ERR_DESC_LEN, TX_RING + 2 * NIC_DESC_SIZE);
    len = 10;
    post_tx(&n, 32, &len, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_HEAD, 5), ==, 5);
    assert_error(&n, NIC_ERR_DESC_LEN, TX_RING + 4 * NIC_DESC_SIZE);

    /*
     * A chain that never ends: 20 descriptors without EOP. The first 16
     * are refused as one over-long packet; the device then waits for the
     * rest of the second, not spinning.
     */
    for (int i = 0; i < 20; i++) {
        put_desc(&n, TX_RING + ((5 + i) % 32) * NIC_DESC_SIZE, TX_BUF, 64,
                 NIC_DESC_OWN);
    }
    n.tx_tail = 25;
    wr(&n, NIC_REG_TX_TAIL, n.tx_tail);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_HEAD, 21), ==, 21);
    assert_error(&n, NIC_ERR_DESC_CHAIN, TX_RING + 5 * NIC_DESC_SIZE);
    g_assert_cmpuint(rd(&n, NIC_REG_TX_HEAD), ==, 21);
    g_assert_cmpuint(rd(&n, NIC_REG_TX_PACKETS), ==, 0);

    /* Its last descriptor gets EOP: a 4-fragment packet goes out. */
    put_desc(&n, TX_RING + 24 * NIC_DESC_SIZE, TX_BUF, 64,
             NIC_DESC_OWN | NIC_DESC_EOP);
    wr(&n, NIC_REG_TX_TAIL, n.tx_tail);        /* the doorbell again */
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_PACKETS, 1), ==, 1);
    /* A fragment pointing at the NIC's own registers: no re-entrancy. */
    len = 64;
    post_tx(&n, 32, &len, 1, n.bar.addr);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_TX_HEAD, 26), ==, 26);
    assert_error(&n, NIC_ERR_TX_DMA, n.bar.addr);
    d = get_desc(&n, TX_RING + 25 * NIC_DESC_SIZE);
    g_assert_cmphex(d.status, ==, NIC_DESC_ST_DONE | NIC_DESC_ST_ERROR |
                    NIC_ERR_TX_DMA << NIC_DESC_ST_ERR_SHIFT);
    g_assert_cmpuint(rd(&n, NIC_REG_TX_PACKETS), ==, 1);

    /* The test engine aimed at our own CTRL register changes nothing. */
    qtest_writel(n.qts, TE_BUF, cpu_to_le32(NIC_CTRL_RESET));
    te_run(&n, NIC_TE_OP_COPY, TE_BUF, n.bar.addr + NIC_REG_CTRL, 4, 0);
    assert_error(&n, NIC_ERR_TE_DMA, n.bar.addr + NIC_REG_CTRL);
    g_assert_cmphex(rd(&n, NIC_REG_CTRL), ==,
                    NIC_CTRL_TX_EN | NIC_CTRL_RX_EN | NIC_CTRL_LOOPBACK);

    /* Bad test-engine arguments. */
    const struct { uint32_t op, src, dst, len; } te_bad[] = {
        { 0, TE_BUF, TE_BUF, 16 }, { 4, TE_BUF, TE_BUF, 16 },
        { NIC_TE_OP_READ, TE_BUF, 0, 0 },
        { NIC_TE_OP_READ, TE_BUF, 0, NIC_TE_MAX_LEN + 1 },
        { NIC_TE_OP_READ, 0xfffff000u, 0, 0x2000 },
        { NIC_TE_OP_WRITE, 0, 0xffffff00u, 0x200 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(te_bad); i++) {
        te_run(&n, te_bad[i].op, te_bad[i].src, te_bad[i].dst, te_bad[i].len,
               0);
        g_assert_cmphex(rd(&n, NIC_REG_TE_STATUS), ==,
                        NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR);
        assert_error(&n, NIC_ERR_TE_ARGS, te_bad[i].op == NIC_TE_OP_WRITE ?
                     te_bad[i].dst : te_bad[i].src);
    }

    /* An RX descriptor with a zero-length buffer. */
    wr(&n, NIC_REG_CTRL, 0);
    setup_rings(&n, 8, NIC_CTRL_LOOPBACK);
    put_desc(&n, RX_RING, RX_BUF, 0, NIC_DESC_OWN);
    wr(&n, NIC_REG_RX_TAIL, 1);
    len = 64;
    post_tx(&n, 8, &len, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_HEAD, 1), ==, 1);
    assert_error(&n, NIC_ERR_DESC_LEN, RX_RING);
    g_assert_cmpuint(rd(&n, NIC_REG_RX_DROPPED), ==, 1);

    /* A ring placed on our own registers stops that ring. */
    wr(&n, NIC_REG_CTRL, 0);
    wr(&n, NIC_REG_TX_RING_SIZE, 8);
    wr(&n, NIC_REG_TX_RING_BASE, n.bar.addr);
    wr(&n, NIC_REG_CTRL, NIC_CTRL_TX_EN);
    wr(&n, NIC_REG_TX_TAIL, 1);
    g_assert_cmphex(wait_reg(&n, NIC_REG_STATUS, NIC_STATUS_LINK_UP |
                             NIC_STATUS_ERROR), ==,
                    NIC_STATUS_LINK_UP | NIC_STATUS_ERROR);
    assert_error(&n, NIC_ERR_TX_DMA, n.bar.addr);

    /* CTRL.RESET: back to power-on state; the device still answers. */
    wr(&n, NIC_REG_CTRL, NIC_CTRL_RESET);
    g_assert_cmphex(rd(&n, NIC_REG_CTRL), ==, 0);
    g_assert_cmpuint(rd(&n, NIC_REG_TX_PACKETS), ==, 0);
    g_assert_cmphex(rd(&n, NIC_REG_ID), ==, IOGUARD_NIC_ID);
    nic_stop(&n);
}

/* Without scatter/gather a packet must be one descriptor. */
static void test_no_sg(void)
{
    const uint16_t two[] = { 60, 60 };
    const uint16_t one = 120;
    Nic n;

    nic_start(&n, ",sg=off", false);
    setup_rings(&n, 8, NIC_CTRL_LOOPBACK);
    post_rx(&n, 8, 4, 2048);
    post_tx(&n, 8, two, 2, TX_BUF);
    /* The first is refused; the lone EOP one left is a packet of its own. */
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_PACKETS, 1), ==, 1);
    g_assert_cmpuint(rd(&n, NIC_REG_TX_HEAD), ==, 2);
    assert_error(&n, NIC_ERR_NO_SG, TX_RING);
    g_assert_cmphex(get_desc(&n, TX_RING).status, ==,
                    NIC_DESC_ST_DONE | NIC_DESC_ST_ERROR |
                    NIC_ERR_NO_SG << NIC_DESC_ST_ERR_SHIFT);
    post_tx(&n, 8, &one, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_PACKETS, 2), ==, 2);
    g_assert_cmpuint(get_desc(&n, RX_RING + NIC_DESC_SIZE).written_len, ==,
                     120);
    nic_stop(&n);
}

/*
 * Behind ioguard-iommu with a DTE that grants nothing: the test engine's
 * DMA is refused, the NIC says where, and the IOMMU logs an IO_PAGE_FAULT
 * naming the NIC's requester and address.
 */
static void test_behind_iommu(void)
{
    uint16_t devid = NIC_DEVFN;
    uint32_t ev[4];
    Nic n;

    nic_start_full(&n, "", "", false);
    /* DTE: valid, translation valid, no read, no write. */
    qtest_memset(n.qts, DEV_TABLE, 0, 0x200000);
    qtest_writeq(n.qts, DEV_TABLE + devid * 32, DTE_FLAG_V | DTE_FLAG_TV);
    qtest_writeq(n.qts, DEV_TABLE + devid * 32 + 8, 0x42);
    qtest_writeq(n.qts, IOGUARD_MMIO_BASE + MMIO_DEV_TABLE_OFFSET,
                 DEV_TABLE | 0x1ff);
    qtest_writeq(n.qts, IOGUARD_MMIO_BASE + MMIO_EVT_BUF_OFFSET,
                 EVENT_LOG | (8ULL << 56));
    qtest_writeq(n.qts, IOGUARD_MMIO_BASE + MMIO_CONTROL_OFFSET,
                 1ULL << CONTROL_IOMMU_EN | 1ULL << CONTROL_EVT_LOG_EN);

    qtest_memset(n.qts, TE_BUF, 0x11, 4096);
    te_run(&n, NIC_TE_OP_WRITE, 0, TE_BUF, 4096, 0x5a);
    g_assert_cmphex(rd(&n, NIC_REG_TE_STATUS), ==,
                    NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR);
    g_assert_cmphex(rd(&n, NIC_REG_TE_ERR_ADDR), ==, TE_BUF);
    assert_error(&n, NIC_ERR_TE_DMA, TE_BUF);
    g_assert_cmphex(qtest_readb(n.qts, TE_BUF), ==, 0x11);   /* untouched */
    g_assert_cmphex(qtest_readb(n.qts, TE_BUF + 4095), ==, 0x11);

    qtest_memread(n.qts, EVENT_LOG, ev, sizeof(ev));
    g_assert_cmphex(le32_to_cpu(ev[0]) & 0xffff, ==, devid);
    g_assert_cmphex(le32_to_cpu(ev[1]) >> 28, ==, EVENT_TYPE_IO_FAULT);
    g_assert_cmphex(le32_to_cpu(ev[1]) & 0xffff, ==, 0x42);     /* domain */
    g_assert_true((le32_to_cpu(ev[1]) >> 16) & EVENT_FLAG_RW);
    g_assert_cmphex(le32_to_cpu(ev[2]), ==, TE_BUF);
    g_assert_cmphex(le32_to_cpu(ev[3]), ==, 0);
    nic_stop(&n);
}

/* ---- PASID and PRI (pri=on): shared virtual addressing ---- */

/* q35's MMCONFIG, for the capabilities in extended configuration space. */
#define ECAM_BASE       0xb0000000ULL
#define NIC_ECAM        (ECAM_BASE + (NIC_DEVFN << 12))
#define NIC_ATS_CAP     0x100
#define NIC_PASID_CAP   0x108
#define NIC_PRI_CAP     0x110
/* The guest's tables: a GCR3 table, PASID 5's v2 tables, a PPR log. */
#define GCR3_TABLE      0x1400000ULL
#define V2_L4           0x1401000
#define V2_L3           0x1402000
#define V2_L2           0x1403000
#define V2_L1           0x1404000
#define PPR_LOG         0x1410000       /* 256 entries */
#define SVA_PASID       5
#define SVA_GVA         0x10000000u     /* a process's buffer */
#define SVA_DATA        0x500000        /* where its pages are */
/* PRG response codes (PCIe) */
#define PRG_SUCCESS     0x0
#define PRG_INVALID     0x1
#define PRG_FAILURE     0xf
#define V2_FLAGS        (IOMMU_PAGE_PRESENT | IOMMU_PAGE_RW | \
                         IOMMU_PAGE_USER | IOMMU_PAGE_ACCESS)

static void sva_map(Nic *n, uint32_t gva, uint64_t gpa)
{
    qtest_writeq(n->qts, V2_L1 + ((gva >> 12) & 0x1ff) * 8,
                 gpa | V2_FLAGS | IOMMU_PAGE_DIRTY);
}

/*
 * Unmaps gva from PASID 5 and invalidates as Linux does: the IOMMU's
 * IOTLB (INVALIDATE_IOMMU_PAGES), then the NIC's (INVALIDATE_IOTLB_PAGES),
 * each with GN and the PASID.
 */
static void sva_unmap(Nic *n, IoguardIommu *m, uint32_t gva)
{
    qtest_writeq(n->qts, V2_L1 + ((gva >> 12) & 0x1ff) * 8, 0);
    iommu_queue_command(m, SVA_PASID, CMD_INV_IOMMU_PAGES << 28 | DOMAIN,
                        gva | CMD_INV_IOMMU_PAGES_GN_MASK, 0);
    iommu_queue_command(m, NIC_DEVFN | (SVA_PASID & 0xff) << 16,
                        CMD_INV_IOTLB_PAGES << 28 | SVA_PASID >> 8,
                        gva | CMD_INV_IOMMU_PAGES_GN_MASK, 0);
    iommu_completion_wait(m);
}

/* The test engine reads len bytes at gva; waits until done or waiting. */
static uint32_t te_read_start(Nic *n, uint32_t gva, uint32_t len)
{
    uint32_t status = 0;

    wr(n, NIC_REG_TE_SRC, gva);
    wr(n, NIC_REG_TE_LEN, len);
    wr(n, NIC_REG_TE_CMD, NIC_TE_OP_READ);
    for (int i = 0; i < 5000; i++) {
        status = rd(n, NIC_REG_TE_STATUS);
        if (!(status & NIC_TE_STATUS_BUSY) ||
            (status & NIC_TE_STATUS_PAGE_WAIT)) {
            break;
        }
        g_usleep(1000);
    }
    return status;
}

static uint32_t te_wait_done(Nic *n)
{
    for (int i = 0; i < 5000 && (rd(n, NIC_REG_TE_STATUS) &
                                 NIC_TE_STATUS_BUSY); i++) {
        g_usleep(1000);
    }
    return rd(n, NIC_REG_TE_STATUS);
}

/* The IOMMU's newest fault record (the caller unrefs it). */
static QDict *last_fault_record(Nic *n)
{
    QDict *resp = qtest_qmp(n->qts, "{'execute': 'query-ioguard-faults'}");
    QList *faults = qdict_get_qlist(qobject_to(QDict, qlist_peek(
                        qdict_get_qlist(resp, "return"))), "faults");
    QListEntry *entry;
    QDict *last = NULL;

    QLIST_FOREACH_ENTRY(faults, entry) {
        last = qobject_to(QDict, qlist_entry_obj(entry));
    }
    g_assert(last);
    qobject_ref(last);
    qobject_unref(resp);
    return last;
}

/* The PPR log entry at index i, as two quadwords. */
static void ppr_entry(Nic *n, int i, uint64_t *q0, uint64_t *q1)
{
    *q0 = qtest_readq(n->qts, PPR_LOG + i * 16);
    *q1 = qtest_readq(n->qts, PPR_LOG + i * 16 + 8);
}

/*
 * A process's buffer through PASID 5's v2 tables: present pages are read;
 * a missing one becomes a page request in the PPR log (checked field by
 * field), the engine waits, software maps the page and answers with
 * COMPLETE_PPR_REQUEST, the engine retries and the data arrives; a page
 * software refuses stops the engine with te-page; a malformed GCR3 entry
 * is an IO_PAGE_FAULT with RZ (a page that is not present is no event).
 */
static void test_sva_page_request(void)
{
    uint16_t devid = NIC_DEVFN;
    uint8_t data[4096];
    uint64_t q0, q1;
    IoguardIommu m;
    Event ev[8];
    QPCIDevice *mch;
    QDict *resp, *last;
    QList *pasids;
    char *hmp;
    Nic n;

    nic_start_full(&n, "guest-translation=on,device-iotlb=on,verifier=on",
                   ",ats=on,pri=on", false);
    mch = qpci_device_find(n.pcibus, 0);
    qpci_config_writel(mch, 0x64, 0);
    qpci_config_writel(mch, 0x60, ECAM_BASE | 1);    /* PCIEXBAR, 256 MiB */
    g_free(mch);

    /* The capabilities Linux looks for, as it enables them. */
    g_assert_cmphex(qtest_readw(n.qts, NIC_ECAM + NIC_PASID_CAP), ==,
                    PCI_EXT_CAP_ID_PASID);
    g_assert_cmphex(qtest_readw(n.qts, NIC_ECAM + NIC_PASID_CAP +
                                PCI_PASID_CAP), ==,
                    PCI_PASID_CAP_PRIV | 20 << 8);
    g_assert_cmphex(qtest_readw(n.qts, NIC_ECAM + NIC_PRI_CAP), ==,
                    PCI_EXT_CAP_ID_PRI);
    g_assert_cmphex(qtest_readw(n.qts, NIC_ECAM + NIC_PRI_CAP +
                                PCI_PRI_STATUS), ==,
                    PCI_PRI_STATUS_STOPPED | PCI_PRI_STATUS_PASID);
    qtest_writew(n.qts, NIC_ECAM + NIC_ATS_CAP + PCI_ATS_CTRL,
                 PCI_ATS_CTRL_ENABLE);
    qtest_writew(n.qts, NIC_ECAM + NIC_PASID_CAP + PCI_PASID_CTRL,
                 PCI_PASID_CTRL_ENABLE);
    qtest_writel(n.qts, NIC_ECAM + NIC_PRI_CAP + PCI_PRI_ALLOC_REQ, 32);
    qtest_writew(n.qts, NIC_ECAM + NIC_PRI_CAP + PCI_PRI_CTRL,
                 PCI_PRI_CTRL_ENABLE);
    g_assert_cmphex(qtest_readw(n.qts, NIC_ECAM + NIC_PRI_CAP +
                                PCI_PRI_STATUS), ==, PCI_PRI_STATUS_PASID);

    /* The IOMMU: GTEn, the PPR log, a DTE with GV, PPR and the GCR3 table
     * (Mode 0: requests without a PASID pass, as Linux sets up SVA). */
    iommu_enable(&m, n.qts);
    iommu_reg_write(&m, MMIO_PPR_LOG_OFFSET, PPR_LOG | 8ULL << 56);
    iommu_reg_write(&m, MMIO_CONTROL_OFFSET,
                    iommu_reg_read(&m, MMIO_CONTROL_OFFSET) |
                    1ULL << CONTROL_GT_EN | 1ULL << CONTROL_PPR_EN |
                    1ULL << CONTROL_PPRLOG_EN);
    qtest_writeq(n.qts, GCR3_TABLE + SVA_PASID * 8, V2_L4 | GCR3_VALID);
    qtest_writeq(n.qts, V2_L4, V2_L3 | V2_FLAGS);
    qtest_writeq(n.qts, V2_L3, V2_L2 | V2_FLAGS);
    qtest_writeq(n.qts, V2_L2 + ((SVA_GVA >> 21) & 0x1ff) * 8,
                 V2_L1 | V2_FLAGS);
    iommu_set_dte(&m, devid, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_IR |
                  DTE_FLAG_IW | DTE_FLAG_GV | DTE_FLAG_PPR |
                  ((GCR3_TABLE >> 12) & 7) << DTE_GCR3_SHIFT_A,
                  DOMAIN | ((GCR3_TABLE >> 15) & 0xffff) << DTE_GCR3_SHIFT_B);
    for (int i = 0; i < sizeof(data); i++) {
        data[i] = i * 7 + 3;
    }
    qtest_memwrite(n.qts, SVA_DATA, data, sizeof(data));
    qtest_memwrite(n.qts, SVA_DATA + 0x1000, data, sizeof(data));
    wr(&n, NIC_REG_TE_PASID, NIC_TE_PASID_VALID | SVA_PASID);

    /* A present page. */
    sva_map(&n, SVA_GVA, SVA_DATA);
    g_assert_cmphex(te_read_start(&n, SVA_GVA, 4096), ==,
                    NIC_TE_STATUS_DONE);
    g_assert_cmphex(rd(&n, NIC_REG_TE_CRC), ==, crc32_of(data, 4096));

    /* A missing one: the page request, exactly. */
    g_assert_cmphex(te_read_start(&n, SVA_GVA + 0x1000, 4096), ==,
                    NIC_TE_STATUS_BUSY | NIC_TE_STATUS_PAGE_WAIT);
    g_assert_cmphex(qtest_readl(n.qts, IOGUARD_MMIO_BASE +
                                MMIO_PPR_TAIL_OFFSET), ==, 16);
    ppr_entry(&n, 0, &q0, &q1);
    g_assert_cmphex(q0, ==, (uint64_t)PPR_REQ_FAULT << 60 |
                    (uint64_t)(PPR_FLAG_GN | PPR_FLAG_READ | PPR_FLAG_US)
                        << 48 |
                    (uint64_t)(PPR_TAG_LAST | 1) << 32 | SVA_PASID << 16 |
                    devid);
    g_assert_cmphex(q1, ==, SVA_GVA + 0x1000);
    /* A page that is not present is no error: no event. */
    g_assert_cmpint(iommu_read_events(&m, ev, 8), ==, 0);

    /* Software makes the page present and answers: the data arrives. */
    sva_map(&n, SVA_GVA + 0x1000, SVA_DATA + 0x1000);
    iommu_queue_command(&m, devid, CMD_COMPLETE_PPR << 28 | SVA_PASID,
                        CMD_COMPLETE_PPR_GN_MASK,
                        1 | PRG_SUCCESS << 12);
    iommu_completion_wait(&m);
    g_assert_cmphex(te_wait_done(&n), ==, NIC_TE_STATUS_DONE);
    g_assert_cmphex(rd(&n, NIC_REG_TE_CRC), ==, crc32_of(data, 4096));

    /* What PASID 5 reaches now: both pages, one range. */
    resp = qtest_qmp(n.qts, "{'execute': 'query-ioguard-mappings', "
                     "'arguments': {'requester': '00:05.0', 'pasid': %d}}",
                     SVA_PASID);
    {
        QDict *info = qdict_get_qdict(resp, "return");
        QList *ranges = qdict_get_qlist(info, "ranges");
        QDict *r = qobject_to(QDict, qlist_peek(ranges));

        g_assert_cmpstr(qdict_get_str(info, "dma"), ==, "guest-translated");
        g_assert_cmpint(qlist_size(ranges), ==, 1);
        g_assert_cmphex(qdict_get_int(r, "iova"), ==, SVA_GVA);
        g_assert_cmphex(qdict_get_int(r, "last"), ==, SVA_GVA + 0x1fff);
        g_assert_cmphex(qdict_get_int(r, "target"), ==, SVA_DATA);
        g_assert_true(qdict_get_bool(r, "write"));
    }
    qobject_unref(resp);

    /*
     * The verifier: SVA_GVA is unmapped from PASID 5, the IOMMU's IOTLB
     * invalidated, and the NIC's INVALIDATE_IOTLB_PAGES (GN, PASID 5)
     * dropped on its way by a fault
     * rule, so the NIC reads through the translation it kept: a finding
     * that names PASID 5. Then mapped again, and the rule gone.
     */
    qobject_unref(qtest_qmp_assert_success_ref(
        n.qts, "{'execute': 'ioguard-fault-add', 'arguments': "
        "{'device': 'ioguard-iommu', "
        "'rule': 'site=device-iotlb,action=drop'}}"));
    sva_unmap(&n, &m, SVA_GVA);
    g_assert_cmphex(te_read_start(&n, SVA_GVA, 4096), ==,
                    NIC_TE_STATUS_DONE);
    last = last_fault_record(&n);
    g_assert_cmpstr(qdict_get_str(last, "reason"), ==,
                    "ats-use-after-invalidation");
    g_assert_cmpint(qdict_get_int(last, "pasid"), ==, SVA_PASID);
    g_assert_cmphex(qdict_get_int(last, "iova"), ==, SVA_GVA);
    qobject_unref(last);
    qtest_qmp_assert_success(n.qts, "{'execute': 'ioguard-fault-remove', "
                             "'arguments': {'device': 'ioguard-iommu', "
                             "'id': 1}}");
    sva_map(&n, SVA_GVA, SVA_DATA);

    /* A page software will not give: te-page. */
    g_assert_cmphex(te_read_start(&n, SVA_GVA + 0x2000, 4096), ==,
                    NIC_TE_STATUS_BUSY | NIC_TE_STATUS_PAGE_WAIT);
    ppr_entry(&n, 1, &q0, &q1);
    g_assert_cmphex((q0 >> 32) & 0x3ff, ==, PPR_TAG_LAST | 2);
    iommu_queue_command(&m, devid, CMD_COMPLETE_PPR << 28 | SVA_PASID,
                        CMD_COMPLETE_PPR_GN_MASK,
                        2 | PRG_INVALID << 12);
    iommu_completion_wait(&m);
    g_assert_cmphex(te_wait_done(&n), ==,
                    NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR);
    assert_error(&n, NIC_ERR_TE_PAGE, SVA_GVA + 0x2000);
    g_assert_cmpint(iommu_read_events(&m, ev, 8), ==, 0);

    /* A malformed GCR3 entry (reserved bits): IO_PAGE_FAULT with RZ. */
    qtest_writeq(n.qts, GCR3_TABLE + 6 * 8, V2_L4 | GCR3_VALID | 1ULL << 60);
    wr(&n, NIC_REG_TE_PASID, NIC_TE_PASID_VALID | 6);
    g_assert_cmphex(te_read_start(&n, SVA_GVA, 4096), ==,
                    NIC_TE_STATUS_BUSY | NIC_TE_STATUS_PAGE_WAIT);
    g_assert_cmpint(iommu_read_events(&m, ev, 8), ==, 1);
    g_assert_cmphex(ev[0].dw[1], ==, EVENT_TYPE_IO_FAULT << 28 |
                    (EVENT_FLAG_GN | EVENT_FLAG_US | EVENT_FLAG_PR |
                     EVENT_FLAG_RZ) << 16 | 6);
    g_assert_cmphex(ev[0].dw[2], ==, SVA_GVA);
    /* Its fault record names the PASID (and no domain). */
    last = last_fault_record(&n);
    g_assert_cmpstr(qdict_get_str(last, "reason"), ==, "page-table-reserved");
    g_assert_cmpint(qdict_get_int(last, "pasid"), ==, 6);
    g_assert_false(qdict_haskey(last, "domain"));
    qobject_unref(last);
    /* The monitor decodes the GCR3 table: PASID 5, and 6 unusable. */
    resp = qtest_qmp(n.qts, "{'execute': 'query-ioguard-device', "
                     "'arguments': {'requester': '00:05.0'}}");
    pasids = qdict_get_qlist(qdict_get_qdict(qdict_get_qdict(resp, "return"),
                                             "guest"), "pasids");
    g_assert_cmpint(qlist_size(pasids), ==, 2);
    last = qobject_to(QDict, qlist_peek(pasids));
    g_assert_cmpint(qdict_get_int(last, "pasid"), ==, SVA_PASID);
    g_assert_cmphex(qdict_get_int(last, "cr3"), ==, V2_L4);
    qobject_unref(resp);
    hmp = qtest_hmp(n.qts, "info ioguard-device 00:05.0");
    g_test_message("%s", hmp);
    g_assert(strstr(hmp, "PASID 5: CR3 0x1401000\r\n"));
    g_assert(strstr(hmp, "PASID 6: CR3 0x1401000 (reserved bits)"));
    g_free(hmp);
    /* Answered with a Response Failure: PRI stops (status RF). */
    iommu_queue_command(&m, devid, CMD_COMPLETE_PPR << 28 | 6,
                        CMD_COMPLETE_PPR_GN_MASK,
                        3 | PRG_FAILURE << 12);
    iommu_completion_wait(&m);
    g_assert_cmphex(te_wait_done(&n), ==,
                    NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR);
    g_assert_cmphex(qtest_readw(n.qts, NIC_ECAM + NIC_PRI_CAP +
                                PCI_PRI_STATUS), ==,
                    PCI_PRI_STATUS_PASID | PCI_PRI_STATUS_RF);

    /*
     * PASID 5's page, kept by the NIC, unmapped and invalidated as Linux
     * does (INVALIDATE_IOMMU_PAGES, then INVALIDATE_IOTLB_PAGES, GN,
     * PASID 5): the translation the NIC kept goes,
     * although the NIC's DMA without a PASID is not translated (Mode 0),
     * and the next read is refused (PRI stopped: no page request).
     */
    wr(&n, NIC_REG_TE_PASID, NIC_TE_PASID_VALID | SVA_PASID);
    g_assert_cmphex(te_read_start(&n, SVA_GVA, 4096), ==,
                    NIC_TE_STATUS_DONE);
    sva_unmap(&n, &m, SVA_GVA);
    g_assert_cmphex(te_read_start(&n, SVA_GVA, 4096), ==,
                    NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR);
    assert_error(&n, NIC_ERR_TE_PAGE, SVA_GVA);
    nic_stop(&n);
}

/* ---- fault rules (docs/ioguard-faults.rst) ---- */

static void nic_fault_add(Nic *n, const char *rule)
{
    qobject_unref(qtest_qmp_assert_success_ref(
        n->qts, "{'execute': 'ioguard-fault-add', "
        "'arguments': {'device': 'ioguard-nic', 'rule': %s}}", rule));
}

/* The n-th fault fired (from 0) on the NIC: its site and address. */
static void assert_fired(Nic *n, int nth, const char *site, uint64_t address)
{
    QDict *resp = qtest_qmp(n->qts, "{'execute': 'query-ioguard-fault-rules',"
                            " 'arguments': {'device': 'ioguard-nic'}}");
    QDict *info = qobject_to(QDict,
                             qlist_peek(qdict_get_qlist(resp, "return")));
    QListEntry *e;
    QDict *fired = NULL;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "fired"), e) {
        if (nth-- == 0) {
            fired = qobject_to(QDict, qlist_entry_obj(e));
        }
    }
    g_assert(fired);
    g_assert_cmpstr(qdict_get_str(fired, "site"), ==, site);
    if (strcmp(site, "nic-link")) {
        g_assert_cmphex(qdict_get_int(fired, "address"), ==, address);
    }
    qobject_unref(resp);
}

/*
 * nic-dma and nic-desc: the DMA fails as one the IOMMU refused would, with
 * the device's DMA error status; once the rule is spent traffic goes on.
 */
static void test_fault_dma(void)
{
    const uint16_t len = 200;
    uint8_t frame[200];
    struct ioguard_nic_desc d;
    Nic n;

    nic_start(&n, "", false);
    nic_fault_add(&n, "site=nic-dma,range=0x401000-0x401fff,access=read,"
                  "when=once,action=dma-error");
    te_run(&n, NIC_TE_OP_READ, TE_BUF, 0, 3 * 4096, 0);
    g_assert_cmphex(rd(&n, NIC_REG_TE_STATUS), ==,
                    NIC_TE_STATUS_DONE | NIC_TE_STATUS_ERROR);
    g_assert_cmpuint(rd(&n, NIC_REG_TE_DONE_LEN), ==, 4096);
    assert_error(&n, NIC_ERR_TE_DMA, TE_BUF + 0x1000);
    assert_fired(&n, 0, "nic-dma", TE_BUF + 0x1000);
    te_run(&n, NIC_TE_OP_READ, TE_BUF, 0, 3 * 4096, 0);
    g_assert_cmphex(rd(&n, NIC_REG_TE_STATUS), ==, NIC_TE_STATUS_DONE);

    /* The RX DMA of a looped-back frame fails; the next one arrives. */
    setup_rings(&n, 8, NIC_CTRL_LOOPBACK);
    nic_fault_add(&n, "site=nic-dma,access=write,when=once,action=dma-error");
    fill_frame(frame, sizeof(frame), 3);
    qtest_memwrite(n.qts, TX_BUF, frame, sizeof(frame));
    post_rx(&n, 8, 2, 2048);
    post_tx(&n, 8, &len, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_HEAD, 1), ==, 1);
    d = get_desc(&n, RX_RING);
    g_assert_cmphex(d.status, ==, NIC_DESC_ST_DONE | NIC_DESC_ST_ERROR |
                    NIC_ERR_RX_DMA << NIC_DESC_ST_ERR_SHIFT);
    assert_error(&n, NIC_ERR_RX_DMA, RX_BUF);
    post_tx(&n, 8, &len, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_PACKETS, 1), ==, 1);
    g_assert_cmphex(get_desc(&n, RX_RING + NIC_DESC_SIZE).status, ==,
                    NIC_DESC_ST_DONE);

    /* A descriptor the NIC cannot fetch stops its ring. */
    nic_fault_add(&n, "site=nic-desc,range=0x100000-0x100fff,when=once,"
                  "action=dma-error");
    post_tx(&n, 8, &len, 1, TX_BUF);
    g_assert_cmphex(wait_reg(&n, NIC_REG_STATUS, NIC_STATUS_LINK_UP |
                             NIC_STATUS_RX_RUNNING | NIC_STATUS_ERROR) &
                    NIC_STATUS_TX_RUNNING, ==, 0);
    assert_error(&n, NIC_ERR_TX_DMA, TX_RING + 2 * NIC_DESC_SIZE);
    assert_fired(&n, 2, "nic-desc", TX_RING + 2 * NIC_DESC_SIZE);
    nic_stop(&n);
}

/* nic-link: the link goes down for the rule's time, and comes back. */
static void test_fault_link(void)
{
    const uint16_t len = 100;
    uint8_t frame[100];
    Nic n;

    nic_start(&n, "", false);
    setup_rings(&n, 8, NIC_CTRL_LOOPBACK);
    nic_fault_add(&n, "site=nic-link,when=once,action=link-flap:50ms");
    fill_frame(frame, sizeof(frame), 5);
    qtest_memwrite(n.qts, TX_BUF, frame, sizeof(frame));
    post_rx(&n, 8, 1, 2048);
    post_tx(&n, 8, &len, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_PACKETS, 1), ==, 1);
    g_assert_cmphex(rd(&n, NIC_REG_STATUS) & NIC_STATUS_LINK_UP, ==, 0);
    g_assert_cmphex(rd(&n, NIC_REG_INT_STATUS) & NIC_INT_LINK, ==,
                    NIC_INT_LINK);
    assert_fired(&n, 0, "nic-link", 0);
    wr(&n, NIC_REG_INT_STATUS, NIC_INT_LINK);
    qtest_clock_step(n.qts, 49 * 1000 * 1000);
    g_assert_cmphex(rd(&n, NIC_REG_STATUS) & NIC_STATUS_LINK_UP, ==, 0);
    qtest_clock_step(n.qts, 1000 * 1000);
    g_assert_cmphex(rd(&n, NIC_REG_STATUS) & NIC_STATUS_LINK_UP, ==,
                    NIC_STATUS_LINK_UP);
    g_assert_cmphex(rd(&n, NIC_REG_INT_STATUS) & NIC_INT_LINK, ==,
                    NIC_INT_LINK);
    nic_stop(&n);
}

/* ---- migration ---- */

/*
 * The NIC migrates mid-way through a link flap, with frames delivered and
 * buffers posted: the registers read back the same, the link comes back
 * when the flap's time is up, and the rings go on from where they were.
 */
static void test_migration(void)
{
    static const uint32_t regs[] = {
        NIC_REG_CTRL, NIC_REG_STATUS, NIC_REG_INT_STATUS, NIC_REG_INT_MASK,
        NIC_REG_TX_RING_BASE, NIC_REG_TX_RING_SIZE, NIC_REG_TX_HEAD,
        NIC_REG_TX_TAIL, NIC_REG_RX_RING_BASE, NIC_REG_RX_RING_SIZE,
        NIC_REG_RX_HEAD, NIC_REG_RX_TAIL, NIC_REG_TX_PACKETS,
        NIC_REG_RX_PACKETS, NIC_REG_TE_CRC, NIC_REG_TE_DONE_LEN,
    };
    g_autofree char *dir = g_dir_make_tmp("ioguard-migrate-XXXXXX", NULL);
    g_autofree char *file = g_strdup_printf("%s/state", dir);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree char *incoming = g_strdup_printf(" -incoming %s", uri);
    const uint16_t len = 300;
    uint8_t frame[300], got[300];
    uint32_t before[G_N_ELEMENTS(regs)];
    int64_t saved_at;
    Nic n, m;

    nic_start(&n, "", false);
    qtest_memwrite(n.qts, TE_BUF, frame, sizeof(frame));
    te_run(&n, NIC_TE_OP_READ, TE_BUF, 0, sizeof(frame), 0);
    setup_rings(&n, 8, NIC_CTRL_LOOPBACK);
    nic_fault_add(&n, "site=nic-link,when=once,action=link-flap:40ms");
    fill_frame(frame, sizeof(frame), 9);
    qtest_memwrite(n.qts, TX_BUF, frame, sizeof(frame));
    post_rx(&n, 8, 3, 2048);
    post_tx(&n, 8, &len, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&n, NIC_REG_RX_PACKETS, 1), ==, 1);
    g_assert_cmphex(rd(&n, NIC_REG_STATUS) & NIC_STATUS_LINK_UP, ==, 0);
    saved_at = qtest_clock_step(n.qts, 10 * 1000 * 1000);
    for (int i = 0; i < G_N_ELEMENTS(regs); i++) {
        before[i] = rd(&n, regs[i]);
    }
    qtest_qmp_assert_success(n.qts, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    ioguard_wait_migration(n.qts);
    nic_stop(&n);

    nic_start(&m, incoming, false);
    ioguard_wait_migration(m.qts);
    m.tx_tail = 1;
    m.rx_tail = 3;
    for (int i = 0; i < G_N_ELEMENTS(regs); i++) {
        g_assert_cmphex(rd(&m, regs[i]), ==, before[i]);
    }
    assert_fired(&m, 0, "nic-link", 0);
    /* qtest's clock starts from 0 again (real machines carry theirs). */
    qtest_clock_set(m.qts, saved_at + 29 * 1000 * 1000);
    g_assert_cmphex(rd(&m, NIC_REG_STATUS) & NIC_STATUS_LINK_UP, ==, 0);
    qtest_clock_step(m.qts, 1000 * 1000);
    g_assert_cmphex(rd(&m, NIC_REG_STATUS) & NIC_STATUS_LINK_UP, ==,
                    NIC_STATUS_LINK_UP);
    /* The next frame lands in the next buffer. */
    fill_frame(frame, sizeof(frame), 10);
    qtest_memwrite(m.qts, TX_BUF, frame, sizeof(frame));
    post_tx(&m, 8, &len, 1, TX_BUF);
    g_assert_cmpuint(wait_reg(&m, NIC_REG_RX_PACKETS, 2), ==, 2);
    qtest_memread(m.qts, RX_BUF + 0x4000, got, sizeof(got));
    g_assert(memcmp(frame, got, sizeof(frame)) == 0);
    nic_stop(&m);
    unlink(file);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-nic/identity", test_identity);
    qtest_add_func("/ioguard-nic/loopback-sg", test_loopback_sg);
    qtest_add_func("/ioguard-nic/socket-backend", test_socket_backend);
    qtest_add_func("/ioguard-nic/test-engine", test_test_engine);
    qtest_add_func("/ioguard-nic/hostile-rings", test_hostile_rings);
    qtest_add_func("/ioguard-nic/no-sg", test_no_sg);
    qtest_add_func("/ioguard-nic/behind-iommu", test_behind_iommu);
    qtest_add_func("/ioguard-nic/sva-page-request", test_sva_page_request);
    qtest_add_func("/ioguard-nic/faults/dma", test_fault_dma);
    qtest_add_func("/ioguard-nic/faults/link", test_fault_link);
    qtest_add_func("/ioguard-nic/migration", test_migration);
    return g_test_run();
}
