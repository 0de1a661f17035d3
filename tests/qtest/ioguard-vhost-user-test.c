/*
 * ioguard-iommu and a vhost-user back-end: the IOMMU notifier contract.
 *
 * A virtio-net device with iommu_platform=on is served by a vhost-user
 * back-end. The back-end translates the device's IOVAs by asking QEMU
 * (IOTLB miss on its channel to QEMU, answered with an IOTLB update), keeps
 * what it learnt, and must forget each translation the guest invalidates
 * before the guest's invalidation completes (QEMU sends IOTLB invalidate
 * messages from ioguard's UNMAP notifications).
 *
 * The back-end here is this test: it speaks the vhost-user protocol to
 * QEMU's real vhost-user code over a socket, reads guest memory through the
 * memfd QEMU shares, and records every IOTLB message. The test drives the
 * virtio device as a guest driver would (libqos) and the IOMMU as Linux
 * does (ioguard-iommu-driver.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/mman.h>
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "standard-headers/linux/vhost_types.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/pci_regs.h"
#include "ioguard-iommu-driver.h"

#define VNET_DEVFN      QPCI_DEVFN(5, 0)
#define VNET_DEVID      VNET_DEVFN           /* bus 0 */

/*
 * With ATS: the virtio-net behind a PCIe root port at 00:06.0, on bus 1
 * (a root bus device has no PCIe capabilities, so no ATS). libqos reaches
 * bus 1 by a devfn with the bus in bits 15:8 (CF8's bus field).
 */
#define PORT_DEVFN      QPCI_DEVFN(6, 0)
#define ATS_VNET_DEVFN  (1 << 8)
#define ATS_VNET_DEVID  0x0100               /* 01:00.0 */
#define PORT_WINDOW     0xe0000000           /* libqos maps BARs here */
#define MMCONFIG        0xb0000000           /* q35's PCIEXBAR, enabled here */

/* A page the back-end is given to read, and the two places it maps to. */
#define DATA_IOVA       0x1f0000
#define DATA_GPA_A      0x1800000
#define DATA_GPA_B      0x1801000

/* vhost-user requests and flags (docs/interop/vhost-user.rst) */
enum {
    VU_GET_FEATURES = 1,
    VU_SET_FEATURES = 2,
    VU_SET_MEM_TABLE = 5,
    VU_GET_VRING_BASE = 11,
    VU_GET_PROTOCOL_FEATURES = 15,
    VU_SET_BACKEND_REQ_FD = 21,
    VU_IOTLB_MSG = 22,
    VU_BACKEND_IOTLB_MSG = 1,       /* on the back-end's channel */
};
#define VU_VERSION              0x1
#define VU_REPLY                (1u << 2)
#define VU_NEED_REPLY           (1u << 3)
#define VU_F_PROTOCOL_FEATURES  30
#define VU_PROTOCOL_F_REPLY_ACK 3
#define VU_PROTOCOL_F_BACKEND_REQ 5
#define VU_MAX_REGIONS          8

typedef struct VuHeader {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
} QEMU_PACKED VuHeader;

typedef struct VuRegion {
    uint64_t gpa;
    uint64_t size;
    uint64_t uaddr;         /* QEMU's address of gpa */
    uint64_t mmap_offset;
} VuRegion;

typedef struct VuMemory {
    uint32_t nregions;
    uint32_t padding;
    VuRegion regions[VU_MAX_REGIONS];
} VuMemory;

/* What the back-end knows, and the IOTLB messages it received. */
typedef struct Backend {
    char *dir, *path;
    int listen_fd, fd, backend_fd;
    GThread *thread;
    GMutex lock;
    GCond changed;
    int nregions;
    VuRegion regions[VU_MAX_REGIONS];
    uint8_t *maps[VU_MAX_REGIONS];          /* our mapping of each */
    GArray *iotlb;                          /* struct vhost_iotlb_msg */
} Backend;

