/*
 * template.c
 *		Compile and render cortex_hook templates.
 *
 * A JSON template is parsed once by a small JSON parser of our own (jansson's
 * would lose the source spelling of numbers and cannot report positions
 * inside string literals).  Compilation flattens the document into a list of
 * operations: literal output text (already compact and escaped) and tags.
 * Rendering walks that list, so it costs one pass over the output and never
 * re-parses anything.  Tag output is always escaped as JSON string content
 * (or written as a whole JSON value for a string that is exactly one
 * {{json path}} tag), which is why event data can never change the structure
 * of the document, and rendered text is never rendered again.
 *
 * In URL mode the template is plain text; each tag's text is percent-encoded
 * so that a value cannot leave its path segment.
 *
 * Plain C and jansson only: no PostgreSQL headers here.
 */
#include "template.h"

#include <jansson.h>

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TPL_MAX_DEPTH	256		/* nesting allowed in a template document */

typedef enum Helper
{
	H_NONE,
	H_JSON,
	H_UPPER,
	H_LOWER,
	H_ISO8601,
	H_DEFAULT,
	H_JOIN
} Helper;

static const char *const helper_names[] = {
	NULL, "json", "upper", "lower", "iso8601", "default", "join"
};

#define HELPER_HINT "helpers are json, upper, lower, iso8601, default and join"

typedef struct Seg
{
	size_t		off;			/* name in the arena */
	size_t		len;
	long		index;			/* array index, or -1 when not a number */
} Seg;

typedef enum OpKind
{
	OP_LIT,						/* copy arena text */
	OP_TEXT,					/* a tag's text, escaped for the context */
	OP_VALUE					/* a tag's value as a whole JSON value */
} OpKind;

typedef struct Op
{
	OpKind		kind;
	Helper		helper;
	bool		whole_segment;	/* URL: the tag is a whole path segment */
	int			seg_first;
	int			nsegs;
	size_t		off;			/* literal text, or the helper's argument */
	size_t		len;
	bool		has_arg;
} Op;

struct Template
{
	TplMode		mode;
	Op		   *ops;
	int			nops;
	int			ops_cap;
	Seg		   *segs;
	int			nsegs;
	int			segs_cap;
	TplBuf		arena;
};

/* ---------------------------------------------------------------------
 * Buffers
 * --------------------------------------------------------------------- */

static bool
buf_reserve(TplBuf *buf, size_t extra)
{
	size_t		need;
	size_t		cap;
	char	   *p;

	if (buf->oom)
		return false;
	if (extra > SIZE_MAX / 2 - buf->len)
	{
		buf->oom = true;
		return false;
	}
	if (buf->limit && buf->len + extra > buf->limit)
	{
		buf->oom = buf->over_limit = true;
		return false;
	}
	need = buf->len + extra + 1;
	if (need <= buf->cap)
		return true;
	cap = buf->cap ? buf->cap : 256;
	while (cap < need)
		cap *= 2;
	if (buf->limit && cap > buf->limit + 1)
		cap = buf->limit + 1;
	p = realloc(buf->data, cap);
	if (p == NULL)
	{
		buf->oom = true;
		return false;
	}
	buf->data = p;
	buf->cap = cap;
	return true;
}

void
tpl_buf_reset(TplBuf *buf)
{
	buf->len = 0;
	buf->oom = buf->over_limit = false;
	if (buf->data)
		buf->data[0] = '\0';
}

void
tpl_buf_free(TplBuf *buf)
{
	free(buf->data);
	memset(buf, 0, sizeof(*buf));
}

/* Fast path: n more bytes fit in the allocation and under the limit. */
static inline bool
buf_fits(const TplBuf *buf, size_t n)
{
	return buf->len + n < buf->cap && (buf->limit == 0 || buf->len + n <= buf->limit);
}

void
tpl_buf_append(TplBuf *buf, const char *s, size_t n)
{
	if (buf_fits(buf, n))
	{
		memcpy(buf->data + buf->len, s, n);
		buf->len += n;
		buf->data[buf->len] = '\0';
		return;
	}
	if (!buf_reserve(buf, n))
		return;
	if (n)
		memcpy(buf->data + buf->len, s, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
}

static inline void
buf_putc(TplBuf *buf, char c)
{
	if (buf_fits(buf, 1) || buf_reserve(buf, 1))
	{
		buf->data[buf->len++] = c;
		buf->data[buf->len] = '\0';
	}
}

static const char hexdigits[] = "0123456789abcdef";

/*
 * Append s as the content of a JSON string (no surrounding quotes).
 * Quote, backslash and control characters are escaped; everything else,
 * including multi-byte UTF-8, is copied.
 */
static void
buf_escape(TplBuf *buf, const char *s, size_t n)
{
	size_t		start = 0;

	/* escaping only adds: if n bytes do not fit, nothing will */
	if (!buf_reserve(buf, n))
		return;
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];
		const char *esc = NULL;
		char		u[6];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c)
		{
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			default:
				memcpy(u, "\\u00", 4);
				u[4] = hexdigits[c >> 4];
				u[5] = hexdigits[c & 15];
				break;
		}
		tpl_buf_append(buf, s + start, i - start);
		if (esc)
			tpl_buf_append(buf, esc, strlen(esc));
		else
			tpl_buf_append(buf, u, 6);
		start = i + 1;
	}
	tpl_buf_append(buf, s + start, n - start);
}

