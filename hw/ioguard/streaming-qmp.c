/*
 * ioguard-iommu: the host STREAMING policy through QMP
 * (query-ioguard-streaming, ioguard-streaming-add, -remove).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-ioguard.h"
#include "hw/ioguard/iommu-engine.h"
#include "hw/ioguard/iommu.h"

/* The rule that requester and the optional range name, checked. */
static bool ioguard_streaming_rule(IoguardIommuState *s, const char *requester,
                                   bool has_first, uint64_t first,
                                   bool has_last, uint64_t last,
                                   IoguardStreamingRule *rule, Error **errp)
{
    if (!ioguard_parse_requester(s, requester, &rule->devid, errp)) {
        return false;
    }
    rule->first = has_first ? first : 0;
    rule->last = has_last ? last : UINT64_MAX;
    if (rule->first > rule->last) {
        error_setg(errp, "IOVA range 0x%" PRIx64 "-0x%" PRIx64 " ends before "
                   "it starts", rule->first, rule->last);
        return false;
    }
    return true;
}

IoguardStreamingInfo *qmp_query_ioguard_streaming(Error **errp)
{
    IoguardIommuState *s = ioguard_the_iommu(errp);
    IoguardStreamingRule rules[IOGUARD_STREAMING_RULES_MAX];
    IoguardStreamingInfo *info;
    IoguardStreamingRuleInfoList **tail;
    size_t n;

    if (!s) {
        return NULL;
    }
    info = g_new0(IoguardStreamingInfo, 1);
    info->qom_path = object_get_canonical_path(OBJECT(s));
    info->prefetch_depth = s->prefetch_depth;
    info->guest_opt_in = ioguard_iommu_guest_streaming_enabled(s->engine);
    info->latency_model = s->latency_model;
    tail = &info->rules;
    n = ioguard_iommu_streaming_rules(s->engine, rules, G_N_ELEMENTS(rules));
    for (size_t i = 0; i < n && i < G_N_ELEMENTS(rules); i++) {
        IoguardStreamingRuleInfo *r = g_new0(IoguardStreamingRuleInfo, 1);

        r->requester = ioguard_requester_name(rules[i].devid);
        r->first = rules[i].first;
        r->last = rules[i].last;
        QAPI_LIST_APPEND(tail, r);
    }
    return info;
}

void qmp_ioguard_streaming_add(const char *requester, bool has_first,
                               uint64_t first, bool has_last, uint64_t last,
                               Error **errp)
{
    IoguardIommuState *s = ioguard_the_iommu(errp);
    IoguardStreamingRule rule;

    if (!s || !ioguard_streaming_rule(s, requester, has_first, first,
                                      has_last, last, &rule, errp)) {
        return;
    }
    if (!ioguard_iommu_add_streaming_rule(s->engine, &rule)) {
        error_setg(errp, "there are already %d STREAMING rules",
                   IOGUARD_STREAMING_RULES_MAX);
    }
}

void qmp_ioguard_streaming_remove(const char *requester, bool has_first,
                                  uint64_t first, bool has_last,
                                  uint64_t last, Error **errp)
{
    IoguardIommuState *s = ioguard_the_iommu(errp);
    IoguardStreamingRule rule;

    if (!s || !ioguard_streaming_rule(s, requester, has_first, first,
                                      has_last, last, &rule, errp)) {
        return;
    }
    if (!ioguard_iommu_remove_streaming_rule(s->engine, &rule)) {
        error_setg(errp, "there is no STREAMING rule for %s from 0x%" PRIx64
                   " to 0x%" PRIx64, requester, rule.first, rule.last);
    }
}
