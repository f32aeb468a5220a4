/* libuv.c - the single-threaded reactor again, on libuv's event loop.
 *
 * How it works: libuv owns the loop (epoll underneath) and calls us back. Each connection is a
 * uv_tcp_t reading with uv_read_start: libuv asks for a buffer (on_alloc), reads into it and hands
 * us the bytes (on_read), which go to the core; the responses of one read go out at once with
 * uv_try_write, and only what the socket does not take goes to one uv_write, whose callback says
 * when it has all gone. A uv_timer, re-armed after each sweep, drives the deadlines; uv_signal the
 * stop.
 *
 * Limits: one thread, so one core, and anything that blocks it (GET /sleep, a long GET /cpu)
 * stalls every connection, as in epoll-lt. libuv's handles and requests make a connection about
 * 700 bytes instead of epoll-lt's 168. The listening socket is watched with a uv_poll and accepted
 * by net_accept, not by uv_listen: libuv's own accept sheds connections at the descriptor limit
 * without telling us, so they could not be counted. See docs/libuv.md. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/conn_table.h"
#include "common/log.h"
#include "common/net.h"
#include "common/options.h"
#include "common/signals.h"
#include "common/stats.h"

#define MAX_ACCEPTS_PER_EVENT 64
#define SWEEP_WAIT_MAX_MS 1000

struct client {
    struct conn conn;         /* first, so the table's struct conn * is the client */
    uv_tcp_t tcp;
    uv_write_t write;         /* the one uv_write in flight, while `writing` */
    uv_shutdown_t shutdown;
    size_t write_len;         /* the bytes of that write */
    bool writing;
    bool reading;             /* uv_read_start is in force */
    bool corked;              /* TCP_CORK holds the last response for the FIN */
};

static uv_loop_t loop;
static struct conn_table clients;
/* One buffer for every read and one for the responses to it: libuv calls on_read before it asks
 * for the next buffer, and the core copies whatever it keeps, so both are free again by then. */
static char read_buffer[64 * 1024];
static char staging[64 * 1024];
static struct sigaction libuv_actions[NSIG];

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_client_closed(uv_handle_t *handle)
{
    struct client *client = handle->data;
    conn_free(&client->conn);
    free(client);
}

/* The descriptor is closed now, and may be handed out again before libuv calls on_client_closed,
 * so the table forgets it now. A write or shutdown still in flight is called back with
 * UV_ECANCELED first: the client is freed only after that. */
static void close_client(struct client *client)
{
    conn_table_remove(&clients, client->conn.fd);
    uv_close((uv_handle_t *)&client->tcp, on_client_closed);
}

/* The core's output, as libuv's buffers; *len is their total size. libuv's writes take no
 * MSG_MORE, so the response before our FIN is corked instead: the close that follows sends the
 * corked bytes and the FIN in one segment (docs/churn.md), for one setsockopt. */
static int take_output(struct client *client, uv_buf_t *bufs, size_t *len)
{
    struct conn *conn = &client->conn;
    struct iovec parts[CONN_OUTPUT_PARTS];
    int count = conn_output(conn, parts, CONN_OUTPUT_PARTS);
    if (!client->corked && conn_output_is_last(conn, parts, count)) {
        client->corked = true;
        if (setsockopt(conn->fd, IPPROTO_TCP, TCP_CORK, &(int){1}, sizeof(int)) != 0)
            log_error("setsockopt(TCP_CORK): %m");
    }
    *len = 0;
    for (int i = 0; i < count; i++) {
        bufs[i] = uv_buf_init(parts[i].iov_base, (unsigned)parts[i].iov_len);
        *len += parts[i].iov_len;
    }
    return count;
}

/* Sends while the socket takes everything: the common case needs no write request and no
 * callback. A short write leaves the rest to start_write. */
static void send_now(struct client *client)
{
    struct conn *conn = &client->conn;
    while (!client->writing && conn_wants_write(conn)) {
        uv_buf_t bufs[CONN_OUTPUT_PARTS];
        size_t len;
        int count = take_output(client, bufs, &len);
        int written = uv_try_write((uv_stream_t *)&client->tcp, bufs, (unsigned)count);
        if (written == UV_EAGAIN)
            return;
        if (written < 0) {
            conn_failed(conn, -written);
            return;
        }
        conn_sent(conn, (size_t)written);
        if ((size_t)written < len)
            return;
    }
}

