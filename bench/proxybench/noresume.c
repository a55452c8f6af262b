/* LD_PRELOAD shim for wrk: a full TLS handshake on every new connection.
 *
 * wrk reuses one SSL object per connection slot and SSL_clear() keeps the session, so with
 * "Connection: close" every reconnect would be a resumed (PSK) handshake. Dropping the session
 * before a handshake starts makes each one full. Symbols are looked up at run time so the
 * shim loads into programs without libssl too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

int SSL_connect(SSL *s) {
    static int (*real_connect)(SSL *) = NULL;
    static int (*in_before)(const SSL *) = NULL;
    static int (*set_session)(SSL *, SSL_SESSION *) = NULL;
    if (real_connect == NULL) {
        real_connect = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
        in_before = (int (*)(const SSL *))dlsym(RTLD_NEXT, "SSL_in_before");
        set_session = (int (*)(SSL *, SSL_SESSION *))dlsym(RTLD_NEXT, "SSL_set_session");
    }
    /* wrk calls SSL_connect again after WANT_READ; only the first call may drop the session. */
    if (in_before(s)) {
        set_session(s, NULL);
    }
    return real_connect(s);
}