void
tpl_buf_json_string(TplBuf *buf, const char *s, size_t n)
{
	buf_putc(buf, '"');
	buf_escape(buf, s, n);
	buf_putc(buf, '"');
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static int
format_real(double d, char *out, size_t outlen)
{
	int			n = snprintf(out, outlen, "%.15g", d);

	if (strtod(out, NULL) != d)
		n = snprintf(out, outlen, "%.17g", d);
	return n;
}

static void jansson_node(const json_t *v, TplNode *out);

/* Append v as compact JSON text. */
void
tpl_buf_json_value(TplBuf *buf, const json_t *v)
{
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			{
				const char *key;
				json_t	   *val;
				bool		first = true;

				buf_putc(buf, '{');
				json_object_foreach((json_t *) v, key, val)
				{
					if (!first)
						buf_putc(buf, ',');
					first = false;
					tpl_buf_json_string(buf, key, strlen(key));
					buf_putc(buf, ':');
					tpl_buf_json_value(buf, val);
				}
				buf_putc(buf, '}');
				break;
			}
		case JSON_ARRAY:
			{
				size_t		i;
				json_t	   *val;

				buf_putc(buf, '[');
				json_array_foreach((json_t *) v, i, val)
				{
					if (i > 0)
						buf_putc(buf, ',');
					tpl_buf_json_value(buf, val);
				}
				buf_putc(buf, ']');
				break;
			}
		default:
			{
				TplNode		n;

				jansson_node(v, &n);
				tpl_buf_scalar(buf, &n);
				break;
			}
	}
}

/* ---------------------------------------------------------------------
 * Compilation
 * --------------------------------------------------------------------- */

typedef struct Parser
{
	const char *s;
	size_t		len;
	size_t		pos;
	Template   *t;
	TplError   *err;
	int			depth;
	/* the string literal being compiled: decoded bytes and their sources */
	TplBuf		str;
	size_t	   *srcpos;
	size_t		srcpos_cap;
} Parser;

static void set_error_at(TplError *err, const char *s, size_t len, size_t pos,
						 const char *fmt,...) __attribute__((format(printf, 5, 6)));

/* Fill err with the line and column (in characters) of source offset pos. */
static void
set_error_at(TplError *err, const char *s, size_t len, size_t pos,
			 const char *fmt,...)
{
	va_list		ap;
	int			line = 1;
	int			col = 1;

	if (pos > len)
		pos = len;
	for (size_t i = 0; i < pos; i++)
	{
		if (s[i] == '\n')
		{
			line++;
			col = 1;
		}
		else if (((unsigned char) s[i] & 0xC0) != 0x80)
			col++;
	}
	err->line = line;
	err->column = col;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

#define perror_at(p, at, ...) \
	set_error_at((p)->err, (p)->s, (p)->len, (at), __VA_ARGS__)

static bool
add_op(Template *t, Op op)
{
	if (t->nops == t->ops_cap)
	{
		int			cap = t->ops_cap ? t->ops_cap * 2 : 16;
		Op		   *ops = realloc(t->ops, cap * sizeof(Op));

		if (!ops)
			return false;
		t->ops = ops;
		t->ops_cap = cap;
	}
	t->ops[t->nops++] = op;
	return true;
}

/* Make sure the last operation is a literal ending at the arena's end. */
static bool
open_lit(Template *t)
{
	Op		   *last = t->nops ? &t->ops[t->nops - 1] : NULL;

	if (last && last->kind == OP_LIT && last->off + last->len == t->arena.len)
		return true;
	if (!add_op(t, (Op) {.kind = OP_LIT,.off = t->arena.len}))
	{
		t->arena.oom = true;
		return false;
	}
	return true;
}

/* Append literal output, merging with a preceding literal. */
static void
emit_lit(Template *t, const char *s, size_t n)
{
	if (n == 0 || !open_lit(t))
		return;
	tpl_buf_append(&t->arena, s, n);
	t->ops[t->nops - 1].len += n;
}

/* Append text that goes inside a JSON string, escaped once, now. */
static void
emit_lit_escaped(Template *t, const char *s, size_t n)
{
	size_t		before = t->arena.len;

	if (n == 0 || !open_lit(t))
		return;
	buf_escape(&t->arena, s, n);
	t->ops[t->nops - 1].len += t->arena.len - before;
}

static bool
is_path_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '-' || c == '$' || c == '@' ||
		c >= 0x80;
}

/* Split and check a path; append its segments.  Returns the first index. */
static bool
compile_path(Parser *p, const char *path, size_t n, size_t at, Op *op)
{
	Template   *t = p->t;
	size_t		i = 0;

	op->seg_first = t->nsegs;
	op->nsegs = 0;
	while (i <= n)
	{
		size_t		start = i;
		Seg			seg;
		bool		numeric = true;

		while (i < n && path[i] != '.')
		{
			if (!is_path_char((unsigned char) path[i]))
			{
				perror_at(p, at, "invalid character \"%c\" in path \"%.*s\"",
						  path[i], (int) n, path);
				return false;
			}
			if (!isdigit((unsigned char) path[i]))
				numeric = false;
			i++;
		}
		if (i == start)
		{
			perror_at(p, at, "empty segment in path \"%.*s\"", (int) n, path);
			return false;
		}
		seg.off = t->arena.len;
		seg.len = i - start;
		seg.index = -1;
		if (numeric && seg.len <= 9)
			seg.index = strtol(path + start, NULL, 10);
		tpl_buf_append(&t->arena, path + start, seg.len);
		if (t->nsegs == t->segs_cap)
		{
			int			cap = t->segs_cap ? t->segs_cap * 2 : 16;
			Seg		   *segs = realloc(t->segs, cap * sizeof(Seg));

			if (!segs)
			{
				t->arena.oom = true;
				return false;
			}
			t->segs = segs;
			t->segs_cap = cap;
		}
		t->segs[t->nsegs++] = seg;
		op->nsegs++;
		i++;					/* skip the dot (or step past the end) */
	}
	return true;
}

