/*
 * http.c
 *		The HTTP client behind cortex_hook deliveries and tests.
 *
 * libcurl's multi interface with its socket callbacks feeding one epoll
 * descriptor: the caller waits on that descriptor and its own latch at the
 * same time, calls http_run() when either fires, and collects finished
 * requests with http_next_done().  Connections live in the multi handle and
 * are reused across requests (keep-alive).
 *
 * Policy lives here too, so that no request can bypass it: only http and
 * https, no redirects, TLS always verified, the URL's host checked against
 * cortex_hook.allowed_hosts before anything is sent, and every address about
 * to be connected to checked again (an allowed name that resolves to an
 * internal address is refused unless that address is allowed explicitly).
 *
 * Plain C and libcurl only: callbacks never call into PostgreSQL.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define MAX_RESPONSE_HEADER_BYTES	(64 * 1024)
#define MAX_RESPONSE_HEADERS		256

/* ---------------------------------------------------------------------
 * Allowed hosts
 * --------------------------------------------------------------------- */

typedef enum EntryKind
{
	ENTRY_ANY_NAME,				/* "*" */
	ENTRY_SUFFIX,				/* "*.example.com" */
	ENTRY_NAME,					/* "api.example.com" */
	ENTRY_ADDR					/* "10.1.2.3", "10.0.0.0/8", "::1" */
} EntryKind;

typedef struct HostEntry
{
	EntryKind	kind;
	char	   *name;			/* lower case; for SUFFIX includes the dot */
	int			family;
	unsigned char addr[16];
	int			prefix;
} HostEntry;

struct HostList
{
	int			n;
	HostEntry  *entries;
};

/* Parse an address literal (no brackets) into family/bytes. */
static bool
parse_addr(const char *s, int *family, unsigned char *addr)
{
	if (inet_pton(AF_INET, s, addr) == 1)
	{
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, addr) == 1)
	{
		*family = AF_INET6;
		return true;
	}
	return false;
}

static bool
valid_hostname(const char *s)
{
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char) *s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	return true;
}

void
hostlist_free(HostList *list)
{
	if (!list)
		return;
	for (int i = 0; i < list->n; i++)
		free(list->entries[i].name);
	free(list->entries);
	free(list);
}

