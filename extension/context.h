/*
 * context.h
 *		The template context over jsonb (context.c).
 */
#ifndef CORTEX_HOOK_CONTEXT_H
#define CORTEX_HOOK_CONTEXT_H

#include "utils/jsonb.h"

#include "template.h"

typedef struct EventContext
{
	bool		row;			/* first level from a row's columns */
	const char *event_type;
	const char *event_time;
	bool		has_id;
	int64		event_id;
	Jsonb	   *data;			/* row: the data column */
	Jsonb	   *event;			/* not row: the whole event */
} EventContext;

extern void event_context_for_row(EventContext *ec, TplContext *ctx,
								  const char *event_type, const char *event_time,
								  bool has_id, int64 event_id, Jsonb *data);
extern void event_context_for_jsonb(EventContext *ec, TplContext *ctx, Jsonb *event);

#endif
