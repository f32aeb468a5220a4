/* test_conn.c - unit tests of the I/O-free connection core (servers/common/conn_core.c).
 *
 * The core is driven here as a completion-based server drives it: bytes go in with
 * conn_received(), output comes out of conn_output() and is "sent" with conn_sent(), with no
 * socket anywhere. Each check prints PASS or FAIL; the last line is "N passed, N failed". */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "options.h"
#include "stats.h"
#include "unit_check.h"

static const char get_root[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/* Concatenates the pending output without sending it. */
static size_t peek_output(const struct conn *conn, char *dst, size_t cap)
{
    struct iovec parts[CONN_OUTPUT_PARTS];
    int count = conn_output(conn, parts, CONN_OUTPUT_PARTS);
    size_t len = 0;
    for (int i = 0; i < count && len < cap; i++) {
        size_t n = parts[i].iov_len < cap - len ? parts[i].iov_len : cap - len;
        memcpy(dst + len, parts[i].iov_base, n);
        len += n;
    }
    return len;
}

/* Sends everything, part by part, as a completion server would; returns the bytes "sent". */
static size_t drain(struct conn *conn, char *dst, size_t cap)
{
    size_t total = 0;
    while (conn_wants_write(conn)) {
        struct iovec parts[CONN_OUTPUT_PARTS];
        int count = conn_output(conn, parts, CONN_OUTPUT_PARTS);
        size_t sent = 0;
        for (int i = 0; i < count; i++) {
            if (dst != NULL && total + sent + parts[i].iov_len <= cap)
                memcpy(dst + total + sent, parts[i].iov_base, parts[i].iov_len);
            sent += parts[i].iov_len;
        }
        conn_sent(conn, sent);
        total += sent;
    }
    return total;
}

static int count_of(const char *haystack, size_t len, const char *needle)
{
    int count = 0;
    size_t needle_len = strlen(needle);
    for (size_t i = 0; i + needle_len <= len; i++)
        if (memcmp(haystack + i, needle, needle_len) == 0)
            count++;
    return count;
}

static void test_pipelined_in_one_output(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    char requests[16 * sizeof get_root];
    size_t len = 0;
    for (int i = 0; i < 16; i++, len += sizeof get_root - 1)
        memcpy(requests + len, get_root, sizeof get_root - 1);
    conn_received(&conn, requests, len);
    struct iovec parts[CONN_OUTPUT_PARTS];
    int count = conn_output(&conn, parts, CONN_OUTPUT_PARTS);
    char out[65536];
    size_t out_len = peek_output(&conn, out, sizeof out);
    /* One send takes them all: the parts fit one sendmsg (a chain of chunks that doubles from 1 KiB). */
    check(count <= 2 && count_of(out, out_len, "HTTP/1.1 200 OK") == 16, "pipelined_16_in_one_send",
          "%d parts, %d responses", count, count_of(out, out_len, "HTTP/1.1 200 OK"));
    drain(&conn, NULL, 0);
    check(!conn_wants_write(&conn) && conn_wants_read(&conn) && !conn_is_done(&conn),
          "idle_after_sent", "state %d", conn.state);
    conn_free(&conn);
}

static void test_split_at_every_byte(void)
{
    int wrong = -1;
    for (size_t split = 1; split < sizeof get_root - 1; split++) {
        struct conn conn;
        conn_init(&conn, -1);
        conn_received(&conn, get_root, split);
        bool nothing_yet = !conn_wants_write(&conn);
        conn_received(&conn, get_root + split, sizeof get_root - 1 - split);
        char out[4096];
        size_t out_len = drain(&conn, out, sizeof out);
        if (!nothing_yet || count_of(out, out_len, "HTTP/1.1 200 OK") != 1 || conn.in_len != 0)
            wrong = (int)split;
        conn_free(&conn);
    }
    check(wrong < 0, "request_split_at_every_byte", "wrong at split %d", wrong);
}

/* The bytes handed out for a send must not move while more output is appended behind them. */
static void test_output_stays_put_while_in_flight(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    conn_received(&conn, get_root, sizeof get_root - 1);
    struct iovec in_flight[CONN_OUTPUT_PARTS];
    int count = conn_output(&conn, in_flight, CONN_OUTPUT_PARTS);
    char copy[4096];
    memcpy(copy, in_flight[0].iov_base, in_flight[0].iov_len);
    /* Enough pipelined requests to need several new chunks while the first send is "in flight". */
    for (int i = 0; i < 2000; i++)
        conn_received(&conn, get_root, sizeof get_root - 1);
    bool unchanged = memcmp(copy, in_flight[0].iov_base, in_flight[0].iov_len) == 0;
    conn_sent(&conn, in_flight[0].iov_len);
    char *out = malloc(1 << 20);
    size_t out_len = drain(&conn, out, 1 << 20);
    int responses = count_of(out, out_len, "HTTP/1.1 200 OK");
    check(count == 1 && unchanged && responses == 2000, "output_stays_put_while_in_flight",
          "parts %d, unchanged %d, %d later responses", count, unchanged, responses);
    free(out);
    conn_free(&conn);
}

/* Above the high-water mark the core stops wanting input and keeps what came, answering it in
 * order once the output has gone. */
static void test_back_pressure(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    const char big[] = "GET /bytes/16000 HTTP/1.1\r\nHost: t\r\n\r\n";
    int sent_requests = 0;
    while (conn_wants_read(&conn) && sent_requests < 1000) {
        conn_received(&conn, big, sizeof big - 1);
        sent_requests++;
    }
    bool paused = !conn_wants_read(&conn) && sent_requests < 1000;
    for (int i = 0; i < 10; i++) /* more arrives anyway (a completion was already under way) */
        conn_received(&conn, big, sizeof big - 1);
    char *out = malloc(64 << 20);
    size_t out_len = drain(&conn, out, 64 << 20);
    int responses = count_of(out, out_len, "HTTP/1.1 200 OK");
    check(paused && responses == sent_requests + 10 && conn_wants_read(&conn), "back_pressure_pauses_and_resumes",
          "paused %d after %d requests, %d responses", paused, sent_requests, responses);
    free(out);
    conn_free(&conn);
}

static void test_large_body_streams(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    const char request[] = "GET /bytes/10000000 HTTP/1.1\r\nHost: t\r\n\r\n";
    conn_received(&conn, request, sizeof request - 1);
    bool paused_meanwhile = !conn_wants_read(&conn); /* nothing more is answered until it has gone */
    size_t total = drain(&conn, NULL, 0);
    check(total > 10000000 && total < 10000000 + 512 && paused_meanwhile && conn_wants_read(&conn),
          "large_body_streamed", "%zu bytes", total);
    conn_free(&conn);
}

static void test_error_closes_with_linger(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    const char bad[] = "GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    conn_received(&conn, bad, sizeof bad - 1);
    char out[4096];
    size_t out_len = drain(&conn, out, sizeof out);
    check(count_of(out, out_len, "HTTP/1.1 400") == 1 && count_of(out, out_len, "HTTP/1.1 200") == 0 &&
          conn.state == CONN_LINGERING && conn.shutdown_due, "error_then_linger",
          "state %d shutdown_due %d", conn.state, conn.shutdown_due);
    conn.shutdown_due = false;
    conn_received(&conn, get_root, sizeof get_root - 1); /* discarded */
    bool nothing = !conn_wants_write(&conn);
    conn_received_eof(&conn);
    check(nothing && conn_is_done(&conn), "linger_discards_then_done", "state %d", conn.state);
    conn_free(&conn);
}

static void test_eof_owes_answers(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    conn_received(&conn, get_root, sizeof get_root - 1);
    conn_received_eof(&conn);
    bool closing = conn.state == CONN_CLOSING && conn_wants_write(&conn);
    char out[4096];
    size_t out_len = drain(&conn, out, sizeof out);
    check(closing && count_of(out, out_len, "200 OK") == 1 && conn_is_done(&conn), "eof_then_answer_then_done",
          "closing %d state %d", closing, conn.state);
    conn_free(&conn);
}

/* Only the output that ends the connection is "last" (sent with MSG_MORE): a keep-alive response
 * is not, a Connection: close one is, but only while all of it is in the parts. */
static void test_output_is_last_only_before_fin(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    conn_received(&conn, get_root, sizeof get_root - 1);
    struct iovec parts[CONN_OUTPUT_PARTS];
    int count = conn_output(&conn, parts, CONN_OUTPUT_PARTS);
    bool keep_alive_last = conn_output_is_last(&conn, parts, count);
    drain(&conn, NULL, 0);
    const char closing[] = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    conn_received(&conn, closing, sizeof closing - 1);
    count = conn_output(&conn, parts, CONN_OUTPUT_PARTS);
    bool close_last = conn_output_is_last(&conn, parts, count);
    parts[count - 1].iov_len--; /* a part of it only, as after a short send */
    bool part_last = conn_output_is_last(&conn, parts, count);
    check(!keep_alive_last && close_last && !part_last, "output_is_last_only_before_fin",
          "keep-alive %d close %d part %d", keep_alive_last, close_last, part_last);
    drain(&conn, NULL, 0);
    conn_free(&conn);

    conn_init(&conn, -1);
    const char large[] = "GET /bytes/10000000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    conn_received(&conn, large, sizeof large - 1);
    count = conn_output(&conn, parts, CONN_OUTPUT_PARTS);
    bool stream_first_last = conn_output_is_last(&conn, parts, count);
    check(!stream_first_last, "streamed_body_is_last_only_at_its_end", "first parts called last");
    drain(&conn, NULL, 0);
    conn_free(&conn);
}

/* The FIN arrives while requests wait behind a large response (a completion server's recv was
 * still armed): every complete one is answered, the partial one at the end is dropped. */
static void test_eof_keeps_held_requests(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    const char requests[] = "GET /bytes/100000 HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /bytes/5 HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET / HT";
    conn_received(&conn, requests, sizeof requests - 1);
    bool held = !conn_wants_read(&conn) && conn.in_len > 0;
    conn_received_eof(&conn);
    bool still_owed = !conn_is_done(&conn) && conn_wants_write(&conn) && !conn_wants_read(&conn);
    char *out = malloc(1 << 20);
    size_t out_len = drain(&conn, out, 1 << 20);
    int responses = count_of(out, out_len, "HTTP/1.1 200 OK");
    bool in_order = out_len > 5 && memcmp(out + out_len - 5, "abcde", 5) == 0;
    check(held && still_owed && responses == 3 && in_order && conn_is_done(&conn) && conn.in_len == 0,
          "eof_keeps_held_requests", "held %d owed %d, %d responses, in order %d, state %d",
          held, still_owed, responses, in_order, conn.state);
    free(out);
    conn_free(&conn);
}

static void test_header_deadline_queues_408(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    conn_received(&conn, "GET / HT", 8);
    conn_check_deadlines(&conn, conn.request_started + server_options.header_timeout - 0.1);
    bool early = !conn_wants_write(&conn);
    conn_check_deadlines(&conn, conn.request_started + server_options.header_timeout + 0.1);
    char out[4096];
    size_t out_len = drain(&conn, out, sizeof out);
    check(early && count_of(out, out_len, "HTTP/1.1 408") == 1, "header_deadline_queues_408",
          "early %d, %zu bytes", early, out_len);
    conn_free(&conn);
}

static void test_send_deadline_without_any_completion(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    const char request[] = "GET /bytes/10000000 HTTP/1.1\r\nHost: t\r\n\r\n";
    conn_received(&conn, request, sizeof request - 1);
    /* The send never completes: the client reads nothing. */
    double queued = conn.send_stalled_since;
    conn_check_deadlines(&conn, queued + server_options.send_timeout + 0.1);
    check(queued != 0 && conn_is_done(&conn), "send_deadline_without_completion", "queued %f state %d",
          queued, conn.state);
    conn_free(&conn);
}

/* --- offloading --------------------------------------------------------------------------- */

static struct conn_job *handed_over;
static void take_job(struct conn *conn, struct conn_job *job)
{
    (void)conn;
    handed_over = job;
}

static void *run_job(void *job)
{
    conn_job_run(job);
    return NULL;
}

static void test_offload_keeps_order(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    conn.offload = take_job;
    const char requests[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /sleep/20 HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n";
    conn_received(&conn, requests, sizeof requests - 1);
    char out[8192];
    size_t first_len = drain(&conn, out, sizeof out);
    bool first_only = count_of(out, first_len, "HTTP/1.1 ") == 1 && handed_over != NULL;
    conn_received(&conn, get_root, sizeof get_root - 1); /* held behind the job */
    bool held = !conn_wants_write(&conn) && conn_next_deadline(&conn) == 0;
    pthread_t worker;
    if (pthread_create(&worker, NULL, run_job, handed_over) != 0 || pthread_join(worker, NULL) != 0) {
        check(false, "offload_keeps_order", "pthread failed");
        return;
    }
    conn_job_finish(&conn, handed_over);
    size_t len = drain(&conn, out, sizeof out);
    const char *ok = strstr(out, "\r\n\r\nOK\n");
    const char *not_found = strstr(out, "404 Not Found");
    check(first_only && held && len > 0 && ok != NULL && not_found != NULL && ok < not_found &&
          count_of(out, len, "HTTP/1.1 ") == 3, "offload_keeps_order",
          "first_only %d held %d, %d responses after", first_only, held, count_of(out, len, "HTTP/1.1 "));
    conn_free(&conn);
}

static void test_offload_after_eof(void)
{
    struct conn conn;
    conn_init(&conn, -1);
    conn.offload = take_job;
    handed_over = NULL;
    const char request[] = "GET /cpu/100 HTTP/1.1\r\nHost: t\r\n\r\n";
    conn_received(&conn, request, sizeof request - 1);
    conn_received_eof(&conn);
    bool waiting = handed_over != NULL && !conn_is_done(&conn);
    conn_job_run(handed_over);
    conn_job_finish(&conn, handed_over);
    char out[4096];
    size_t len = drain(&conn, out, sizeof out);
    check(waiting && count_of(out, len, "200 OK") == 1 && conn_is_done(&conn), "offload_answered_after_eof",
          "waiting %d state %d", waiting, conn.state);
    conn_free(&conn);
}

int main(void)
{
    char *argv[] = {"test_conn", NULL};
    options_parse(1, argv, &(struct paradigm){.name = "test"});
    stats_init();
    test_pipelined_in_one_output();
    test_split_at_every_byte();
    test_output_stays_put_while_in_flight();
    test_back_pressure();
    test_large_body_streams();
    test_error_closes_with_linger();
    test_eof_owes_answers();
    test_output_is_last_only_before_fin();
    test_eof_keeps_held_requests();
    test_header_deadline_queues_408();
    test_send_deadline_without_any_completion();
    test_offload_keeps_order();
    test_offload_after_eof();
    return unit_check_summary();
}