typedef struct Token
{
	const char *s;				/* decoded text (unquoted for strings) */
	size_t		len;
	size_t		at;				/* source offset for errors */
	bool		quoted;
	char	   *owned;			/* unescaped copy of a quoted token */
} Token;

/*
 * Parse one tag starting at d[*i] == '{' '{'.  d is the decoded text, src
 * maps each decoded byte to its source offset (NULL: same offsets).
 * On success *i points past the closing braces and op is filled in.
 */
static bool
compile_tag(Parser *p, const char *d, size_t n, const size_t *src,
			size_t *i, Op *op)
{
	Token		tok[4];
	int			ntok = 0;
	size_t		j = *i + 2;
	size_t		open_at = src ? src[*i] : *i;
	bool		ok = false;
	int			h;

#define SRC(k) ((k) < n ? (src ? src[k] : (k)) : (src ? (n ? src[n - 1] + 1 : open_at) : (k)))

	memset(tok, 0, sizeof(tok));
	memset(op, 0, sizeof(*op));
	for (;;)
	{
		while (j < n && (d[j] == ' ' || d[j] == '\t' || d[j] == '\n' || d[j] == '\r'))
			j++;
		if (j >= n)
		{
			perror_at(p, open_at, "unclosed tag: \"{{\" has no matching \"}}\"");
			goto done;
		}
		if (d[j] == '}' && j + 1 < n && d[j + 1] == '}')
		{
			j += 2;
			break;
		}
		if (ntok == 3)
		{
			perror_at(p, SRC(j), "too many words in tag");
			goto done;
		}
		if (d[j] == '"' || d[j] == '\'')
		{
			char		q = d[j];
			size_t		k = j + 1;
			size_t		m = 0;
			char	   *copy = malloc(n - j + 1);

			if (!copy)
			{
				p->t->arena.oom = true;
				goto done;
			}
			while (k < n && d[k] != q)
			{
				if (d[k] == '\\' && k + 1 < n)
					k++;
				copy[m++] = d[k++];
			}
			if (k >= n)
			{
				free(copy);
				perror_at(p, SRC(j), "unterminated quoted text in tag");
				goto done;
			}
			tok[ntok].s = copy;
			tok[ntok].owned = copy;
			tok[ntok].len = m;
			tok[ntok].at = SRC(j);
			tok[ntok].quoted = true;
			ntok++;
			j = k + 1;
		}
		else
		{
			size_t		k = j;

			while (k < n && d[k] != ' ' && d[k] != '\t' && d[k] != '\n' &&
				   d[k] != '\r' && d[k] != '}' && d[k] != '{' &&
				   d[k] != '"' && d[k] != '\'')
				k++;
			if (k == j)
			{
				perror_at(p, SRC(j), "unexpected \"%c\" in tag", d[j]);
				goto done;
			}
			tok[ntok].s = d + j;
			tok[ntok].len = k - j;
			tok[ntok].at = SRC(j);
			ntok++;
			j = k;
		}
	}

	if (ntok == 0)
	{
		perror_at(p, open_at, "empty tag \"{{}}\"");
		goto done;
	}
	if (tok[0].quoted)
	{
		perror_at(p, tok[0].at, "a tag must start with a path or a helper");
		goto done;
	}
	op->helper = H_NONE;
	for (h = H_JSON; h <= H_JOIN; h++)
		if (strlen(helper_names[h]) == tok[0].len &&
			memcmp(helper_names[h], tok[0].s, tok[0].len) == 0)
			op->helper = (Helper) h;

	if (op->helper == H_NONE)
	{
		if (ntok > 1)
		{
			perror_at(p, tok[0].at, "unknown helper \"%.*s\" (%s)",
					  (int) tok[0].len, tok[0].s, HELPER_HINT);
			goto done;
		}
		if (!compile_path(p, tok[0].s, tok[0].len, tok[0].at, op))
			goto done;
	}
	else
	{
		const char *name = helper_names[op->helper];

		if (ntok < 2 || tok[1].quoted)
		{
			perror_at(p, tok[0].at, "helper \"%s\" needs a path, as in {{%s data.id%s}}",
					  name, name,
					  op->helper == H_DEFAULT ? " 'text'" : "");
			goto done;
		}
		if (!compile_path(p, tok[1].s, tok[1].len, tok[1].at, op))
			goto done;
		if (ntok == 3 && !tok[2].quoted)
		{
			perror_at(p, tok[2].at, "expected quoted text after the path, found \"%.*s\"",
					  (int) tok[2].len, tok[2].s);
			goto done;
		}
		if (op->helper == H_DEFAULT && ntok < 3)
		{
			perror_at(p, tok[0].at, "helper \"default\" needs a text, as in {{default data.id 'none'}}");
			goto done;
		}
		if (ntok == 3 && op->helper != H_DEFAULT && op->helper != H_JOIN)
		{
			perror_at(p, tok[2].at, "helper \"%s\" takes no text", name);
			goto done;
		}
		if (ntok == 3)
		{
			op->has_arg = true;
			op->off = p->t->arena.len;
			op->len = tok[2].len;
			tpl_buf_append(&p->t->arena, tok[2].s, tok[2].len);
		}
	}
	*i = j;
	ok = true;
done:
	for (int k = 0; k < ntok; k++)
		free(tok[k].owned);
	return ok;
#undef SRC
}

