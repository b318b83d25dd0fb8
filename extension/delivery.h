/*
 * delivery.h
 *		The delivery core shared by the background worker and deliver():
 *		claim due deliveries, send them concurrently, record each attempt.
 */
#ifndef CORTEX_HOOK_DELIVERY_H
#define CORTEX_HOOK_DELIVERY_H

typedef struct Sender Sender;

/* A sender lives in (and is freed with) the given memory context. */
extern Sender *sender_create(MemoryContext parent);
extern void sender_destroy(Sender *s);

/*
 * Claim up to max due deliveries and start sending them; returns how many
 * were claimed.  Needs a transaction; connects to SPI itself.
 */
extern int	sender_claim(Sender *s, int max);
extern int	sender_free_slots(Sender *s);
extern int	sender_in_flight(Sender *s);
extern int	sender_done_count(Sender *s);

/* Wait for HTTP progress, the latch or the timeout; then collect results. */
extern int	sender_wait(Sender *s, long timeout_ms, uint32 wait_event);

/*
 * Record every collected result in the current transaction; returns how
 * many, to forget with sender_forget_done() once it has committed.
 */
extern int	sender_record_all(Sender *s);
extern void sender_forget_done(Sender *s, int n);

/* After a failed batch: record the first result alone, or drop it. */
extern void sender_record_first(Sender *s);
extern void sender_drop_first(Sender *s);

/* Maintenance statements for the worker, each in the caller's transaction. */
extern int	sender_recover_leases(bool all);
extern int	sender_prune(int batch);

#endif
