/*
 * http.h
 *		cortex_hook's HTTP client: libcurl's multi interface driven through one
 *		epoll descriptor, so that a caller can wait on it beside its latch.
 *
 * Plain C and libcurl only; no PostgreSQL headers.  Nothing here raises an
 * error: failures are reported in the request.
 */
#ifndef CORTEX_HOOK_HTTP_H
#define CORTEX_HOOK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- allowed hosts (cortex_hook.allowed_hosts) ---- */
typedef struct HostList HostList;

extern HostList *hostlist_parse(const char *spec, char *err, size_t errlen);
extern void hostlist_free(HostList *list);

/* ---- requests ---- */
typedef enum HttpOutcome
{
	HTTP_RESPONSE,				/* a status line arrived (any status) */
	HTTP_TRANSPORT_ERROR,		/* DNS, connect, TLS, timeout, reset ... */
	HTTP_POLICY_ERROR			/* refused by us: host or address not allowed */
} HttpOutcome;

typedef struct HttpRequest
{
	/* set by the caller */
	long		user;			/* caller's tag */
	long		timeout_ms;
	size_t		response_limit;

	/* results */
	HttpOutcome outcome;
	int			status;			/* HTTP status, 0 without a response */
	char	   *body;			/* response body prefix, NUL-terminated */
	size_t		body_len;
	bool		body_truncated;
	char	   *headers;		/* response headers: "name\0value\0" pairs */
	size_t		headers_len;
	int			nheaders;
	bool		headers_truncated;
	double		duration_ms;
	char		error[512];		/* empty when there was no error */

	/* private */
	struct HttpPrivate *priv;
} HttpRequest;

extern HttpRequest *http_request_new(const char *method, const char *url,
									 const char *body, size_t body_len);
extern bool http_request_add_header(HttpRequest *req, const char *name,
									const char *value);
extern void http_request_free(HttpRequest *req);
extern const char *http_request_header(const HttpRequest *req, const char *name);

/* ---- the client: many requests in flight, connections kept alive ---- */
typedef struct HttpClient HttpClient;

extern HttpClient *http_client_new(char *err, size_t errlen);
extern void http_client_free(HttpClient *client);	/* frees requests in flight */
extern void http_client_set_policy(HttpClient *client, const HostList *allowed,
								   const char *ca_file);

/*
 * Start a request.  Returns false when it finished at once (a refused host,
 * a bad URL); the request then carries its outcome and is not queued.
 */
extern bool http_start(HttpClient *client, HttpRequest *req);
extern int	http_fd(HttpClient *client);	/* readable when there is work */
extern long http_timeout_ms(HttpClient *client);	/* -1: no timer */
extern void http_run(HttpClient *client);	/* never blocks */
extern HttpRequest *http_next_done(HttpClient *client);

extern long http_retry_after_seconds(const char *value, long now);

#endif