static bool read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/* One message from QEMU, with the file descriptors it carries. */
static bool backend_receive(Backend *b, VuHeader *hdr, void *payload,
                            size_t max, int *fds, int *nfds)
{
    char control[CMSG_SPACE(VU_MAX_REGIONS * sizeof(int))];
    struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(*hdr) };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control, .msg_controllen = sizeof(control),
    };
    struct cmsghdr *cmsg;
    ssize_t n;

    do {
        n = recvmsg(b->fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n != sizeof(*hdr)) {
        return false;
    }
    *nfds = 0;
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
            *nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(cmsg), *nfds * sizeof(int));
        }
    }
    g_assert_cmpuint(hdr->size, <=, max);
    return read_full(b->fd, payload, hdr->size);
}

static void backend_reply(Backend *b, uint32_t request, const void *payload,
                          uint32_t size)
{
    VuHeader hdr = { request, VU_VERSION | VU_REPLY, size };

    g_assert_cmpint(write(b->fd, &hdr, sizeof(hdr)), ==, sizeof(hdr));
    g_assert_cmpint(write(b->fd, payload, size), ==, size);
}

static void backend_reply_u64(Backend *b, uint32_t request, uint64_t v)
{
    backend_reply(b, request, &v, sizeof(v));
}

static void backend_map_memory(Backend *b, const VuMemory *m, int *fds,
                               int nfds)
{
    g_assert_cmpint(nfds, ==, m->nregions);
    for (int i = 0; i < b->nregions; i++) {
        munmap(b->maps[i], b->regions[i].size + b->regions[i].mmap_offset);
    }
    b->nregions = m->nregions;
    for (int i = 0; i < b->nregions; i++) {
        b->regions[i] = m->regions[i];
        b->maps[i] = mmap(NULL, m->regions[i].size + m->regions[i].mmap_offset,
                          PROT_READ, MAP_SHARED, fds[i], 0);
        g_assert(b->maps[i] != MAP_FAILED);
        close(fds[i]);
    }
}

/* The back-end's loop: answer QEMU until it hangs up. */
static gpointer backend_thread(gpointer opaque)
{
    Backend *b = opaque;
    union {
        uint64_t u64;
        VuMemory memory;
        struct vhost_iotlb_msg iotlb;
        struct vhost_vring_state state;
        uint8_t bytes[4096];
    } payload;
    VuHeader hdr;
    int fds[VU_MAX_REGIONS], nfds;

    b->fd = accept(b->listen_fd, NULL, NULL);
    g_assert_cmpint(b->fd, >=, 0);
    while (backend_receive(b, &hdr, &payload, sizeof(payload), fds, &nfds)) {
        bool replied = false;

        g_mutex_lock(&b->lock);
        switch (hdr.request) {
        case VU_GET_FEATURES:
            backend_reply_u64(b, hdr.request,
                              1ULL << VIRTIO_F_VERSION_1 |
                              1ULL << VIRTIO_F_ACCESS_PLATFORM |
                              1ULL << VU_F_PROTOCOL_FEATURES);
            replied = true;
            break;
        case VU_GET_PROTOCOL_FEATURES:
            backend_reply_u64(b, hdr.request,
                              1ULL << VU_PROTOCOL_F_REPLY_ACK |
                              1ULL << VU_PROTOCOL_F_BACKEND_REQ);
            replied = true;
            break;
        case VU_SET_MEM_TABLE:
            backend_map_memory(b, &payload.memory, fds, nfds);
            nfds = 0;
            break;
        case VU_SET_BACKEND_REQ_FD:
            g_assert_cmpint(nfds, ==, 1);
            b->backend_fd = fds[0];
            nfds = 0;
            break;
        case VU_GET_VRING_BASE:
            payload.state.num = 0;
            backend_reply(b, hdr.request, &payload.state,
                          sizeof(payload.state));
            replied = true;
            break;
        case VU_IOTLB_MSG:
            g_array_append_val(b->iotlb, payload.iotlb);
            break;
        }
        for (int i = 0; i < nfds; i++) {
            close(fds[i]);          /* kick and call eventfds: not used */
        }
        if ((hdr.flags & VU_NEED_REPLY) && !replied) {
            backend_reply_u64(b, hdr.request, 0);
        }
        g_cond_broadcast(&b->changed);
        g_mutex_unlock(&b->lock);
    }
    return NULL;
}

