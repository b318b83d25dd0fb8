/*
 * asan_preload.c — lets the AddressSanitizer runtime be preloaded into a
 * stock (uninstrumented) PostgreSQL server for the sanitizer pass.
 *
 * The server links libgpg-error (through libsystemd and libgcrypt), whose
 * constructor calls bindtextdomain().  That is the process's first malloc(),
 * so the ASan runtime initialises inside glibc's _nl_state_lock; part of
 * its start-up looks up the optional symbol "swift_demangle" and, when the
 * lookup fails, calls dlerror(), which translates its message through
 * dcgettext() and takes the same lock again.  The lock is left corrupted and
 * the server's own bindtextdomain() in main() then waits forever.
 *
 * Defining the symbol makes the lookup succeed, so dlerror() has nothing to
 * translate.  ASan calls it only to demangle Swift names, which a PostgreSQL
 * server does not have; returning NULL means "not demangled".
 *
 * Preload after the ASan runtime:
 *   LD_PRELOAD="$(gcc -print-file-name=libasan.so) test/asan_preload.so"
 */
#include <stddef.h>
#include <stdint.h>

char	   *swift_demangle(const char *mangled, size_t mangled_len,
						   char *out, size_t *out_len, uint32_t flags);

char *
swift_demangle(const char *mangled, size_t mangled_len,
			   char *out, size_t *out_len, uint32_t flags)
{
	return NULL;
}
