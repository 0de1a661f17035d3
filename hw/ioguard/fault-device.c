/*
 * Fault rules on ioguard's devices: the fault-rules file, the QMP commands
 * (ioguard-fault-add, ioguard-fault-remove, query-ioguard-fault-rules) and
 * the trace event of each fault fired. The rules themselves and the
 * decisions are the engine's (hw/ioguard/fault-injection/fault_rules.cc).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-ioguard.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "hw/ioguard/fault-device.h"
#include "hw/pci/pci.h"
#include "trace.h"

typedef struct FaultDevice {
    DeviceState *dev;
    IoguardFaults *faults;
    uint32_t sites;
    void (*changed)(DeviceState *dev);
    char *path;                 /* for the trace */
} FaultDevice;

/* The devices that have an injector, for QMP (touched with the BQL held). */
static GPtrArray *fault_devices;

static uint64_t fault_now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
}

static void fault_fired(const IoguardFiredFault *f, void *opaque)
{
    FaultDevice *fd = opaque;

    trace_ioguard_fault_fired(fd->path, f->seq, f->rule,
                              ioguard_fault_site_name(f->site),
                              ioguard_fault_action_name(f->action),
                              f->hit.requester, f->hit.address, f->hit.write,
                              f->hit.opcode);
}

static bool fault_load_file(IoguardFaults *faults, uint32_t sites,
                            const char *file, Error **errp)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents(file, &text, NULL, &gerr)) {
        error_setg(errp, "fault-rules=%s: %s", file, gerr->message);
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (size_t i = 0; lines[i]; i++) {
        char *line = g_strstrip(lines[i]);
        char message[256];

        if (!*line || *line == '#') {
            continue;
        }
        if (ioguard_faults_rules(faults, NULL, 0) >= IOGUARD_FAULT_RULES_MAX) {
            error_setg(errp, "fault-rules=%s line %zu: more than %d rules",
                       file, i + 1, IOGUARD_FAULT_RULES_MAX);
            return false;
        }
        if (!ioguard_faults_add(faults, line, fault_now_ns(), sites, message,
                                sizeof(message))) {
            error_setg(errp, "fault-rules=%s line %zu: %s", file, i + 1,
                       message);
            return false;
        }
    }
    return true;
}

IoguardFaults *ioguard_fault_device_new(DeviceState *dev, uint32_t sites,
                                        const char *rules_file, uint64_t seed,
                                        void (*changed)(DeviceState *dev),
                                        Error **errp)
{
    IoguardFaults *faults = ioguard_faults_new(seed);
    FaultDevice *fd;

    if (rules_file && !fault_load_file(faults, sites, rules_file, errp)) {
        ioguard_faults_free(faults);
        return NULL;
    }
    fd = g_new0(FaultDevice, 1);
    fd->dev = dev;
    fd->faults = faults;
    fd->sites = sites;
    fd->changed = changed;
    fd->path = object_get_canonical_path(OBJECT(dev));
    if (!fault_devices) {
        fault_devices = g_ptr_array_new();
    }
    g_ptr_array_add(fault_devices, fd);
    ioguard_faults_set_listener(faults, fault_fired, fd);
    return faults;
}

void ioguard_fault_device_free(IoguardFaults *faults)
{
    for (guint i = 0; faults && fault_devices && i < fault_devices->len; i++) {
        FaultDevice *fd = g_ptr_array_index(fault_devices, i);

        if (fd->faults == faults) {
            g_ptr_array_remove_index(fault_devices, i);
            g_free(fd->path);
            g_free(fd);
            break;
        }
    }
    ioguard_faults_free(faults);
}

bool ioguard_fault_check(IoguardFaults *faults, unsigned site,
                         uint16_t requester, uint64_t address, bool write,
                         IoguardFiredFault *fired)
{
    IoguardFaultHit hit = {
        .requester = requester, .address = address, .write = write,
        .opcode = -1,
    };

    return ioguard_faults_armed(faults, site) &&
           ioguard_faults_check(faults, site, &hit, fault_now_ns(), fired);
}