static void backend_start(Backend *b)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    memset(b, 0, sizeof(*b));
    b->fd = b->backend_fd = -1;
    g_mutex_init(&b->lock);
    g_cond_init(&b->changed);
    b->iotlb = g_array_new(false, true, sizeof(struct vhost_iotlb_msg));
    b->dir = g_dir_make_tmp("ioguard-vhost-user-XXXXXX", NULL);
    g_assert(b->dir);
    b->path = g_strdup_printf("%s/sock", b->dir);
    g_strlcpy(addr.sun_path, b->path, sizeof(addr.sun_path));
    b->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(bind(b->listen_fd, (struct sockaddr *)&addr,
                         sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(b->listen_fd, 1), ==, 0);
    b->thread = g_thread_new("vhost-user-backend", backend_thread, b);
}

static void backend_stop(Backend *b)
{
    g_thread_join(b->thread);
    for (int i = 0; i < b->nregions; i++) {
        munmap(b->maps[i], b->regions[i].size + b->regions[i].mmap_offset);
    }
    close(b->fd);
    close(b->listen_fd);
    if (b->backend_fd >= 0) {
        close(b->backend_fd);
    }
    unlink(b->path);
    rmdir(b->dir);
    g_free(b->path);
    g_free(b->dir);
    g_array_free(b->iotlb, true);
}

/* Waits (10 s at most) until the back-end holds at least n IOTLB messages. */
static bool backend_wait_iotlb(Backend *b, guint n)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    bool ok = true;

    g_mutex_lock(&b->lock);
    while (b->iotlb->len < n && ok) {
        ok = g_cond_wait_until(&b->changed, &b->lock, deadline);
    }
    ok = b->iotlb->len >= n;
    g_mutex_unlock(&b->lock);
    return ok;
}

static struct vhost_iotlb_msg backend_iotlb(Backend *b, guint i)
{
    struct vhost_iotlb_msg m;

    g_mutex_lock(&b->lock);
    m = g_array_index(b->iotlb, struct vhost_iotlb_msg, i);
    g_mutex_unlock(&b->lock);
    return m;
}

static guint backend_iotlb_count(Backend *b)
{
    guint n;

    g_mutex_lock(&b->lock);
    n = b->iotlb->len;
    g_mutex_unlock(&b->lock);
    return n;
}

/* Asks QEMU to translate iova, as a back-end that misses in its IOTLB. */
static void backend_miss(Backend *b, uint64_t iova, uint8_t perm)
{
    struct {
        VuHeader hdr;
        struct vhost_iotlb_msg iotlb;
    } QEMU_PACKED msg = {
        .hdr = { VU_BACKEND_IOTLB_MSG, VU_VERSION, sizeof(msg.iotlb) },
        .iotlb = { .iova = iova, .perm = perm, .type = VHOST_IOTLB_MISS },
    };

    g_assert_cmpint(b->backend_fd, >=, 0);
    g_assert_cmpint(write(b->backend_fd, &msg, sizeof(msg)), ==,
                    sizeof(msg));
}

/* The back-end's own reading of QEMU's address uaddr (NULL: not shared). */
static const uint8_t *backend_memory(Backend *b, uint64_t uaddr, size_t len)
{
    for (int i = 0; i < b->nregions; i++) {
        VuRegion *r = &b->regions[i];

        if (uaddr >= r->uaddr && uaddr + len <= r->uaddr + r->size) {
            return b->maps[i] + r->mmap_offset + (uaddr - r->uaddr);
        }
    }
    return NULL;
}