HostList *
hostlist_parse(const char *spec, char *err, size_t errlen)
{
	HostList   *list = calloc(1, sizeof(HostList));
	char	   *copy = strdup(spec ? spec : "");
	char	   *save = NULL;
	int			cap = 0;

	if (!list || !copy)
	{
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		HostEntry	e;
		char	   *slash;
		char	   *end;

		while (isspace((unsigned char) *tok))
			tok++;
		end = tok + strlen(tok);
		while (end > tok && isspace((unsigned char) end[-1]))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		memset(&e, 0, sizeof(e));
		for (char *c = tok; *c; c++)
			*c = tolower((unsigned char) *c);
		if (tok[0] == '[' && end[-1] == ']')
		{
			end[-1] = '\0';
			tok++;
		}
		slash = strchr(tok, '/');
		if (slash)
			*slash = '\0';
		if (parse_addr(tok, &e.family, e.addr))
		{
			int			max = e.family == AF_INET ? 32 : 128;

			e.kind = ENTRY_ADDR;
			e.prefix = max;
			if (slash)
			{
				char	   *pend;
				long		p = strtol(slash + 1, &pend, 10);

				if (slash[1] == '\0' || *pend != '\0' || p < 0 || p > max)
				{
					snprintf(err, errlen, "invalid prefix length in \"%s/%s\"", tok, slash + 1);
					goto fail;
				}
				e.prefix = (int) p;
			}
		}
		else if (slash)
		{
			snprintf(err, errlen, "\"%s\" is not an IP address, so it cannot have a prefix length", tok);
			goto fail;
		}
		else if (strcmp(tok, "*") == 0)
			e.kind = ENTRY_ANY_NAME;
		else if (tok[0] == '*' && tok[1] == '.' && valid_hostname(tok + 2))
		{
			e.kind = ENTRY_SUFFIX;
			e.name = strdup(tok + 1);
		}
		else if (valid_hostname(tok))
		{
			e.kind = ENTRY_NAME;
			e.name = strdup(tok);
		}
		else
		{
			snprintf(err, errlen, "\"%s\" is not a host name, \"*\", \"*.domain\", IP address or CIDR range", tok);
			goto fail;
		}
		if ((e.kind == ENTRY_SUFFIX || e.kind == ENTRY_NAME) && e.name == NULL)
		{
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (list->n == cap)
		{
			HostEntry  *grown;

			cap = cap ? cap * 2 : 8;
			grown = realloc(list->entries, cap * sizeof(HostEntry));
			if (!grown)
			{
				free(e.name);
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			list->entries = grown;
		}
		list->entries[list->n++] = e;
	}
	free(copy);
	return list;

fail:
	free(copy);
	hostlist_free(list);
	return NULL;
}

static bool
prefix_contains(const HostEntry *e, int family, const unsigned char *addr)
{
	int			bits = e->prefix;
	int			bytes = bits / 8;

	if (e->family != family)
		return false;
	if (memcmp(e->addr, addr, bytes) != 0)
		return false;
	if (bits % 8)
	{
		unsigned char mask = (unsigned char) (0xFF << (8 - bits % 8));

		if ((e->addr[bytes] & mask) != (addr[bytes] & mask))
			return false;
	}
	return true;
}

static bool
list_names_addr(const HostList *list, int family, const unsigned char *addr)
{
	for (int i = 0; i < list->n; i++)
		if (list->entries[i].kind == ENTRY_ADDR &&
			prefix_contains(&list->entries[i], family, addr))
			return true;
	return false;
}

/* Loopback, private, link-local and unspecified addresses. */
static bool
addr_is_internal(int family, const unsigned char *a)
{
	if (family == AF_INET)
		return a[0] == 127 || a[0] == 10 || a[0] == 0 ||
			(a[0] == 172 && (a[1] & 0xF0) == 16) ||
			(a[0] == 192 && a[1] == 168) ||
			(a[0] == 169 && a[1] == 254) ||
			(a[0] == 100 && (a[1] & 0xC0) == 64);
	{
		static const unsigned char loop[16] = {[15] = 1};
		static const unsigned char any[16] = {0};
		static const unsigned char mapped[12] = {[10] = 0xFF,[11] = 0xFF};

		if (memcmp(a, loop, 16) == 0 || memcmp(a, any, 16) == 0)
			return true;
		if (memcmp(a, mapped, 12) == 0)
			return addr_is_internal(AF_INET, a + 12);
		return (a[0] & 0xFE) == 0xFC || (a[0] == 0xFE && (a[1] & 0xC0) == 0x80);
	}
}

/* The URL's host (as curl gives it: lower or mixed case, v6 in brackets). */
static bool
hostlist_allows_host(const HostList *list, const char *host)
{
	char		buf[256];
	size_t		n = strlen(host);
	int			family;
	unsigned char addr[16];

	if (n == 0 || n >= sizeof(buf))
		return false;
	if (host[0] == '[' && host[n - 1] == ']')
	{
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
	}
	else
	{
		for (size_t i = 0; i <= n; i++)
			buf[i] = tolower((unsigned char) host[i]);
		if (n > 1 && buf[n - 1] == '.')
			buf[n - 1] = '\0';	/* "host." is "host" */
	}
	if (parse_addr(buf, &family, addr))
		return list_names_addr(list, family, addr);

	for (int i = 0; i < list->n; i++)
	{
		const HostEntry *e = &list->entries[i];
		size_t		bl = strlen(buf);

		if (e->kind == ENTRY_ANY_NAME)
			return true;
		if (e->kind == ENTRY_NAME && strcmp(e->name, buf) == 0)
			return true;
		if (e->kind == ENTRY_SUFFIX && bl > strlen(e->name) &&
			strcmp(buf + bl - strlen(e->name), e->name) == 0)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------------
 * Requests
 * --------------------------------------------------------------------- */

struct HttpPrivate
{
	CURL	   *easy;
	struct curl_slist *hdrs;
	char	   *method;
	char	   *url;
	char	   *body;
	size_t		body_len;
	size_t		body_cap;
	size_t		headers_cap;
	bool		https;
	bool		aborted_at_limit;
	bool		policy_refused;
	HttpClient *client;
	HttpRequest *next;			/* in the client's in-flight or done list */
	HttpRequest *prev;
	char		errbuf[CURL_ERROR_SIZE];
};

struct HttpClient
{
	CURLM	   *multi;
	int			epfd;
	bool		timer_set;
	struct timespec deadline;
	const HostList *allowed;
	char	   *ca_file;
	HttpRequest *flight;		/* doubly linked, in flight */
	HttpRequest *done_head;
	HttpRequest *done_tail;
};

HttpRequest *
http_request_new(const char *method, const char *url, const char *body,
				 size_t body_len)
{
	HttpRequest *req = calloc(1, sizeof(HttpRequest));
	struct HttpPrivate *p = calloc(1, sizeof(struct HttpPrivate));

	if (!req || !p)
		goto fail;
	req->priv = p;
	req->timeout_ms = 10000;
	req->response_limit = 64 * 1024;
	p->method = strdup(method);
	p->url = strdup(url);
	p->body = malloc(body_len + 1);
	if (!p->method || !p->url || !p->body)
		goto fail;
	memcpy(p->body, body, body_len);
	p->body[body_len] = '\0';
	p->body_len = body_len;
	p->https = strncasecmp(url, "https:", 6) == 0;
	/* no "Expect: 100-continue" round trip for large bodies */
	p->hdrs = curl_slist_append(NULL, "Expect:");
	if (!p->hdrs)
		goto fail;
	return req;

fail:
	http_request_free(req);
	if (!req)
		free(p);
	return NULL;
}

bool
http_request_add_header(HttpRequest *req, const char *name, const char *value)
{
	size_t		n = strlen(name) + strlen(value) + 3;
	char	   *line = malloc(n);
	struct curl_slist *l;

	if (!line)
		return false;
	/* "Name;" is curl's way to send a header with an empty value */
	if (*value)
		snprintf(line, n, "%s: %s", name, value);
	else
		snprintf(line, n, "%s;", name);
	l = curl_slist_append(req->priv->hdrs, line);
	free(line);
	if (!l)
		return false;
	req->priv->hdrs = l;
	return true;
}

void
http_request_free(HttpRequest *req)
{
	struct HttpPrivate *p;

	if (!req)
		return;
	p = req->priv;
	if (p)
	{
		if (p->easy)
		{
			if (p->client)
				curl_multi_remove_handle(p->client->multi, p->easy);
			curl_easy_cleanup(p->easy);
		}
		curl_slist_free_all(p->hdrs);
		free(p->method);
		free(p->url);
		free(p->body);
		free(p);
	}
	free(req->body);
	free(req->headers);
	free(req);
}

const char *
http_request_header(const HttpRequest *req, const char *name)
{
	const char *h = req->headers;

	for (int i = 0; i < req->nheaders; i++)
	{
		const char *v = h + strlen(h) + 1;

		if (strcasecmp(h, name) == 0)
			return v;
		h = v + strlen(v) + 1;
	}
	return NULL;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpRequest *req = arg;
	size_t		n = size * nmemb;
	size_t		room = req->response_limit - req->body_len;
	size_t		take = n < room ? n : room;

	if (take > 0)
	{
		if (req->body_len + take + 1 > req->priv->body_cap)
		{
			size_t		cap = req->priv->body_cap ? req->priv->body_cap : 1024;
			char	   *grown;

			while (cap < req->body_len + take + 1)
				cap *= 2;
			grown = realloc(req->body, cap);
			if (!grown)
				return 0;
			req->body = grown;
			req->priv->body_cap = cap;
		}
		memcpy(req->body + req->body_len, data, take);
		req->body_len += take;
		req->body[req->body_len] = '\0';
	}
	if (take < n)
	{
		/* enough kept: stop reading, the status is all we still need */
		req->body_truncated = true;
		req->priv->aborted_at_limit = true;
		return 0;
	}
	return n;
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpRequest *req = arg;
	size_t		n = size * nmemb;
	size_t		len = n;
	const char *colon;
	size_t		nl,
				vl;
	const char *v;

	while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
	{
		/* a new response (after "100 Continue"): forget earlier headers */
		req->headers_len = 0;
		req->nheaders = 0;
		req->headers_truncated = false;
		return n;
	}
	if (len == 0 || data[0] == ' ' || data[0] == '\t')
		return n;
	colon = memchr(data, ':', len);
	if (!colon)
		return n;
	nl = colon - data;
	v = colon + 1;
	while (v < data + len && (*v == ' ' || *v == '\t'))
		v++;
	vl = data + len - v;
	if (req->nheaders >= MAX_RESPONSE_HEADERS ||
		req->headers_len + nl + vl + 2 > MAX_RESPONSE_HEADER_BYTES)
	{
		req->headers_truncated = true;
		return n;
	}
	if (req->headers_len + nl + vl + 2 > req->priv->headers_cap)
	{
		size_t		cap = req->priv->headers_cap ? req->priv->headers_cap : 512;
		char	   *grown;

		while (cap < req->headers_len + nl + vl + 2)
			cap *= 2;
		grown = realloc(req->headers, cap);
		if (!grown)
			return 0;
		req->headers = grown;
		req->priv->headers_cap = cap;
	}
	/* header names and values are text: NULs would cut them, so drop them */
	for (size_t i = 0; i < nl; i++)
		if (data[i])
			req->headers[req->headers_len++] = data[i];
	req->headers[req->headers_len++] = '\0';
	for (size_t i = 0; i < vl; i++)
		if (v[i])
			req->headers[req->headers_len++] = v[i];
	req->headers[req->headers_len++] = '\0';
	req->nheaders++;
	return n;
}

/* Every address is checked here, just before a socket is opened for it. */
static curl_socket_t
opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *sa)
{
	HttpRequest *req = arg;
	const HostList *allowed = req->priv->client->allowed;
	int			family = sa->family;
	const unsigned char *bytes = NULL;
	char		text[INET6_ADDRSTRLEN] = "?";

	if (family == AF_INET)
		bytes = (const unsigned char *) &((struct sockaddr_in *) &sa->addr)->sin_addr;
	else if (family == AF_INET6)
		bytes = (const unsigned char *) &((struct sockaddr_in6 *) &sa->addr)->sin6_addr;
	(void) purpose;

	if (bytes == NULL ||
		(addr_is_internal(family, bytes) &&
		 (allowed == NULL || !list_names_addr(allowed, family, bytes))))
	{
		if (bytes)
			inet_ntop(family, bytes, text, sizeof(text));
		req->priv->policy_refused = true;
		snprintf(req->error, sizeof(req->error),
				 "address %s is internal and not listed in cortex_hook.allowed_hosts; "
				 "add \"%s\" to that setting to allow it (no connection was made)",
				 text, text);
		return CURL_SOCKET_BAD;
	}
	return socket(sa->family, sa->socktype, sa->protocol);
}

/* ---------------------------------------------------------------------
 * Client
 * --------------------------------------------------------------------- */

static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	HttpClient *c = arg;
	struct epoll_event ev;

	(void) easy;
	(void) sockp;
	if (what == CURL_POLL_REMOVE)
	{
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = s;
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
		epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	HttpClient *c = arg;

	(void) multi;
	if (timeout_ms < 0)
	{
		c->timer_set = false;
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += timeout_ms / 1000;
	c->deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (c->deadline.tv_nsec >= 1000000000L)
	{
		c->deadline.tv_sec++;
		c->deadline.tv_nsec -= 1000000000L;
	}
	c->timer_set = true;
	return 0;
}

HttpClient *
http_client_new(char *err, size_t errlen)
{
	static bool global_done = false;
	HttpClient *c;

	if (!global_done)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		{
			snprintf(err, errlen, "could not initialize libcurl");
			return NULL;
		}
		global_done = true;
	}
	c = calloc(1, sizeof(HttpClient));
	if (!c)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->multi = curl_multi_init();
	if (c->epfd < 0 || !c->multi)
	{
		snprintf(err, errlen, "could not create the HTTP client: %s", strerror(errno));
		http_client_free(c);
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void
http_client_set_policy(HttpClient *c, const HostList *allowed, const char *ca_file)
{
	c->allowed = allowed;
	free(c->ca_file);
	c->ca_file = (ca_file && *ca_file) ? strdup(ca_file) : NULL;
}

void
http_client_free(HttpClient *c)
{
	if (!c)
		return;
	while (c->flight)
	{
		HttpRequest *r = c->flight;

		c->flight = r->priv->next;
		http_request_free(r);
	}
	while (c->done_head)
	{
		HttpRequest *r = c->done_head;

		c->done_head = r->priv->next;
		r->priv->client = NULL;
		http_request_free(r);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->epfd >= 0)
		close(c->epfd);
	free(c->ca_file);
	free(c);
}

static void
unlink_flight(HttpClient *c, HttpRequest *r)
{
	struct HttpPrivate *p = r->priv;

	if (p->prev)
		p->prev->priv->next = p->next;
	else
		c->flight = p->next;
	if (p->next)
		p->next->priv->prev = p->prev;
	p->next = p->prev = NULL;
}

static void
push_done(HttpClient *c, HttpRequest *r)
{
	r->priv->next = NULL;
	if (c->done_tail)
		c->done_tail->priv->next = r;
	else
		c->done_head = r;
	c->done_tail = r;
}

bool
http_start(HttpClient *c, HttpRequest *req)
{
	struct HttpPrivate *p = req->priv;
	CURL	   *e;
	CURLU	   *u;
	char	   *host = NULL;
	CURLUcode	uc;

	p->client = c;
	req->outcome = HTTP_POLICY_ERROR;

	u = curl_url();
	uc = u ? curl_url_set(u, CURLUPART_URL, p->url, 0) : CURLUE_OUT_OF_MEMORY;
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_cleanup(u);
	if (uc != CURLUE_OK)
	{
		snprintf(req->error, sizeof(req->error), "invalid url: %s", curl_url_strerror(uc));
		return false;
	}
	if (c->allowed == NULL || !hostlist_allows_host(c->allowed, host))
	{
		snprintf(req->error, sizeof(req->error),
				 "host \"%s\" is not in cortex_hook.allowed_hosts; add it to that setting "
				 "to allow it (no request was sent)", host);
		curl_free(host);
		return false;
	}
	curl_free(host);

	e = curl_easy_init();
	if (!e)
	{
		req->outcome = HTTP_TRANSPORT_ERROR;
		snprintf(req->error, sizeof(req->error), "out of memory");
		return false;
	}
	p->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, p->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
	{
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->hdrs);
	if (strcmp(p->method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else
	{
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) p->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body);
		if (strcmp(p->method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, p->method);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, req);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);

	if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
	{
		req->outcome = HTTP_TRANSPORT_ERROR;
		snprintf(req->error, sizeof(req->error), "could not start the request");
		return false;
	}
	p->next = c->flight;
	p->prev = NULL;
	if (c->flight)
		c->flight->priv->prev = req;
	c->flight = req;
	return true;
}

static long
ms_of(curl_off_t us)
{
	return (long) ((us + 500) / 1000);
}

/* Fill in the outcome of a finished transfer. */
static void
finish(HttpRequest *req, CURLcode rc)
{
	struct HttpPrivate *p = req->priv;
	long		status = 0;
	curl_off_t	total = 0;

	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(p->easy, CURLINFO_TOTAL_TIME_T, &total);
	req->status = (int) status;
	req->duration_ms = total / 1000.0;

	if (p->policy_refused)
	{
		req->outcome = HTTP_POLICY_ERROR;
		return;
	}
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && p->aborted_at_limit))
	{
		req->outcome = HTTP_RESPONSE;
		return;
	}
	req->outcome = HTTP_TRANSPORT_ERROR;
	if (rc == CURLE_OPERATION_TIMEDOUT)
	{
		curl_off_t	dns = 0,
					conn = 0,
					tls = 0,
					sent = 0,
					first = 0;
		const char *phase;

		curl_easy_getinfo(p->easy, CURLINFO_NAMELOOKUP_TIME_T, &dns);
		curl_easy_getinfo(p->easy, CURLINFO_CONNECT_TIME_T, &conn);
		curl_easy_getinfo(p->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
		curl_easy_getinfo(p->easy, CURLINFO_PRETRANSFER_TIME_T, &sent);
		curl_easy_getinfo(p->easy, CURLINFO_STARTTRANSFER_TIME_T, &first);
		if (dns == 0)
			phase = "resolving the host name";
		else if (conn == 0)
			phase = "connecting";
		else if (p->https && tls == 0)
			phase = "in the TLS handshake";
		else if (first == 0)
			phase = "waiting for the response";
		else
			phase = "receiving the response";
		snprintf(req->error, sizeof(req->error),
				 "timed out after %ld ms %s (dns %ld ms, connect %ld ms, tls %ld ms, "
				 "request sent at %ld ms, first response byte %s)",
				 req->timeout_ms, phase, ms_of(dns), ms_of(conn ? conn - dns : 0),
				 ms_of(tls ? tls - conn : 0), ms_of(sent),
				 first ? "received" : "never received");
		return;
	}
	if (p->errbuf[0])
		snprintf(req->error, sizeof(req->error), "%s: %s", curl_easy_strerror(rc), p->errbuf);
	else
		snprintf(req->error, sizeof(req->error), "%s", curl_easy_strerror(rc));
}

static void
collect(HttpClient *c)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL)
	{
		HttpRequest *req = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
		finish(req, msg->data.result);
		curl_multi_remove_handle(c->multi, msg->easy_handle);
		curl_easy_cleanup(req->priv->easy);
		req->priv->easy = NULL;
		unlink_flight(c, req);
		push_done(c, req);
	}
}

int
http_fd(HttpClient *c)
{
	return c->epfd;
}

long
http_timeout_ms(HttpClient *c)
{
	struct timespec now;
	long		ms;

	if (!c->timer_set)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (c->deadline.tv_sec - now.tv_sec) * 1000 +
		(c->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms;
}

void
http_run(HttpClient *c)
{
	struct epoll_event ev[64];
	int			running;
	int			n;

	do
	{
		n = epoll_wait(c->epfd, ev, 64, 0);
		for (int i = 0; i < n; i++)
		{
			int			flags = 0;

			if (ev[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (ev[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (ev[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(c->multi, ev[i].data.fd, flags, &running);
		}
	} while (n == 64);
	if (c->timer_set && http_timeout_ms(c) == 0)
	{
		c->timer_set = false;
		curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	collect(c);
}

HttpRequest *
http_next_done(HttpClient *c)
{
	HttpRequest *r = c->done_head;

	if (r)
	{
		c->done_head = r->priv->next;
		if (!c->done_head)
			c->done_tail = NULL;
		r->priv->next = NULL;
		r->priv->client = NULL;
	}
	return r;
}

/*
 * Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date.
 * Returns -1 when the value is neither.
 */
long
http_retry_after_seconds(const char *value, long now)
{
	char	   *end;
	long		secs;
	time_t		when;

	if (value == NULL)
		return -1;
	while (*value == ' ')
		value++;
	if (isdigit((unsigned char) *value))
	{
		secs = strtol(value, &end, 10);
		while (*end == ' ')
			end++;
		return *end == '\0' && secs >= 0 ? secs : -1;
	}
	when = curl_getdate(value, NULL);
	if (when == (time_t) -1)
		return -1;
	return when > now ? (long) (when - now) : 0;
}
