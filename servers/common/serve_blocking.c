/* serve_blocking.c - the connection state machine of conn.c, driven by blocking calls.
 *
 * A blocking read would wait forever for a silent client, and the thread could neither enforce
 * deadlines nor notice SIGTERM. So every call times out after NET_TICK_MS (SO_RCVTIMEO and
 * SO_SNDTIMEO): a timeout looks exactly like EAGAIN on a nonblocking socket, which conn.c already
 * handles, and the loop gets a chance to look at the clock and the stop flag. */
#include "serve_blocking.h"

#include "clock.h"
#include "conn.h"
#include "net.h"
#include "signals.h"

void serve_blocking(int fd)
{
    struct conn conn;
    conn_init(&conn, fd);
    net_set_tick_timeouts(fd);
    while (!conn_is_done(&conn) && !server_stopping) {
        if (conn_wants_write(&conn))
            conn_on_writable(&conn);
        else
            conn_on_readable(&conn);
        conn_check_deadlines(&conn, clock_now());
    }
    conn_release(&conn);
}
