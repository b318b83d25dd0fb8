/*
 * cortex_hook.h
 *		Declarations shared by the PostgreSQL side of cortex_hook.
 */
#ifndef CORTEX_HOOK_H
#define CORTEX_HOOK_H

#include "postgres.h"

#include "fmgr.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"


#define CORTEX_HOOK_VERSION "1.0"
#define CORTEX_HOOK_USER_AGENT "cortex_hook/" CORTEX_HOOK_VERSION

/* Settings (cortex_hook.c) */
extern char *cortex_hook_database_name;
extern char *cortex_hook_allowed_hosts;
extern int	cortex_hook_max_in_flight;
extern int	cortex_hook_poll_interval;
extern int	cortex_hook_log_retention;
extern int	cortex_hook_response_body_limit;
extern int	cortex_hook_max_body_size;
extern char *cortex_hook_ca_file;

/* cortex_hook.c: waking the worker */
extern void cortex_hook_wake_at_commit(void);
extern void cortex_hook_worker_attach(void);
extern void cortex_hook_worker_detach(void);
extern void cortex_hook_worker_set_wakeable(bool wakeable);
extern void cortex_hook_launcher_attach(void);
extern bool cortex_hook_worker_running(void);

/* The event types, in enum order; a webhook's triggers are a bit mask. */
#define NUM_EVENT_TYPES 6
extern const char *const cortex_hook_event_types[NUM_EVENT_TYPES];
extern int	cortex_hook_event_type_index(const char *label);

/* filter.c */
typedef struct Filter Filter;
typedef struct FilterEvent FilterEvent;
extern Filter *filter_compile(Jsonb *filters, MemoryContext cxt);
extern bool filter_has_condition(const Filter *f);
extern FilterEvent *filter_event(JsonbContainer *data);
extern bool filter_match(const Filter *f, FilterEvent *fe, Jsonb *event_jsonb);

/* util */
extern Jsonb *cortex_hook_build_event(const char *event_type, TimestampTz event_time,
									  bool has_id, int64 event_id, Jsonb *data);
extern char *cortex_hook_format_time(TimestampTz t);

/* A header's value is shown as "[redacted]" when this is true. */
extern bool cortex_hook_header_is_secret(const char *name);

#endif