/* Append the decoded byte c, remembering where it came from. */
static bool
str_put(Parser *p, const char *c, size_t n, size_t from)
{
	if (p->str.len + n > p->srcpos_cap)
	{
		size_t		cap = p->srcpos_cap ? p->srcpos_cap * 2 : 64;
		size_t	   *sp;

		while (cap < p->str.len + n)
			cap *= 2;
		sp = realloc(p->srcpos, cap * sizeof(size_t));
		if (!sp)
		{
			p->t->arena.oom = true;
			return false;
		}
		p->srcpos = sp;
		p->srcpos_cap = cap;
	}
	for (size_t k = 0; k < n; k++)
		p->srcpos[p->str.len + k] = from;
	tpl_buf_append(&p->str, c, n);
	return !p->str.oom;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
read_hex4(Parser *p, size_t at, unsigned *out)
{
	unsigned	v = 0;

	if (at + 4 > p->len)
		return false;
	for (int k = 0; k < 4; k++)
	{
		int			h = hexval(p->s[at + k]);

		if (h < 0)
			return false;
		v = v * 16 + h;
	}
	*out = v;
	return true;
}

/* Length of a valid UTF-8 sequence at s (n bytes left), or 0. */
static int
utf8_len(const unsigned char *s, size_t n)
{
	unsigned	c = s[0];
	int			len;
	unsigned	cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if ((size_t) len > n)
		return 0;
	for (int k = 1; k < len; k++)
	{
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		(len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

static size_t
utf8_encode(unsigned cp, char *out)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

/* Decode the JSON string literal at p->pos into p->str / p->srcpos. */
static bool
decode_string(Parser *p)
{
	size_t		open = p->pos;

	tpl_buf_reset(&p->str);
	p->pos++;					/* opening quote */
	for (;;)
	{
		unsigned char c;

		if (p->pos >= p->len)
		{
			perror_at(p, open, "unterminated string");
			return false;
		}
		c = (unsigned char) p->s[p->pos];
		if (c == '"')
		{
			p->pos++;
			return true;
		}
		if (c < 0x20)
		{
			perror_at(p, p->pos, "control character in string (write it as \\n, \\t or \\u00XX)");
			return false;
		}
		if (c == '\\')
		{
			size_t		at = p->pos;
			char		e;
			char		ch;
			unsigned	cp;
			char		u8[4];

			if (p->pos + 1 >= p->len)
			{
				perror_at(p, open, "unterminated string");
				return false;
			}
			e = p->s[p->pos + 1];
			p->pos += 2;
			switch (e)
			{
				case '"':
				case '\\':
				case '/':
					ch = e;
					break;
				case 'b':
					ch = '\b';
					break;
				case 'f':
					ch = '\f';
					break;
				case 'n':
					ch = '\n';
					break;
				case 'r':
					ch = '\r';
					break;
				case 't':
					ch = '\t';
					break;
				case 'u':
					if (!read_hex4(p, p->pos, &cp))
					{
						perror_at(p, at, "invalid \\u escape (four hex digits expected)");
						return false;
					}
					p->pos += 4;
					if (cp >= 0xDC00 && cp <= 0xDFFF)
					{
						perror_at(p, at, "invalid \\u escape: unpaired low surrogate");
						return false;
					}
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						unsigned	lo;

						if (p->pos + 6 > p->len || p->s[p->pos] != '\\' ||
							p->s[p->pos + 1] != 'u' ||
							!read_hex4(p, p->pos + 2, &lo) ||
							lo < 0xDC00 || lo > 0xDFFF)
						{
							perror_at(p, at, "invalid \\u escape: high surrogate without a low surrogate");
							return false;
						}
						p->pos += 6;
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					if (!str_put(p, u8, utf8_encode(cp, u8), at))
						return false;
					continue;
				default:
					perror_at(p, at, "invalid escape \"\\%c\" in string", e);
					return false;
			}
			if (!str_put(p, &ch, 1, at))
				return false;
			continue;
		}
		if (c >= 0x80)
		{
			int			l = utf8_len((const unsigned char *) p->s + p->pos,
									 p->len - p->pos);

			if (l == 0)
			{
				perror_at(p, p->pos, "invalid UTF-8 in string");
				return false;
			}
			if (!str_put(p, p->s + p->pos, l, p->pos))
				return false;
			p->pos += l;
			continue;
		}
		/* a run of plain ASCII */
		{
			size_t		k = p->pos;

			while (k < p->len && (unsigned char) p->s[k] >= 0x20 &&
				   (unsigned char) p->s[k] < 0x80 && p->s[k] != '"' &&
				   p->s[k] != '\\')
				k++;
			for (size_t m = p->pos; m < k; m++)
				if (!str_put(p, p->s + m, 1, m))
					return false;
			p->pos = k;
		}
	}
}

/* Compile a string literal (a value or a key) into operations. */
static bool
compile_string(Parser *p, bool is_key)
{
	Template   *t = p->t;
	const char *d;
	size_t		n;
	size_t		i = 0;
	size_t		lit = 0;

	if (!decode_string(p))
		return false;
	d = p->str.data ? p->str.data : "";
	n = p->str.len;

	/* a string that is exactly one {{json path}} keeps the value's type */
	if (!is_key && n >= 4 && d[0] == '{' && d[1] == '{' &&
		d[n - 1] == '}' && d[n - 2] == '}')
	{
		Op			op;
		size_t		j = 0;

		if (!compile_tag(p, d, n, p->srcpos, &j, &op))
			return false;
		if (j == n && op.helper == H_JSON)
		{
			op.kind = OP_VALUE;
			return add_op(t, op) || (t->arena.oom = true, false);
		}
		/* not the typed form: compile the string normally */
		t->nsegs = op.seg_first;
	}

	emit_lit(t, "\"", 1);
	while (i + 1 < n)
	{
		if (d[i] == '{' && d[i + 1] == '{')
		{
			Op			op;

			emit_lit_escaped(t, d + lit, i - lit);
			if (!compile_tag(p, d, n, p->srcpos, &i, &op))
				return false;
			op.kind = OP_TEXT;
			if (!add_op(t, op))
			{
				t->arena.oom = true;
				return false;
			}
			lit = i;
			continue;
		}
		i++;
	}
	emit_lit_escaped(t, d + lit, n - lit);
	emit_lit(t, "\"", 1);
	return !t->arena.oom;
}

static void
skip_ws(Parser *p)
{
	while (p->pos < p->len &&
		   (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
			p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static bool compile_value(Parser *p);

static bool
describe_unexpected(Parser *p, const char *expected)
{
	if (p->pos >= p->len)
		perror_at(p, p->pos, "unexpected end of template, expected %s", expected);
	else
	{
		int			l = utf8_len((const unsigned char *) p->s + p->pos, p->len - p->pos);

		perror_at(p, p->pos, "unexpected \"%.*s\", expected %s",
				  l ? l : 1, p->s + p->pos, expected);
	}
	return false;
}

static bool
compile_number(Parser *p)
{
	size_t		start = p->pos;
	size_t		k = p->pos;

	if (k < p->len && p->s[k] == '-')
		k++;
	if (k < p->len && p->s[k] == '0')
		k++;
	else if (k < p->len && p->s[k] >= '1' && p->s[k] <= '9')
		while (k < p->len && isdigit((unsigned char) p->s[k]))
			k++;
	else
	{
		p->pos = k;
		return describe_unexpected(p, "a digit");
	}
	if (k < p->len && p->s[k] == '.')
	{
		k++;
		if (k >= p->len || !isdigit((unsigned char) p->s[k]))
		{
			p->pos = k;
			return describe_unexpected(p, "a digit after the decimal point");
		}
		while (k < p->len && isdigit((unsigned char) p->s[k]))
			k++;
	}
	if (k < p->len && (p->s[k] == 'e' || p->s[k] == 'E'))
	{
		k++;
		if (k < p->len && (p->s[k] == '+' || p->s[k] == '-'))
			k++;
		if (k >= p->len || !isdigit((unsigned char) p->s[k]))
		{
			p->pos = k;
			return describe_unexpected(p, "a digit in the exponent");
		}
		while (k < p->len && isdigit((unsigned char) p->s[k]))
			k++;
	}
	emit_lit(p->t, p->s + start, k - start);
	p->pos = k;
	return true;
}

static bool
compile_value(Parser *p)
{
	char		c;

	skip_ws(p);
	if (p->pos >= p->len)
		return describe_unexpected(p, "a JSON value");
	c = p->s[p->pos];
	if (c == '{' || c == '[')
	{
		char		close = c == '{' ? '}' : ']';
		bool		first = true;

		if (++p->depth > TPL_MAX_DEPTH)
		{
			perror_at(p, p->pos, "template nested deeper than %d levels", TPL_MAX_DEPTH);
			return false;
		}
		emit_lit(p->t, &c, 1);
		p->pos++;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == close)
		{
			p->pos++;
			emit_lit(p->t, &close, 1);
			p->depth--;
			return true;
		}
		for (;;)
		{
			if (!first)
				emit_lit(p->t, ",", 1);
			first = false;
			skip_ws(p);
			if (c == '{')
			{
				if (p->pos >= p->len || p->s[p->pos] != '"')
					return describe_unexpected(p, "a string key");
				if (!compile_string(p, true))
					return false;
				skip_ws(p);
				if (p->pos >= p->len || p->s[p->pos] != ':')
					return describe_unexpected(p, "\":\"");
				p->pos++;
				emit_lit(p->t, ":", 1);
			}
			if (!compile_value(p))
				return false;
			skip_ws(p);
			if (p->pos < p->len && p->s[p->pos] == ',')
			{
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == close)
			{
				p->pos++;
				emit_lit(p->t, &close, 1);
				p->depth--;
				return true;
			}
			return describe_unexpected(p, c == '{' ? "\",\" or \"}\"" : "\",\" or \"]\"");
		}
	}
	if (c == '"')
		return compile_string(p, false);
	if (c == '-' || isdigit((unsigned char) c))
		return compile_number(p);
	{
		static const char *const words[] = {"true", "false", "null"};

		for (int k = 0; k < 3; k++)
		{
			size_t		wl = strlen(words[k]);

			if (p->len - p->pos >= wl && memcmp(p->s + p->pos, words[k], wl) == 0 &&
				(p->pos + wl == p->len || !isalnum((unsigned char) p->s[p->pos + wl])))
			{
				emit_lit(p->t, words[k], wl);
				p->pos += wl;
				return true;
			}
		}
	}
	return describe_unexpected(p, "a JSON value");
}

/* Compile a URL template: literal text with tags in the path or query. */
static bool
compile_url(Parser *p)
{
	const char *s = p->s;
	size_t		n = p->len;
	size_t		lit = 0;
	size_t		i = 0;
	const char *scheme_end = NULL;
	size_t		path_start = n;

	for (size_t k = 0; k + 2 < n; k++)
		if (s[k] == ':' && s[k + 1] == '/' && s[k + 2] == '/')
		{
			scheme_end = s + k + 3;
			break;
		}
	if (scheme_end)
	{
		size_t		k = scheme_end - s;

		while (k < n && s[k] != '/' && s[k] != '?' && s[k] != '#')
			k++;
		path_start = k;
	}

	while (i + 1 < n)
	{
		if (s[i] == '{' && s[i + 1] == '{')
		{
			Op			op;
			size_t		open = i;

			if (open < path_start)
			{
				perror_at(p, open, "tags are allowed only in the path and query of a url");
				return false;
			}
			emit_lit(p->t, s + lit, i - lit);
			if (!compile_tag(p, s, n, NULL, &i, &op))
				return false;
			op.kind = OP_TEXT;
			op.whole_segment = open > 0 && s[open - 1] == '/' &&
				(i == n || s[i] == '/' || s[i] == '?' || s[i] == '#');
			if (!add_op(p->t, op))
			{
				p->t->arena.oom = true;
				return false;
			}
			lit = i;
			continue;
		}
		i++;
	}
	emit_lit(p->t, s + lit, n - lit);
	return !p->t->arena.oom;
}

Template *
tpl_compile(const char *src, size_t len, TplMode mode, TplError *err)
{
	Parser		p;
	Template   *t;
	bool		ok;

	memset(err, 0, sizeof(*err));
	t = calloc(1, sizeof(Template));
	if (!t)
	{
		snprintf(err->message, sizeof(err->message), "out of memory");
		return NULL;
	}
	t->mode = mode;
	memset(&p, 0, sizeof(p));
	p.s = src;
	p.len = len;
	p.t = t;
	p.err = err;

	if (memchr(src, '\0', len) != NULL)
	{
		perror_at(&p, (const char *) memchr(src, '\0', len) - src,
				  "template contains a NUL byte");
		ok = false;
	}
	else if (mode == TPL_URL)
		ok = compile_url(&p);
	else
	{
		ok = compile_value(&p);
		if (ok)
		{
			skip_ws(&p);
			if (p.pos < p.len)
				ok = describe_unexpected(&p, "the end of the template");
		}
	}
	tpl_buf_free(&p.str);
	free(p.srcpos);
	if (ok && t->arena.oom)
	{
		snprintf(err->message, sizeof(err->message), "out of memory");
		ok = false;
	}
	if (!ok)
	{
		tpl_free(t);
		return NULL;
	}
	return t;
}

void
tpl_free(Template *t)
{
	if (!t)
		return;
	free(t->ops);
	free(t->segs);
	tpl_buf_free(&t->arena);
	free(t);
}

/* ---------------------------------------------------------------------
 * Rendering
 * --------------------------------------------------------------------- */

/* Follow a compiled path from the root of the context. */
static void
lookup_segs(const Template *t, const TplContext *ctx, int first, int nsegs, TplNode *out)
{
	ctx->root(ctx->arg, out);
	for (int k = 0; k < nsegs && out->kind != TPL_MISSING; k++)
	{
		const Seg  *seg = &t->segs[first + k];
		TplNode		parent = *out;

		if (parent.kind != TPL_OBJECT && !(parent.kind == TPL_ARRAY && seg->index >= 0))
		{
			out->kind = TPL_MISSING;
			break;
		}
		ctx->child(ctx->arg, &parent, t->arena.data + seg->off, seg->len,
				   parent.kind == TPL_ARRAY ? seg->index : -1, out);
	}
}

/* Compact JSON of a scalar node; a missing value is null. */
void
tpl_buf_scalar(TplBuf *out, const TplNode *n)
{
	switch (n->kind)
	{
		case TPL_STRING:
			tpl_buf_json_string(out, n->text, n->len);
			break;
		case TPL_NUMBER:
			tpl_buf_append(out, n->text, n->len);
			break;
		case TPL_TRUE:
			tpl_buf_append(out, "true", 4);
			break;
		case TPL_FALSE:
			tpl_buf_append(out, "false", 5);
			break;
		default:
			tpl_buf_append(out, "null", 4);
			break;
	}
}

/* Compact JSON of any node. */
static void
node_json(const TplContext *ctx, const TplNode *n, TplBuf *out)
{
	if (n->kind == TPL_OBJECT || n->kind == TPL_ARRAY)
		ctx->to_json(ctx->arg, n, out);
	else
		tpl_buf_scalar(out, n);
}

/* days since 1970-01-01 of a proleptic Gregorian date */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		era;
	unsigned	yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t) doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t		era;
	unsigned	doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

static bool
format_epoch_us(int64_t secs, int64_t usec, char out[64])
{
	int64_t		days = secs / 86400;
	int64_t		rem = secs % 86400;
	int			y,
				mo,
				d;

	if (rem < 0)
	{
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	if (y < 0 || y > 9999)
		return false;
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, mo, d,
			 (int) (rem / 3600), (int) (rem / 60 % 60), (int) (rem % 60),
			 (int) usec);
	return true;
}

static bool
read_digits(const char **s, const char *end, int n, int *out)
{
	int			v = 0;

	for (int k = 0; k < n; k++)
	{
		if (*s >= end || !isdigit((unsigned char) **s))
			return false;
		v = v * 10 + (**s - '0');
		(*s)++;
	}
	*out = v;
	return true;
}

static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/*
 * Parse "YYYY-MM-DD[(T| )HH:MM[:SS[.ffffff]]][Z|(+|-)HH[[:]MM]]"; no zone
 * means UTC.  Epoch seconds (integer or real) are accepted too.
 */
bool
tpl_iso8601(const TplNode *v, char out[64])
{
	const char *s;
	const char *end;
	int			y,
				mo,
				d,
				hh = 0,
				mi = 0,
				ss = 0,
				usec = 0;
	int64_t		offset = 0;

	if (v->kind == TPL_NUMBER)
	{
		char		num[64];
		char	   *e;
		double		r;
		double		whole;
		int64_t		us;

		/* epoch seconds, integer or not */
		if (v->len >= sizeof(num))
			return false;
		memcpy(num, v->text, v->len);
		num[v->len] = '\0';
		r = strtod(num, &e);
		if (*e != '\0' || !(r >= -62135596800.0 && r < 253402300800.0))
			return false;
		whole = (double) (int64_t) r;
		us = (int64_t) ((r - whole) * 1e6 + (r >= 0 ? 0.5 : -0.5));
		if (us < 0)
		{
			us += 1000000;
			whole -= 1;
		}
		if (us >= 1000000)
		{
			us -= 1000000;
			whole += 1;
		}
		return format_epoch_us((int64_t) whole, us, out);
	}
	if (v->kind != TPL_STRING)
		return false;

	s = v->text;
	end = s + v->len;
	if (!read_digits(&s, end, 4, &y) || s >= end || *s++ != '-' ||
		!read_digits(&s, end, 2, &mo) || s >= end || *s++ != '-' ||
		!read_digits(&s, end, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] ||
		(mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return false;
	if (s < end && (*s == 'T' || *s == 't' || *s == ' '))
	{
		s++;
		if (!read_digits(&s, end, 2, &hh) || s >= end || *s++ != ':' ||
			!read_digits(&s, end, 2, &mi))
			return false;
		if (s < end && *s == ':')
		{
			s++;
			if (!read_digits(&s, end, 2, &ss))
				return false;
			if (s < end && (*s == '.' || *s == ','))
			{
				int			scale = 100000;

				s++;
				if (s >= end || !isdigit((unsigned char) *s))
					return false;
				while (s < end && isdigit((unsigned char) *s))
				{
					usec += (*s - '0') * scale;
					scale /= 10;
					s++;
				}
			}
		}
		if (hh > 23 || mi > 59 || ss > 60)
			return false;
		if (ss == 60)
			ss = 59, usec = 999999;
		if (s < end && (*s == 'Z' || *s == 'z'))
			s++;
		else if (s < end && (*s == '+' || *s == '-'))
		{
			int			sign = *s++ == '-' ? -1 : 1;
			int			oh,
						om = 0;

			if (!read_digits(&s, end, 2, &oh))
				return false;
			if (s < end && *s == ':')
				s++;
			if (s < end && !read_digits(&s, end, 2, &om))
				return false;
			if (oh > 23 || om > 59)
				return false;
			offset = sign * (oh * 3600 + om * 60);
		}
	}
	if (s != end)
		return false;
	return format_epoch_us(days_from_civil(y, mo, d) * 86400 +
						   hh * 3600 + mi * 60 + ss - offset, usec, out);
}

/* Where a tag's text goes: escaped into a JSON string, or percent-encoded. */
typedef struct Sink
{
	TplBuf	   *out;
	TplMode		mode;
	Helper		fold;			/* H_UPPER / H_LOWER or H_NONE */
	bool		dots;			/* URL: encode '.' too */
	size_t		written;
} Sink;

static void
sink_write(Sink *k, const char *s, size_t n)
{
	k->written += n;
	if (k->fold == H_NONE && k->mode == TPL_JSON)
	{
		buf_escape(k->out, s, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];
		char		e[3];

		if (k->fold == H_UPPER && c >= 'a' && c <= 'z')
			c -= 32;
		else if (k->fold == H_LOWER && c >= 'A' && c <= 'Z')
			c += 32;
		if (k->mode == TPL_JSON)
		{
			char		ch = (char) c;

			buf_escape(k->out, &ch, 1);
		}
		else if (isalnum(c) || c == '-' || c == '_' || c == '~' ||
				 (c == '.' && !k->dots))
			buf_putc(k->out, (char) c);
		else
		{
			e[0] = '%';
			e[1] = "0123456789ABCDEF"[c >> 4];
			e[2] = "0123456789ABCDEF"[c & 15];
			tpl_buf_append(k->out, e, 3);
		}
	}
}

/* A failed scratch buffer fails the output too (limit or out of memory). */
static bool
scratch_ok(Sink *k, const TplBuf *scratch)
{
	if (!scratch->oom)
		return true;
	k->out->oom = true;
	k->out->over_limit |= scratch->over_limit;
	return false;
}

/* Write the text form of v: strings as-is, other scalars as JSON, null empty. */
static void
sink_value_text(Sink *k, const TplContext *ctx, const TplNode *v, TplBuf *scratch)
{
	switch (v->kind)
	{
		case TPL_STRING:
		case TPL_NUMBER:
			sink_write(k, v->text, v->len);
			break;
		case TPL_TRUE:
			sink_write(k, "true", 4);
			break;
		case TPL_FALSE:
			sink_write(k, "false", 5);
			break;
		case TPL_NULL:
		case TPL_MISSING:
			break;
		case TPL_OBJECT:
		case TPL_ARRAY:
			tpl_buf_reset(scratch);
			ctx->to_json(ctx->arg, v, scratch);
			if (scratch_ok(k, scratch))
				sink_write(k, scratch->data, scratch->len);
			break;
	}
}

static bool
only_dots(const TplNode *v)
{
	if (v->kind != TPL_STRING || v->len == 0)
		return false;
	for (size_t i = 0; i < v->len; i++)
		if (v->text[i] != '.')
			return false;
	return true;
}

bool
tpl_render(const Template *t, const TplContext *ctx, TplBuf *out, TplError *err)
{
	TplBuf		scratch = {0};

	memset(err, 0, sizeof(*err));
	/* text bigger than the limit cannot fit once escaped either */
	scratch.limit = out->limit;
	for (int i = 0; i < t->nops && !out->oom; i++)
	{
		const Op   *op = &t->ops[i];
		TplNode		v;
		Sink		k;

		if (op->kind == OP_LIT)
		{
			tpl_buf_append(out, t->arena.data + op->off, op->len);
			continue;
		}
		lookup_segs(t, ctx, op->seg_first, op->nsegs, &v);
		if (op->kind == OP_VALUE)
		{
			node_json(ctx, &v, out);
			continue;
		}

		k.out = out;
		k.mode = t->mode;
		k.fold = (op->helper == H_UPPER || op->helper == H_LOWER) ? op->helper : H_NONE;
		k.dots = op->whole_segment && only_dots(&v);
		k.written = 0;
		switch (op->helper)
		{
			case H_NONE:
			case H_UPPER:
			case H_LOWER:
				sink_value_text(&k, ctx, &v, &scratch);
				break;
			case H_JSON:
				tpl_buf_reset(&scratch);
				node_json(ctx, &v, &scratch);
				if (scratch_ok(&k, &scratch))
					sink_write(&k, scratch.data, scratch.len);
				break;
			case H_ISO8601:
				{
					char		ts[64];

					if (tpl_iso8601(&v, ts))
						sink_write(&k, ts, strlen(ts));
					else
						sink_value_text(&k, ctx, &v, &scratch);
					break;
				}
			case H_DEFAULT:
				if (v.kind == TPL_MISSING || v.kind == TPL_NULL ||
					(v.kind == TPL_STRING && v.len == 0))
					sink_write(&k, t->arena.data + op->off, op->len);
				else
					sink_value_text(&k, ctx, &v, &scratch);
				break;
			case H_JOIN:
				if (v.kind == TPL_ARRAY)
				{
					size_t		n = ctx->length(ctx->arg, &v);

					for (size_t idx = 0; idx < n; idx++)
					{
						TplNode		elem;

						if (idx > 0)
						{
							if (op->has_arg)
								sink_write(&k, t->arena.data + op->off, op->len);
							else
								sink_write(&k, ", ", 2);
						}
						ctx->child(ctx->arg, &v, NULL, 0, (long) idx, &elem);
						sink_value_text(&k, ctx, &elem, &scratch);
					}
				}
				else
					sink_value_text(&k, ctx, &v, &scratch);
				break;
		}
		if (t->mode == TPL_URL && op->whole_segment && k.written == 0)
		{
			const Seg  *last = &t->segs[op->seg_first + op->nsegs - 1];

			tpl_buf_free(&scratch);
			snprintf(err->message, sizeof(err->message),
					 "url tag for \"%.*s\" renders an empty path segment",
					 (int) last->len, t->arena.data + last->off);
			return false;
		}
	}
	tpl_buf_free(&scratch);
	if (out->over_limit)
	{
		snprintf(err->message, sizeof(err->message),
				 "rendered output is more than %zu bytes", out->limit);
		return false;
	}
	if (out->oom)
	{
		snprintf(err->message, sizeof(err->message), "out of memory while rendering");
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * A context over a jansson value (unit tests, fuzzing, standalone use)
 * --------------------------------------------------------------------- */

static void
jansson_node(const json_t *v, TplNode *out)
{
	memset(out, 0, sizeof(*out));
	out->ref = v;
	if (v == NULL)
	{
		out->kind = TPL_MISSING;
		return;
	}
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			out->kind = TPL_OBJECT;
			break;
		case JSON_ARRAY:
			out->kind = TPL_ARRAY;
			break;
		case JSON_STRING:
			out->kind = TPL_STRING;
			out->text = json_string_value(v);
			out->len = json_string_length(v);
			break;
		case JSON_INTEGER:
			out->kind = TPL_NUMBER;
			out->len = snprintf(out->num, sizeof(out->num), "%" JSON_INTEGER_FORMAT,
								json_integer_value(v));
			out->text = out->num;
			break;
		case JSON_REAL:
			out->kind = TPL_NUMBER;
			out->len = format_real(json_real_value(v), out->num, sizeof(out->num));
			out->text = out->num;
			break;
		case JSON_TRUE:
			out->kind = TPL_TRUE;
			break;
		case JSON_FALSE:
			out->kind = TPL_FALSE;
			break;
		case JSON_NULL:
			out->kind = TPL_NULL;
			break;
	}
}

static void
jansson_root(void *arg, TplNode *out)
{
	jansson_node(arg, out);
}

static void
jansson_child(void *arg, const TplNode *parent, const char *key, size_t keylen,
			  long index, TplNode *out)
{
	const json_t *p = parent->ref;

	(void) arg;

	if (index >= 0 && json_is_array(p))
		jansson_node(json_array_get(p, (size_t) index), out);
	else if (json_is_object(p) && key != NULL)
		jansson_node(json_object_getn(p, key, keylen), out);
	else
		jansson_node(NULL, out);
}

static size_t
jansson_length(void *arg, const TplNode *node)
{
	(void) arg;
	return json_array_size(node->ref);
}

static void
jansson_to_json(void *arg, const TplNode *node, TplBuf *out)
{
	(void) arg;
	tpl_buf_json_value(out, node->ref);
}

void
tpl_jansson_context(TplContext *ctx, const json_t *root)
{
	ctx->arg = (void *) root;
	ctx->root = jansson_root;
	ctx->child = jansson_child;
	ctx->length = jansson_length;
	ctx->to_json = jansson_to_json;
}