typedef struct Machine {
    uint16_t devid;                         /* the virtio-net's requester */
    Backend backend;
    QTestState *qts;
    QPCIBus *pcibus;
    QVirtioPCIDevice *vnet;
    QGuestAllocator alloc;
    QVirtQueue *vq[2];
    IoguardIommu iommu;
} Machine;

static void map_ring(Machine *m, QVirtQueue *vq)
{
    uint64_t end = vq->used + 4 + 8 * vq->size + 2;

    for (uint64_t page = vq->desc & ~0xfffULL; page < end; page += 4096) {
        iommu_map_page(&m->iommu, page, page, true);
    }
}

/*
 * What firmware would do for the device behind the root port: MMCONFIG
 * on (the ATS capability is in extended configuration space), bus 1
 * numbered, and the port's windows forwarding libqos's BAR addresses.
 */
static void bring_up_root_port(Machine *m)
{
    QPCIDevice *host = qpci_device_find(m->pcibus, 0);
    QPCIDevice *port = qpci_device_find(m->pcibus, PORT_DEVFN);
    uint32_t window = (PORT_WINDOW + 0xffffff) >> 16 << 16 |
                      PORT_WINDOW >> 16;

    g_assert(host && port);
    qpci_config_writel(host, 0x60, MMCONFIG | 1);  /* PCIEXBAR: 256 buses */
    qpci_config_writel(port, PCI_PRIMARY_BUS, 0x010100);
    qpci_config_writel(port, PCI_MEMORY_BASE, window);
    qpci_config_writel(port, PCI_PREF_MEMORY_BASE, window);
    qpci_config_writel(port, PCI_PREF_BASE_UPPER32, 0);
    qpci_config_writel(port, PCI_PREF_LIMIT_UPPER32, 0);
    qpci_config_writew(port, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    g_free(host);
    g_free(port);
}

/* As Linux's pci_enable_ats() (STU 4 KiB) and pci_disable_ats(). */
static void set_ats(Machine *m, bool enable)
{
    uint64_t config = MMCONFIG + ((uint64_t)ATS_VNET_DEVFN << 12);
    uint16_t ats = 0x100;

    while (ats && (qtest_readl(m->qts, config + ats) & 0xffff) !=
           PCI_EXT_CAP_ID_ATS) {
        ats = qtest_readl(m->qts, config + ats) >> 20;
    }
    g_assert(ats);
    qtest_writew(m->qts, config + ats + PCI_ATS_CTRL,
                 enable ? PCI_ATS_CTRL_ENABLE : 0);
}

/*
 * q35 with ioguard-iommu and a virtio-net on a vhost-user back-end (at
 * 00:05.0, or with ats behind a root port at 01:00.0 with ATS enabled),
 * translated through one page table that maps the virtqueues (IOVA = GPA,
 * as the allocator placed them below 2 MiB); the driver has set
 * DRIVER_OK, so QEMU started the back-end.
 */
static void machine_start_with(Machine *m, bool ats)
{
    const char *fw = g_getenv("IOGUARD_FIRMWARE");
    QPCIAddress addr = { .devfn = ats ? ATS_VNET_DEVFN : VNET_DEVFN };
    uint64_t features;

    memset(m, 0, sizeof(*m));
    m->devid = ats ? ATS_VNET_DEVID : VNET_DEVID;
    backend_start(&m->backend);
    m->qts = qtest_initf(
        "%s%s -M q35,memory-backend=mem -m 256M -nodefaults "
        "-object memory-backend-memfd,id=mem,size=256M,share=on "
        "-device ioguard-iommu,id=iommu0%s "
        "-chardev socket,id=chr0,path=%s "
        "-netdev vhost-user,id=n0,chardev=chr0,vhostforce=on "
        "%s"
        "-device virtio-net-pci,netdev=n0,%s,iommu_platform=on,"
        "disable-legacy=on,romfile=",
        fw ? "-L " : "", fw ? fw : "", ats ? ",device-iotlb=on" : "",
        m->backend.path,
        ats ? "-device pcie-root-port,id=rp,chassis=1,addr=0x6 " : "",
        ats ? "bus=rp,ats=on" : "addr=0x5");
    iommu_enable(&m->iommu, m->qts);

    m->pcibus = qpci_new_pc(m->qts, NULL);
    if (ats) {
        bring_up_root_port(m);
    }
    iommu_build_tables(&m->iommu, m->devid);
    pc_alloc_init(&m->alloc, m->qts, ALLOC_NO_FLAGS);
    m->vnet = virtio_pci_new(m->pcibus, &addr);
    g_assert(m->vnet);
    qvirtio_pci_device_enable(m->vnet);
    qvirtio_start_device(&m->vnet->vdev);
    if (ats) {
        set_ats(m, true);
    }
    features = qvirtio_get_features(&m->vnet->vdev);
    g_assert(features & 1ULL << VIRTIO_F_ACCESS_PLATFORM);
    qvirtio_set_features(&m->vnet->vdev, features &
                         (1ULL << VIRTIO_F_VERSION_1 |
                          1ULL << VIRTIO_F_ACCESS_PLATFORM));
    for (int i = 0; i < 2; i++) {
        m->vq[i] = qvirtqueue_setup(&m->vnet->vdev, &m->alloc, i);
        g_assert_cmphex(m->vq[i]->used + 8 * m->vq[i]->size, <, 0x200000);
        map_ring(m, m->vq[i]);
    }
    qvirtio_set_driver_ok(&m->vnet->vdev);
}

static void machine_stop(Machine *m)
{
    for (int i = 0; i < 2; i++) {
        qvirtqueue_cleanup(m->vnet->vdev.bus, m->vq[i], &m->alloc);
    }
    qvirtio_pci_device_disable(m->vnet);
    g_free(m->vnet);
    alloc_destroy(&m->alloc);
    qpci_free_pc(m->pcibus);
    qtest_quit(m->qts);
    backend_stop(&m->backend);
}

/* Whether a message of the back-end from first on invalidates iova. */
static bool invalidated_since(Backend *b, guint first, uint64_t iova)
{
    for (guint i = first; i < backend_iotlb_count(b); i++) {
        struct vhost_iotlb_msg m = backend_iotlb(b, i);

        if (m.type == VHOST_IOTLB_INVALIDATE && iova >= m.iova &&
            iova - m.iova < m.size) {
            return true;
        }
    }
    return false;
}

/*
 * What the back-end would read at iova from what it holds (the last update
 * for the page that no invalidation has taken back), without asking QEMU.
 */
static bool backend_read_cached(Backend *b, uint64_t iova, uint8_t *out)
{
    const uint8_t *p = NULL;

    for (guint i = 0; i < backend_iotlb_count(b); i++) {
        struct vhost_iotlb_msg m = backend_iotlb(b, i);
        bool covers = iova >= m.iova && iova - m.iova < m.size;

        if (covers && m.type == VHOST_IOTLB_UPDATE) {
            p = backend_memory(b, m.uaddr + (iova - m.iova), 16);
        } else if (covers && m.type == VHOST_IOTLB_INVALIDATE) {
            p = NULL;
        }
    }
    if (p) {
        memcpy(out, p, 16);
    }
    return p;
}

/* The back-end misses on iova and reads 16 bytes where QEMU sends it. */
static void backend_read_through(Machine *m, uint64_t iova, uint8_t *out)
{
    Backend *b = &m->backend;
    guint n = backend_iotlb_count(b);
    struct vhost_iotlb_msg update;
    const uint8_t *p;

    backend_miss(b, iova, VHOST_ACCESS_RO);
    g_assert(backend_wait_iotlb(b, n + 1));
    update = backend_iotlb(b, n);
    g_assert_cmpuint(update.type, ==, VHOST_IOTLB_UPDATE);
    g_assert_cmphex(update.iova, ==, iova & ~0xfffULL);
    g_assert_cmphex(update.size, ==, 4096);
    p = backend_memory(b, update.uaddr + (iova & 0xfff), 16);
    g_assert(p);
    memcpy(out, p, 16);
}

static void invalidate_page(Machine *m, uint64_t iova)
{
    iommu_queue_command(&m->iommu, 0, CMD_INV_IOMMU_PAGES << 28 | DOMAIN,
                        iova, 0);
    iommu_completion_wait(&m->iommu);
}

/* What Linux does in lazy mode: the whole domain at once. */
static void invalidate_domain(Machine *m)
{
    iommu_queue_command(&m->iommu, 0, CMD_INV_IOMMU_PAGES << 28 | DOMAIN,
                        (uint32_t)CMD_INV_IOMMU_ALL_PAGES_ADDRESS |
                        CMD_INV_IOMMU_PAGES_SIZE_MASK |
                        CMD_INV_IOMMU_PAGES_PDE_MASK,
                        CMD_INV_IOMMU_ALL_PAGES_ADDRESS >> 32);
    iommu_completion_wait(&m->iommu);
}

static void invalidate_all(Machine *m)
{
    iommu_queue_command(&m->iommu, 0, CMD_INV_ALL << 28, 0, 0);
    iommu_completion_wait(&m->iommu);
}

/* Whether a message from first on invalidates a page of either ring. */
static bool ring_invalidated_since(Machine *m, guint first)
{
    for (int i = 0; i < 2; i++) {
        QVirtQueue *vq = m->vq[i];

        for (uint64_t page = vq->desc & ~0xfffULL;
             page < vq->used + 4 + 8 * vq->size + 2; page += 4096) {
            if (invalidated_since(&m->backend, first, page)) {
                return true;
            }
        }
    }
    return false;
}

static const uint8_t pattern_a[16] = "first page     ";
static const uint8_t pattern_b[16] = "second page    ";

/* Machine started, the data page mapped to A, the back-end has read it. */
static void machine_start_reading_with(Machine *m, bool ats)
{
    uint8_t seen[16];

    machine_start_with(m, ats);
    g_assert(backend_wait_iotlb(&m->backend, 2));   /* the used rings */
    qtest_memwrite(m->qts, DATA_GPA_A + 0x10, pattern_a, 16);
    qtest_memwrite(m->qts, DATA_GPA_B + 0x10, pattern_b, 16);
    iommu_map_page(&m->iommu, DATA_IOVA, DATA_GPA_A, false);
    backend_read_through(m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_a, 16);
}

static void machine_start_reading(Machine *m)
{
    machine_start_reading_with(m, false);
}

/*
 * The back-end learns the rings when QEMU starts it, reads what the tables
 * map, and after the guest remaps a page and invalidates it, has been told
 * before the invalidation completes: its next miss reads the new page.
 */
static void test_unmap_before_completion(void)
{
    Machine m;
    uint8_t seen[16];
    guint n;

    machine_start_reading(&m);
    /* vhost_dev_start had QEMU translate each used ring, writable. */
    for (int i = 0; i < 2; i++) {
        struct vhost_iotlb_msg u = backend_iotlb(&m.backend, i);

        g_assert_cmpuint(u.type, ==, VHOST_IOTLB_UPDATE);
        g_assert_cmphex(u.iova, ==, m.vq[i]->used & ~0xfffULL);
        g_assert_cmpuint(u.perm, ==, VHOST_ACCESS_RW);
    }

    /* The guest points the IOVA elsewhere and invalidates that page. */
    n = backend_iotlb_count(&m.backend);
    iommu_map_page(&m.iommu, DATA_IOVA, DATA_GPA_B, false);
    invalidate_page(&m, DATA_IOVA);
    g_assert(invalidated_since(&m.backend, n, DATA_IOVA));
    g_assert_false(ring_invalidated_since(&m, n));
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_b, 16);
    machine_stop(&m);
}

