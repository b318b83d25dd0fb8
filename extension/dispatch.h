/*
 * dispatch.h
 *		Event handling shared by the trigger, preview(), matches() and
 *		test_webhook().
 */
#ifndef CORTEX_HOOK_DISPATCH_H
#define CORTEX_HOOK_DISPATCH_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/jsonb.h"

#include "template.h"

extern uint32 cortex_hook_trigger_mask(Datum triggers);
extern HeapTuple cortex_hook_webhook_by_name(const char *name, TupleDesc *desc);
extern const char *cortex_hook_render_webhook(const char *url_src, const char *body_src,
											  const TplContext *ctx, char **url, text **body);

#endif