static void settle(struct client *client);

static void on_written(uv_write_t *request, int status)
{
    struct client *client = request->handle->data;
    client->writing = false;
    if (status == UV_ECANCELED)
        return; /* closing: on_client_closed follows */
    if (status < 0)
        conn_failed(&client->conn, -status);
    else
        conn_sent(&client->conn, client->write_len); /* uv_write reports only when all went */
    settle(client);
}

/* The output stays where the core put it (it never moves queued bytes), so libuv may write it
 * from there for as long as the client takes. */
static void start_write(struct client *client)
{
    uv_buf_t bufs[CONN_OUTPUT_PARTS];
    int count = take_output(client, bufs, &client->write_len);
    int err = uv_write(&client->write, (uv_stream_t *)&client->tcp, bufs, (unsigned)count, on_written);
    if (err != 0)
        conn_failed(&client->conn, -err);
    else
        client->writing = true;
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
    struct client *client = request->handle->data;
    if (status == UV_ECANCELED)
        return;
    if (status < 0)
        conn_failed(&client->conn, -status);
    settle(client);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct client *client = handle->data;
    size_t room;
    /* A partial request is read straight into the connection's own buffer, so it is not copied
     * twice; out of memory, the connection is done and libuv reports UV_ENOBUFS. */
    char *own = conn_input_space(&client->conn, &room);
    if (own != NULL)
        *buf = uv_buf_init(own, (unsigned)room);
    else if (conn_is_done(&client->conn))
        *buf = uv_buf_init(NULL, 0);
    else
        *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

/* After any event: start a write of what is left, shut down when the core says, close when it is
 * done, and read only while it wants input (back-pressure). */
static void settle(struct client *client)
{
    struct conn *conn = &client->conn;
    uv_stream_t *stream = (uv_stream_t *)&client->tcp;
    if (uv_is_closing((uv_handle_t *)stream))
        return;
    if (!client->writing && conn_wants_write(conn))
        start_write(client);
    if (conn->shutdown_due) {
        conn->shutdown_due = false;
        int err = uv_shutdown(&client->shutdown, stream, on_shutdown);
        if (err != 0)
            conn_failed(conn, -err);
    }
    bool wanted = conn_wants_read(conn);
    if (!conn_is_done(conn) && wanted != client->reading) {
        int err = wanted ? uv_read_start(stream, on_alloc, on_read) : uv_read_stop(stream);
        if (err != 0)
            conn_failed(conn, -err);
        else
            client->reading = wanted;
    }
    if (conn_is_done(conn))
        close_client(client);
}

static void settle_conn(struct conn *conn)
{
    settle((struct client *)conn);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct client *client = stream->data;
    struct conn *conn = &client->conn;
    if (nread == 0)
        return; /* EAGAIN: nothing after all */
    if (nread < 0) {
        client->reading = false; /* libuv stops reading at the end of input or an error */
        /* A lingering connection reads only to see the client go, however it goes. */
        if (nread == UV_EOF || conn->state == CONN_LINGERING)
            conn_received_eof(conn);
        else if (nread != UV_ENOBUFS) /* on_alloc found no memory: already counted as dropped */
            conn_failed(conn, (int)-nread);
        settle(client);
        return;
    }
    conn_stage_begin(staging, sizeof staging);
    if (buf->base == read_buffer)
        conn_received(conn, buf->base, (size_t)nread);
    else
        conn_input_added(conn, (size_t)nread);
    send_now(client);
    conn_stage_end(conn); /* what the socket did not take is copied into the connection's chunks */
    settle(client);
}

static void accept_client(int fd)
{
    struct client *client = conn_table_add(&clients, fd, sizeof *client);
    if (client == NULL)
        return;
    int err = uv_tcp_init(&loop, &client->tcp);
    if (err != 0)
        die("uv_tcp_init: %s", uv_strerror(err)); /* it makes no system call: a bug if it fails */
    client->tcp.data = client;
    err = uv_tcp_open(&client->tcp, fd);
    if (err != 0) {
        close(fd); /* libuv did not take it, so closing the handle will not close it */
        conn_dropped(&client->conn);
    }
    settle(client); /* starts reading, or closes the handle */
}

static void on_listen_readable(uv_poll_t *poll, int status, int events)
{
    (void)events;
    if (status < 0)
        die("polling the listening socket: %s", uv_strerror(status));
    int listen_fd;
    if (uv_fileno((uv_handle_t *)poll, &listen_fd) != 0)
        die("uv_fileno on the listening socket");
    for (int i = 0; i < MAX_ACCEPTS_PER_EVENT; i++) {
        int fd = net_accept(listen_fd, true);
        if (fd < 0)
            return;
        accept_client(fd);
    }
}

static void on_sweep_timer(uv_timer_t *timer)
{
    conn_table_sweep(&clients, clock_now(), settle_conn);
    uv_timer_start(timer, on_sweep_timer, (uint64_t)conn_table_wait_ms(&clients, clock_now(), SWEEP_WAIT_MAX_MS), 0);
}

static void on_stop_signal(uv_signal_t *handle, int signal_number)
{
    (void)signal_number;
    uv_stop(handle->loop);
}

/* libuv's handler only writes the signal into a pipe, and on_stop_signal runs later, on the loop's
 * thread. GET /sleep and /cpu block that thread and look at server_stopping to end early, so the
 * flag must be set in the handler itself: this one sets it and then calls libuv's. */
static void on_signal_raised(int signal_number)
{
    server_stopping = 1;
    libuv_actions[signal_number].sa_handler(signal_number);
}

static void watch_stop_signal(uv_signal_t *handle, int signal_number)
{
    int err = uv_signal_init(&loop, handle);
    if (err == 0)
        err = uv_signal_start(handle, on_stop_signal, signal_number);
    if (err != 0)
        die("uv_signal_start(%d): %s", signal_number, uv_strerror(err));
    struct sigaction *libuv_action = &libuv_actions[signal_number];
    if (sigaction(signal_number, NULL, libuv_action) != 0 || (libuv_action->sa_flags & SA_SIGINFO))
        die("sigaction(%d): cannot wrap libuv's handler", signal_number);
    struct sigaction action = *libuv_action;
    action.sa_handler = on_signal_raised;
    if (sigaction(signal_number, &action, NULL) != 0)
        die("sigaction(%d): %m", signal_number);
}

static void close_conn(struct conn *conn)
{
    close_client((struct client *)conn);
}

static void close_handle(uv_handle_t *handle, void *unused)
{
    (void)unused;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv, &(struct paradigm){.name = "libuv"});
    signals_install(); /* SIGPIPE ignored: libuv writes with write(2), which raises it */
    stats_init();
    int listen_fd = net_listen(false, true);

    int err = uv_loop_init(&loop);
    if (err != 0)
        die("uv_loop_init: %s", uv_strerror(err));
    conn_table_init(&clients);
    uv_poll_t listener;
    uv_timer_t sweep_timer;
    uv_signal_t stop_signals[2];
    if ((err = uv_poll_init_socket(&loop, &listener, listen_fd)) != 0 ||
        (err = uv_poll_start(&listener, UV_READABLE, on_listen_readable)) != 0)
        die("uv_poll on the listening socket: %s", uv_strerror(err));
    if ((err = uv_timer_init(&loop, &sweep_timer)) != 0 ||
        (err = uv_timer_start(&sweep_timer, on_sweep_timer, SWEEP_WAIT_MAX_MS, 0)) != 0)
        die("uv_timer_start: %s", uv_strerror(err));
    watch_stop_signal(&stop_signals[0], SIGTERM);
    watch_stop_signal(&stop_signals[1], SIGINT);
    net_announce(listen_fd);

    if (!server_stopping) /* a signal before watch_stop_signal only set the flag */
        uv_run(&loop, UV_RUN_DEFAULT);

    /* Every handle must be closed, and its close callback run, before the loop can be closed. */
    conn_table_close_all(&clients, close_conn);
    uv_walk(&loop, close_handle, NULL);
    signals_install(); /* closing libuv's signal handles reset SIGTERM and SIGINT to the default */
    uv_run(&loop, UV_RUN_DEFAULT);
    if ((err = uv_loop_close(&loop)) != 0)
        log_error("uv_loop_close: %s", uv_strerror(err));
    close(listen_fd);
    stats_print();
    return 0;
}
