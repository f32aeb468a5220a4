/* serve_blocking.c - the connection state machine of conn.c, driven by blocking calls.
 *
 * A blocking read would wait forever for a silent client, and the thread could neither enforce
 * deadlines nor notice SIGTERM. So every read has a timeout (SO_RCVTIMEO) that ends at the
 * connection's next deadline, and every send a short one (SO_SNDTIMEO, NET_TICK_MS): a timeout
 * looks exactly like EAGAIN on a nonblocking socket, which conn.c already handles, and the loop
 * then enforces the deadline. The stop flag is noticed because a signal interrupts the call
 * (EINTR): SIGTERM itself in a child process, SIGNAL_WAKE in a thread (signals.h). */
#include "serve_blocking.h"

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "net.h"
#include "signals.h"

#define MIN_WAIT_S 0.01 /* the coarse clock's granularity is a few ms */

static void set_timeout(int fd, int option, double seconds)
{
    long usec = (long)(seconds * 1e6);
    struct timeval wait = {.tv_sec = usec / 1000000, .tv_usec = usec % 1000000};
    if (setsockopt(fd, SOL_SOCKET, option, &wait, sizeof wait) != 0)
        log_error("setsockopt(%s): %m", option == SO_RCVTIMEO ? "SO_RCVTIMEO" : "SO_SNDTIMEO");
}

static void serve(int fd, double max_wait)
{
    struct conn conn;
    conn_init(&conn, fd);
    /* A blocking send that times out returns what it sent so far, so the bytes could have
     * moved at the start of the call or at its end: a short timeout keeps the "nothing moved
     * for --send-timeout" clock of conn.c exact to a tick. Sends only block for a client that
     * does not read, so this costs a well-behaved connection nothing. */
    set_timeout(fd, SO_SNDTIMEO, NET_TICK_MS / 1000.0);
    double timeout = 0; /* what SO_RCVTIMEO is set to; 0: not yet */
    while (!conn_is_done(&conn) && !server_stopping) {
        double wait = conn_next_deadline(&conn) - clock_now();
        if (wait < MIN_WAIT_S)
            wait = MIN_WAIT_S;
        if (wait > max_wait)
            wait = max_wait;
        /* Reset only when the timeout would overshoot the deadline, or wake far too early: the
         * idle deadline moves with each request, so a keep-alive request costs no extra call. */
        if (timeout == 0 || wait < timeout - MIN_WAIT_S || wait > 2 * timeout) {
            set_timeout(fd, SO_RCVTIMEO, wait);
            timeout = wait;
        }
        if (conn_wants_write(&conn))
            conn_on_writable(&conn);
        else
            conn_on_readable(&conn);
        conn_check_deadlines(&conn, clock_now());
    }
    conn_release(&conn);
}

void serve_blocking(int fd)
{
    serve(fd, 86400);
}

void serve_blocking_polled(int fd)
{
    serve(fd, NET_TICK_MS / 1000.0);
}