/* ---- QMP ---- */

/*
 * The device a QMP argument names: its id, its QOM path, or the type name
 * (ioguard-iommu, ioguard-nic) when there is one device of that type.
 */
static FaultDevice *fault_device_find(const char *name, Error **errp)
{
    FaultDevice *by_type = NULL;
    unsigned of_type = 0;

    for (guint i = 0; fault_devices && i < fault_devices->len; i++) {
        FaultDevice *fd = g_ptr_array_index(fault_devices, i);

        if ((fd->dev->id && !strcmp(fd->dev->id, name)) ||
            !strcmp(fd->path, name)) {
            return fd;
        }
        if (!strcmp(object_get_typename(OBJECT(fd->dev)), name)) {
            by_type = fd;
            of_type++;
        }
    }
    if (of_type == 1) {
        return by_type;
    }
    if (of_type > 1) {
        error_setg(errp, "there are %u %s devices: name one by its id or "
                   "QOM path", of_type, name);
    } else {
        error_setg(errp, "'%s' is not an ioguard device with fault rules "
                   "(give an id, a QOM path, ioguard-iommu or ioguard-nic)",
                   name);
    }
    return NULL;
}

static IoguardFaultRuleInfo *fault_rule_info(const IoguardFaultRuleEntry *r)
{
    IoguardFaultRuleInfo *info = g_new0(IoguardFaultRuleInfo, 1);

    info->id = r->id;
    info->rule = g_strdup(r->text);
    info->matches = r->matches;
    info->fired = r->fired;
    return info;
}

IoguardFaultRuleInfo *qmp_ioguard_fault_add(const char *device,
                                            const char *rule, Error **errp)
{
    FaultDevice *fd = fault_device_find(device, errp);
    IoguardFaultRuleEntry rules[IOGUARD_FAULT_RULES_MAX];
    char message[256];
    uint32_t id;
    size_t n;

    if (!fd) {
        return NULL;
    }
    n = ioguard_faults_rules(fd->faults, NULL, 0);
    if (n >= IOGUARD_FAULT_RULES_MAX) {
        error_setg(errp, "%s already has %d rules", device,
                   IOGUARD_FAULT_RULES_MAX);
        return NULL;
    }
    id = ioguard_faults_add(fd->faults, rule, fault_now_ns(), fd->sites,
                            message, sizeof(message));
    if (!id) {
        error_setg(errp, "rule '%s': %s", rule, message);
        return NULL;
    }
    if (fd->changed) {
        fd->changed(fd->dev);
    }
    n = ioguard_faults_rules(fd->faults, rules, G_N_ELEMENTS(rules));
    for (size_t i = 0; i < n && i < G_N_ELEMENTS(rules); i++) {
        if (rules[i].id == id) {
            return fault_rule_info(&rules[i]);
        }
    }
    g_assert_not_reached();
}

void qmp_ioguard_fault_remove(const char *device, uint32_t id, Error **errp)
{
    FaultDevice *fd = fault_device_find(device, errp);

    if (!fd) {
        return;
    }
    if (!ioguard_faults_remove(fd->faults, id)) {
        error_setg(errp, "%s has no fault rule %" PRIu32, device, id);
        return;
    }
    if (fd->changed) {
        fd->changed(fd->dev);
    }
}

