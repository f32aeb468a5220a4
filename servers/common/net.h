/* net.h - the listening socket and a hardened accept. */
#ifndef C10K_NET_H
#define C10K_NET_H

#include <stdbool.h>

/* How long a blocking server's socket calls may block before it checks deadlines and the stop
 * flag again. */
#define NET_TICK_MS 250

/* Creates a socket listening on server_options' host, port and backlog (SO_REUSEADDR; SO_REUSEPORT
 * too when reuse_port, for paradigms with one listening socket per worker). nonblocking chooses
 * between event-loop use and blocking accept, which then wakes every NET_TICK_MS. Dies on failure. */
int net_listen(bool reuse_port, bool nonblocking);

/* The port a listening socket is bound to (the one --port 0 picked); dies if it cannot say. */
int net_local_port(int listen_fd);

/* Prints the one ready line, "listening on HOST:PORT", with the port actually bound, and flushes. */
void net_announce(int listen_fd);

/* Accepts one connection and returns its descriptor (nonblocking as asked), or -1 when there is
 * nothing to accept now: EAGAIN, a blocking accept's tick, EINTR, a connection that aborted before
 * it was accepted, or one shed because the process is out of descriptors (EMFILE): the server then
 * accepts it with a reserved descriptor and closes it at once, so the listening socket does not
 * stay readable forever. Dies on errors that mean the listening socket itself is broken. */
int net_accept(int listen_fd, bool nonblocking);

/* Clears O_NONBLOCK, for a connection accepted by an event loop and served by blocking calls. */
void net_set_blocking(int fd);

/* Bounds every read and write on a blocking socket to NET_TICK_MS. */
void net_set_tick_timeouts(int fd);

#endif
