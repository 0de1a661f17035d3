/*
 * What the ioguard qtests share for migration: waiting for it to end.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef IOGUARD_MIGRATION_H
#define IOGUARD_MIGRATION_H

#include "libqtest.h"
#include "qobject/qdict.h"

/* Until the outgoing or incoming migration of qts has completed. */
static inline void ioguard_wait_migration(QTestState *qts)
{
    for (int i = 0; i < 3000; i++) {
        QDict *resp = qtest_qmp(qts, "{'execute': 'query-migrate'}");
        QDict *ret = qdict_get_qdict(resp, "return");
        const char *status = qdict_haskey(ret, "status") ?
                             qdict_get_str(ret, "status") : "none";
        bool done = !strcmp(status, "completed");

        g_assert_cmpstr(status, !=, "failed");
        qobject_unref(resp);
        if (done) {
            return;
        }
        g_usleep(10000);
    }
    g_assert_not_reached();
}

#endif