static IoguardFiredFaultInfo *fired_fault_info(const IoguardFiredFault *f)
{
    IoguardFiredFaultInfo *info = g_new0(IoguardFiredFaultInfo, 1);
    unsigned site = f->site;

    info->seq = f->seq;
    info->rule = f->rule;
    info->time_ns = f->time_ns;
    info->site = g_strdup(ioguard_fault_site_name(site));
    info->action = g_strdup(ioguard_fault_action_name(f->action));
    if (f->action == IOGUARD_FAULT_ACTION_DELAY ||
        f->action == IOGUARD_FAULT_ACTION_LINK_FLAP) {
        info->has_delay_ns = true;
        info->delay_ns = f->delay_ns;
    }
    /* What the check was about, as far as the site has it. */
    if (site == IOGUARD_FAULT_SITE_TRANSLATE ||
        site == IOGUARD_FAULT_SITE_PAGE_WALK ||
        site == IOGUARD_FAULT_SITE_DTE_FETCH ||
        site == IOGUARD_FAULT_SITE_INTERRUPT ||
        site == IOGUARD_FAULT_SITE_DEVICE_IOTLB ||
        site == IOGUARD_FAULT_SITE_PAGE_REQUEST ||
        site == IOGUARD_FAULT_SITE_PAGE_RESPONSE) {
        info->requester = g_strdup_printf("%02x:%02x.%x",
                                          PCI_BUS_NUM(f->hit.requester),
                                          PCI_SLOT(f->hit.requester),
                                          PCI_FUNC(f->hit.requester));
    }
    if (site != IOGUARD_FAULT_SITE_COMPLETION_WAIT &&
        site != IOGUARD_FAULT_SITE_NIC_LINK) {
        info->has_address = true;
        info->address = f->hit.address;
    }
    if (site == IOGUARD_FAULT_SITE_TRANSLATE ||
        site == IOGUARD_FAULT_SITE_PAGE_WALK ||
        site == IOGUARD_FAULT_SITE_DTE_FETCH ||
        site == IOGUARD_FAULT_SITE_NIC_DMA) {
        info->access = g_strdup(f->hit.write ? "write" : "read");
    }
    if (site == IOGUARD_FAULT_SITE_COMMAND) {
        info->has_opcode = true;
        info->opcode = f->hit.opcode;
    }
    return info;
}

static IoguardFaultRulesInfo *fault_rules_info(FaultDevice *fd)
{
    IoguardFaultRulesInfo *info = g_new0(IoguardFaultRulesInfo, 1);
    IoguardFaultRuleEntry *rules = g_new(IoguardFaultRuleEntry,
                                         IOGUARD_FAULT_RULES_MAX);
    IoguardFiredFault *fired = g_new(IoguardFiredFault,
                                     IOGUARD_FAULTS_FIRED_MAX);
    IoguardFaultRuleInfoList **rule_tail = &info->rules;
    IoguardFiredFaultInfoList **fired_tail = &info->fired;
    size_t n;

    info->qom_path = g_strdup(fd->path);
    if (fd->dev->id) {
        info->id = g_strdup(fd->dev->id);
    }
    info->seed = ioguard_faults_seed(fd->faults);
    n = ioguard_faults_rules(fd->faults, rules, IOGUARD_FAULT_RULES_MAX);
    for (size_t i = 0; i < n && i < IOGUARD_FAULT_RULES_MAX; i++) {
        QAPI_LIST_APPEND(rule_tail, fault_rule_info(&rules[i]));
    }
    n = ioguard_faults_fired(fd->faults, fired, IOGUARD_FAULTS_FIRED_MAX,
                             &info->fired_dropped);
    for (size_t i = 0; i < n && i < IOGUARD_FAULTS_FIRED_MAX; i++) {
        QAPI_LIST_APPEND(fired_tail, fired_fault_info(&fired[i]));
    }
    g_free(rules);
    g_free(fired);
    return info;
}

IoguardFaultRulesInfoList *qmp_query_ioguard_fault_rules(const char *device,
                                                         Error **errp)
{
    IoguardFaultRulesInfoList *list = NULL, **tail = &list;

    if (device) {
        FaultDevice *fd = fault_device_find(device, errp);

        if (fd) {
            QAPI_LIST_APPEND(tail, fault_rules_info(fd));
        }
        return list;
    }
    for (guint i = 0; fault_devices && i < fault_devices->len; i++) {
        QAPI_LIST_APPEND(tail, fault_rules_info(
                                   g_ptr_array_index(fault_devices, i)));
    }
    return list;
}
