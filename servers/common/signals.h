/* signals.h - SIGPIPE ignored, SIGTERM and SIGINT turned into a flag every loop polls. */
#ifndef C10K_SIGNALS_H
#define C10K_SIGNALS_H

#include <signal.h>
#include <stdatomic.h>

/* Set by SIGTERM or SIGINT. Every blocking call in a server is bounded (by 250 ms, or by its
 * connection's next deadline when the stop signal is repeated to the thread until it ends: see
 * serve_blocking.h), so every thread sees the flag and the server is gone within a second. An atomic, not a volatile
 * sig_atomic_t: the handler runs in one thread and every other thread reads it, which only a
 * (lock-free) atomic makes well defined; on x86 reading it is still a plain load. */
extern atomic_int server_stopping;

/* Installs the handlers without SA_RESTART, so a blocked call returns EINTR at once in the thread
 * that took the signal. */
void signals_install(void);

#endif