/*
 * Linux in lazy mode invalidates whole domains. The back-end is told only
 * of what changed: a back-end (DPDK's) stops a virtqueue whose ring it is
 * told to forget, so the rings, which stay mapped, must stay known.
 */
static void test_domain_invalidation_keeps_what_holds(void)
{
    Machine m;
    uint8_t seen[16];
    guint n;

    machine_start_reading(&m);
    n = backend_iotlb_count(&m.backend);
    invalidate_domain(&m);
    g_assert_cmpuint(backend_iotlb_count(&m.backend), ==, n);

    iommu_map_page(&m.iommu, DATA_IOVA, DATA_GPA_B, false);
    invalidate_domain(&m);
    g_assert(invalidated_since(&m.backend, n, DATA_IOVA));
    g_assert_false(ring_invalidated_since(&m, n));
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_b, 16);

    /* INVALIDATE_IOMMU_ALL: the same, for every domain. */
    n = backend_iotlb_count(&m.backend);
    iommu_map_page(&m.iommu, DATA_IOVA, DATA_GPA_A, false);
    invalidate_all(&m);
    g_assert(invalidated_since(&m.backend, n, DATA_IOVA));
    g_assert_false(ring_invalidated_since(&m, n));
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_a, 16);
    machine_stop(&m);
}

