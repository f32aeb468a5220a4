/* conn_table.c - see conn_table.h. */
#include "conn_table.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "stats.h"

void conn_table_init(struct conn_table *table)
{
    struct rlimit files;
    size_t cap = getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 1u << 20 ? files.rlim_cur : 1024;
    *table = (struct conn_table){.slots = calloc(cap, sizeof(struct conn *)), .cap = cap,
                                 .next_sweep = clock_now() + SWEEP_INTERVAL_S};
    if (table->slots == NULL)
        die("out of memory for %zu connections", cap);
}

static bool put(struct conn_table *table, int fd, struct conn *conn)
{
    if (fd < 0)
        return false;
    if ((size_t)fd >= table->cap) {
        /* The limit was raised after start-up (or is unlimited): grow. */
        size_t cap = table->cap * 2 > (size_t)fd + 1 ? table->cap * 2 : (size_t)fd + 1;
        struct conn **grown = realloc(table->slots, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        for (size_t slot = table->cap; slot < cap; slot++)
            grown[slot] = NULL;
        table->slots = grown;
        table->cap = cap;
    }
    table->slots[fd] = conn;
    table->count++;
    return true;
}

void *conn_table_add(struct conn_table *table, int fd, size_t size)
{
    struct conn *conn = calloc(1, size);
    if (conn == NULL || !put(table, fd, conn)) {
        stats_add(STAT_DROPPED, 1);
        free(conn);
        if (close(fd) != 0)
            log_error("close: %m");
        return NULL;
    }
    conn_init(conn, fd);
    return conn;
}

void conn_table_remove(struct conn_table *table, int fd)
{
    if (conn_table_get(table, fd) == NULL)
        return;
    table->slots[fd] = NULL;
    table->count--;
}

void conn_table_sweep(struct conn_table *table, double now, void (*settle)(struct conn *conn))
{
    if (now < table->next_sweep)
        return;
    table->next_sweep = now + SWEEP_INTERVAL_S;
    for (size_t fd = 0; fd < table->cap; fd++) {
        struct conn *conn = table->slots[fd];
        if (conn == NULL)
            continue;
        conn_check_deadlines(conn, now);
        settle(conn);
    }
}

int conn_table_wait_ms(const struct conn_table *table, double now, int max_ms)
{
    double wait_ms = (table->next_sweep - now) * 1000;
    if (wait_ms < 0)
        return 0;
    return wait_ms < max_ms ? (int)wait_ms + 1 : max_ms;
}

void conn_table_close_all(struct conn_table *table, void (*close)(struct conn *conn))
{
    for (size_t fd = 0; fd < table->cap; fd++)
        if (table->slots[fd] != NULL)
            close(table->slots[fd]);
    free(table->slots);
    table->slots = NULL;
    table->cap = table->count = 0;
}
