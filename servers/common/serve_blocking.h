/* serve_blocking.h - one connection served start to finish by the calling thread or process, the
 * way the iterative, forking and threaded paradigms do it. */
#ifndef C10K_SERVE_BLOCKING_H
#define C10K_SERVE_BLOCKING_H

/* Serves the accepted descriptor until the client leaves, a deadline expires or the server stops;
 * then closes it. Every socket call inside is bounded to NET_TICK_MS. */
void serve_blocking(int fd);

#endif