/*
 * A back-end that asks for an IOVA the tables do not map gets no
 * translation, and the guest sees the back-end's access refused in its
 * event log, as it would a device's; the next miss is served.
 */
static void test_refused_miss(void)
{
    Machine m;
    Event ev[4];
    uint8_t seen[16];
    gint64 deadline;
    guint n;
    int events = 0;

    machine_start_reading(&m);
    g_assert_cmpint(iommu_read_events(&m.iommu, ev, 4), ==, 0);
    n = backend_iotlb_count(&m.backend);
    backend_miss(&m.backend, DATA_IOVA + 0x1000, VHOST_ACCESS_RO);
    deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    while (!events && g_get_monotonic_time() < deadline) {
        events = iommu_read_events(&m.iommu, ev, 4);
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(events, ==, 1);
    g_assert_cmpuint(ev[0].dw[0] & 0xffff, ==, m.devid);
    g_assert_cmpuint(ev[0].dw[1] >> 28, ==, EVENT_TYPE_IO_FAULT);
    g_assert_cmphex(ev[0].dw[2], ==, DATA_IOVA + 0x1000);

    /* Misses are answered in order: this one's answer is the next. */
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_a, 16);
    g_assert_cmpuint(backend_iotlb_count(&m.backend), ==, n + 1);
    machine_stop(&m);
}

