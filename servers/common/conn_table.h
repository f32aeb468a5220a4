/* conn_table.h - a reactor's connections, indexed by descriptor, and their deadline sweep.
 *
 * The kernel hands out the lowest free descriptor, so a table indexed by it stays dense and a
 * lookup is one load. A server keeps its own per-connection struct, with a struct conn inside it;
 * the table stores pointers to the struct conn. */
#ifndef C10K_CONN_TABLE_H
#define C10K_CONN_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

/* How often a reactor looks for passed deadlines, so a deadline fires up to this late. Half a
 * second: with one second, a connection's first deadline came due just after a sweep and fired at
 * 2.8-3.0 s for a 2 s send timeout, and under a loaded make test (epoll-et, leader-follower under
 * TSan) twice more than the 1.5 s the conformance suite allows. A sweep walks the whole table,
 * so the walks are twice as many. */
#define SWEEP_INTERVAL_S 0.5

struct conn_table {
    struct conn **slots;
    size_t cap;
    size_t count;
    double next_sweep;
};

/* Sized for the descriptor limit; dies if that much memory is not there (a start-up failure). */
void conn_table_init(struct conn_table *table);
/* A new connection on fd: allocates the server's struct for it (size bytes, with its struct conn
 * first), starts that struct conn (conn_init) and stores it. NULL when there is no memory or no
 * room in the table: the descriptor is then closed and the connection counted as dropped. The
 * rest of the server's struct is zeroed, for the caller to fill. */
void *conn_table_add(struct conn_table *table, int fd, size_t size);
static inline struct conn *conn_table_get(const struct conn_table *table, int fd)
{
    return fd >= 0 && (size_t)fd < table->cap ? table->slots[fd] : NULL;
}
void conn_table_remove(struct conn_table *table, int fd);

/* Once a second: conn_check_deadlines() on every connection, then settle(conn) for each (which
 * may close it and remove it from the table). Cheap to call on every loop iteration. */
void conn_table_sweep(struct conn_table *table, double now, void (*settle)(struct conn *conn));
/* Milliseconds until the next sweep is due, at most max_ms: a loop's wait timeout. */
int conn_table_wait_ms(const struct conn_table *table, double now, int max_ms);
/* Calls close(conn) for every connection left (at exit), then frees the table. */
void conn_table_close_all(struct conn_table *table, void (*close)(struct conn *conn));

#endif
