/* serve_blocking.h - one connection served start to finish by the calling thread or process, the
 * way the iterative, forking and threaded paradigms do it. */
#ifndef C10K_SERVE_BLOCKING_H
#define C10K_SERVE_BLOCKING_H

/* Serves the accepted descriptor until the client leaves, a deadline expires or the server stops;
 * then closes it. Each blocking call waits at most until the connection's next deadline, so an
 * idle connection costs no wake-ups; a stop must therefore be signalled to the serving thread,
 * again and again until it is gone (procs.c and threads.c do that), since a signal that lands
 * just before the call blocks is not seen until the deadline. */
void serve_blocking(int fd);

/* The same, for a server that nobody can signal again (the iterative server: the stop signal
 * runs in the serving thread itself): every call also wakes after NET_TICK_MS to look at the stop
 * flag. A serial server holds one connection, so the wake-ups cost nothing that matters. */
void serve_blocking_polled(int fd);

#endif