/*
 * A device table entry that stops translating (V=0: the requester sees
 * memory directly) makes everything the back-end learnt stale, the rings
 * too; translated again, it learns from the tables anew.
 */
static void test_dte_change_forgets_everything(void)
{
    Machine m;
    uint8_t seen[16];
    guint n;

    machine_start_reading(&m);
    n = backend_iotlb_count(&m.backend);
    iommu_set_dte(&m.iommu, m.devid, 0, 0);
    g_assert(invalidated_since(&m.backend, n, DATA_IOVA));
    g_assert(invalidated_since(&m.backend, n, m.vq[0]->used));
    g_assert(invalidated_since(&m.backend, n, m.vq[1]->used));

    /* New tables: the IOTLB is the guest's to invalidate, as ever. */
    iommu_build_tables(&m.iommu, m.devid);
    for (int i = 0; i < 2; i++) {
        map_ring(&m, m.vq[i]);
    }
    iommu_map_page(&m.iommu, DATA_IOVA, DATA_GPA_B, false);
    invalidate_domain(&m);
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_b, 16);
    machine_stop(&m);
}

/*
 * With ATS enabled, the back-end is the device's own translation cache
 * (QEMU's device-IOTLB notifier): the IOMMU's page invalidation leaves it
 * alone, INVALIDATE_IOTLB_PAGES for the device empties it, before the
 * guest's COMPLETION_WAIT.
 */
