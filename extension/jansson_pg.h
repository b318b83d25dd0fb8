/*
 * jansson_pg.h
 *		Include jansson from PostgreSQL code.  Both jansson.h and PostgreSQL's
 *		fmgrprotos.h declare a function json_object(); hide jansson's (the
 *		PostgreSQL side creates objects with tpl_json_object_new()).
 */
#ifndef CORTEX_HOOK_JANSSON_PG_H
#define CORTEX_HOOK_JANSSON_PG_H

#define json_object cortex_hook_hidden_json_object
#include <jansson.h>
#undef json_object

extern json_t *tpl_json_object_new(void);

#endif
