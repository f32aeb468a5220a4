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

/* What a stopping server sends its own threads (pthread_kill) to interrupt a blocking call with
 * EINTR; its handler does nothing else. Not SIGTERM itself: the threads block that (below). */
#define SIGNAL_WAKE SIGUSR1

/* SIGTERM and SIGINT. Every thread but the main one starts with them blocked (threads.c), so the
 * stop signal always reaches the main thread, which tells the others, and signals_wait_stop can
 * take it synchronously. */
sigset_t signals_stop_set(void);

/* For a main thread with nothing to do until the stop: blocks SIGTERM and SIGINT in it and takes
 * them synchronously (sigtimedwait), then sets server_stopping. Its threads must block them too
 * (threads.c starts them so). No handler is involved, because under TSan a handler that arrives
 * outside a blocking call is deferred, and now and then never runs: prethread --threads=128
 * with a nanosleep loop here slept on with the flag unset in 1 to 6 of 1,400 stops under load
 * (nothing pending in the kernel, the main thread in nanosleep), and a bare loop of nanosleep or
 * poll under TSan did it too (3 in 2,400); with sigtimedwait, 0 in 1,400. */
void signals_wait_stop(void);

#endif