static void test_device_iotlb(void)
{
    Machine m;
    uint8_t seen[16];
    guint n;

    machine_start_reading_with(&m, true);
    /*
     * The guest turns ATS off and on again; vhost registers anew each
     * time and still holds what it learnt.
     */
    set_ats(&m, false);
    set_ats(&m, true);
    n = backend_iotlb_count(&m.backend);
    iommu_map_page(&m.iommu, DATA_IOVA, DATA_GPA_B, false);
    invalidate_page(&m, DATA_IOVA);
    g_assert_cmpuint(backend_iotlb_count(&m.backend), ==, n);

    /* As Linux's build_inv_iotlb_pages: MaxPend 32, the queue ID. */
    iommu_queue_command(&m.iommu, ATS_VNET_DEVID | 32u << 24,
                        CMD_INV_IOTLB_PAGES << 28 | ATS_VNET_DEVID,
                        DATA_IOVA, 0);
    iommu_completion_wait(&m.iommu);
    g_assert(invalidated_since(&m.backend, n, DATA_IOVA));
    g_assert_false(ring_invalidated_since(&m, n));
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_b, 16);
    machine_stop(&m);
}

/*
 * A new rule has the glue check every record against the tables (rules
 * can change which requesters are identity), so the test changes the
 * tables after adding it.
 */
static void fault_add(Machine *m, const char *rule)
{
    QDict *resp = qtest_qmp(m->qts, "{'execute': 'ioguard-fault-add', "
                            "'arguments': {'device': 'iommu0', 'rule': %s}}",
                            rule);

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/*
 * Fault rules at the notifier site: dropped, the guest's invalidation
 * completes and the back-end goes on reading the page the IOVA no longer
 * maps (what a campaign shows a back-end doing with a stale translation);
 * delayed, it is told when the virtual clock gets there.
 */
static void test_notifier_faults(void)
{
    Machine m;
    uint8_t seen[16];
    guint n;

    machine_start_reading(&m);
    fault_add(&m, "site=notifier,when=once,action=drop");
    n = backend_iotlb_count(&m.backend);
    iommu_map_page(&m.iommu, DATA_IOVA, DATA_GPA_B, false);
    invalidate_page(&m, DATA_IOVA);
    g_assert_cmpuint(backend_iotlb_count(&m.backend), ==, n);
    g_assert(backend_read_cached(&m.backend, DATA_IOVA + 0x10, seen));
    g_assert_cmpmem(seen, 16, pattern_a, 16);

    /* The next check of every record heals it: adding a rule is one. */
    fault_add(&m, "site=notifier,when=once,action=delay:1ms");
    g_assert(invalidated_since(&m.backend, n, DATA_IOVA));
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_b, 16);

    n = backend_iotlb_count(&m.backend);
    iommu_map_page(&m.iommu, DATA_IOVA, DATA_GPA_A, false);
    invalidate_page(&m, DATA_IOVA);
    g_assert_cmpuint(backend_iotlb_count(&m.backend), ==, n);
    qtest_clock_step(m.qts, 1000 * 1000);
    g_assert(invalidated_since(&m.backend, n, DATA_IOVA));
    g_assert_false(backend_read_cached(&m.backend, DATA_IOVA + 0x10, seen));
    backend_read_through(&m, DATA_IOVA + 0x10, seen);
    g_assert_cmpmem(seen, 16, pattern_a, 16);
    machine_stop(&m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ioguard-iommu/vhost-user/unmap-before-completion",
                   test_unmap_before_completion);
    qtest_add_func("/ioguard-iommu/vhost-user/domain-invalidation-keeps-"
                   "what-holds", test_domain_invalidation_keeps_what_holds);
    qtest_add_func("/ioguard-iommu/vhost-user/refused-miss",
                   test_refused_miss);
    qtest_add_func("/ioguard-iommu/vhost-user/dte-change-forgets-everything",
                   test_dte_change_forgets_everything);
    qtest_add_func("/ioguard-iommu/vhost-user/device-iotlb",
                   test_device_iotlb);
    qtest_add_func("/ioguard-iommu/vhost-user/notifier-faults",
                   test_notifier_faults);
    return g_test_run();
}
