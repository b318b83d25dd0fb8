/*
 * worker.h
 *		The cortex_hook background worker.
 */
#ifndef CORTEX_HOOK_WORKER_H
#define CORTEX_HOOK_WORKER_H

#include "tcop/utility.h"

extern void cortex_hook_worker_register(void);
extern void cortex_hook_process_utility(PlannedStmt *pstmt, const char *queryString,
										bool readOnlyTree, ProcessUtilityContext context,
										ParamListInfo params, QueryEnvironment *queryEnv,
										DestReceiver *dest, QueryCompletion *qc);

/* cortex_hook.c: shared flag for a dropped worker database */
extern void cortex_hook_worker_database_gone(bool gone);
extern bool cortex_hook_worker_database_is_gone(void);

#endif
