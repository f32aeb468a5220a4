/* test_units.c - named edge cases for loadgen's HDR histogram and HTTP response parser, its
 * --mix sequence and its timeline.
 *
 * Every parser input is placed against a guard page (picohttpparser's trick), so a read past the
 * bytes handed over crashes the test instead of passing by luck. Prints "ok NAME" or
 * "FAIL NAME: ..." per case and exits 1 if any failed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hdr.h"
#include "http_response.h"
#include "loadgen.h"

static int failures;
static const char *current;

#define CHECK(condition)                                                                       \
    do {                                                                                       \
        if (!(condition)) {                                                                    \
            printf("FAIL %s: %s (line %d)\n", current, #condition, __LINE__);                  \
            failures++;                                                                        \
            return;                                                                            \
        }                                                                                      \
    } while (0)
#define CHECK_EQ(a, b)                                                                         \
    do {                                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                                    \
        if (a_ != b_) {                                                                        \
            printf("FAIL %s: %s == %lld, expected %s == %lld (line %d)\n", current, #a, a_, #b, \
                   b_, __LINE__);                                                              \
            failures++;                                                                        \
            return;                                                                            \
        }                                                                                      \
    } while (0)

static void run(const char *name, void (*test)(void))
{
    current = name;
    int before = failures;
    test();
    if (failures == before)
        printf("ok %s\n", name);
}

/* --- guard page ------------------------------------------------------------------------------- */

#define GUARDED_SIZE (64 * 1024)
static char *guard_area;

/* A copy of bytes that ends exactly where an unreadable page begins. */
static const char *guarded(const char *bytes, size_t len)
{
    if (len > GUARDED_SIZE)
        abort();
    char *start = guard_area + GUARDED_SIZE - len;
    memmove(start, bytes, len);
    return start;
}

static void setup_guard(void)
{
    size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
    guard_area = mmap(NULL, GUARDED_SIZE + page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard_area == MAP_FAILED || mprotect(guard_area + GUARDED_SIZE, page_size, PROT_NONE) != 0) {
        perror("mmap/mprotect");
        exit(1);
    }
}

/* --- parser driver ---------------------------------------------------------------------------- */

/* Feeds text to a parser in pieces of `step` bytes, the way the engine does: an INCOMPLETE result
 * leaves the unconsumed bytes to be passed again with the next piece. Returns the result of the
 * first response, with *used = bytes of text it took. */
static int feed(struct http_response *response, bool no_body, const char *text, size_t len, size_t step,
                size_t *used)
{
    char carry[HTTP_RESPONSE_MAX_HEAD + 4096];
    size_t carry_len = 0, offset = 0;
    http_response_start(response, no_body);
    while (offset < len) {
        size_t piece = len - offset < step ? len - offset : step;
        if (carry_len + piece > sizeof carry)
            return -99;
        memcpy(carry + carry_len, text + offset, piece);
        size_t have = carry_len + piece;
        size_t consumed;
        int result = http_response_parse(response, guarded(carry, have), have, &consumed);
        offset += piece;
        if (result != HTTP_RESPONSE_INCOMPLETE) {
            *used = offset - (have - consumed);
            return result;
        }
        memmove(carry, carry + consumed, have - consumed);
        carry_len = have - consumed;
    }
    *used = offset - carry_len;
    return HTTP_RESPONSE_INCOMPLETE;
}

/* Parses text whole and in every piece size from 1 to 7 bytes; all must agree. */
static int parse_all_ways(bool no_body, const char *text, struct http_response *out, size_t *used)
{
    size_t len = strlen(text);
    int first = feed(out, no_body, text, len, len ? len : 1, used);
    for (size_t step = 1; step <= 7; step++) {
        struct http_response other;
        size_t other_used;
        int result = feed(&other, no_body, text, len, step, &other_used);
        if (result != first || (result == HTTP_RESPONSE_COMPLETE &&
                                (other_used != *used || other.body_bytes != out->body_bytes ||
                                 other.status != out->status || other.keep_alive != out->keep_alive)))
            return -98;
    }
    return first;
}

/* --- parser cases ----------------------------------------------------------------------------- */

static void content_length(void)
{
    struct http_response r;
    size_t used;
    const char *text = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 13\r\n\r\nHello, World!";
    CHECK_EQ(parse_all_ways(false, text, &r, &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(used, strlen(text));
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_bytes, 13);
    CHECK(r.keep_alive);
}

static void pipelined_two(void)
{
    const char *text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    size_t len = strlen(text), used;
    struct http_response r;
    http_response_start(&r, false);
    CHECK_EQ(http_response_parse(&r, guarded(text, len), len, &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(used, 40);
    CHECK_EQ(r.status, 200);
    http_response_start(&r, false);
    CHECK_EQ(http_response_parse(&r, guarded(text + used, len - used), len - used, &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(r.status, 404);
    CHECK_EQ(used, len - 40);
}

static void chunked_with_extensions_and_trailers(void)
{
    struct http_response r;
    size_t used;
    const char *text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
                       "5;name=value\r\nHello\r\n"
                       "a\r\n, World!!!\r\n"
                       "0\r\nTrailer-Field: yes\r\n\r\n";
    CHECK_EQ(parse_all_ways(false, text, &r, &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(used, strlen(text));
    CHECK_EQ(r.body_bytes, 15);
    CHECK(r.keep_alive);
}

static void interim_100_then_final(void)
{
    struct http_response r;
    size_t used;
    const char *text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc";
    CHECK_EQ(parse_all_ways(false, text, &r, &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(r.status, 201);
    CHECK_EQ(r.body_bytes, 3);
}

static void head_response_has_no_body(void)
{
    struct http_response r;
    size_t used;
    const char *text = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n";
    CHECK_EQ(parse_all_ways(true, text, &r, &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(r.body_bytes, 0);
    CHECK_EQ(used, strlen(text));
}

static void status_204_and_304_have_no_body(void)
{
    struct http_response r;
    size_t used;
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 204 No Content\r\n\r\n", &r, &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", &r, &used),
             HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(r.body_bytes, 0);
}

static void close_delimited_body(void)
{
    struct http_response r;
    size_t used;
    const char *text = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nsome bytes until the close";
    CHECK_EQ(parse_all_ways(false, text, &r, &used), HTTP_RESPONSE_INCOMPLETE);
    CHECK_EQ(used, strlen(text));
    CHECK_EQ(http_response_finish_at_eof(&r), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(r.body_bytes, 26);
    CHECK(!r.keep_alive);
}

static void eof_in_the_middle_is_an_error(void)
{
    struct http_response r;
    size_t used;
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &r, &used), HTTP_RESPONSE_INCOMPLETE);
    CHECK_EQ(http_response_finish_at_eof(&r), HTTP_RESPONSE_ERROR);
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 200 OK\r\nContent-Le", &r, &used), HTTP_RESPONSE_INCOMPLETE);
    CHECK_EQ(http_response_finish_at_eof(&r), HTTP_RESPONSE_ERROR);
    http_response_start(&r, false);
    CHECK(!http_response_started(&r));
    CHECK_EQ(http_response_finish_at_eof(&r), HTTP_RESPONSE_ERROR);
}

static void keep_alive_rules(void)
{
    struct http_response r;
    size_t used;
    CHECK_EQ(parse_all_ways(false, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &r, &used), HTTP_RESPONSE_COMPLETE);
    CHECK(!r.keep_alive);
    CHECK_EQ(parse_all_ways(false, "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", &r, &used),
             HTTP_RESPONSE_COMPLETE);
    CHECK(r.keep_alive);
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 0\r\n\r\n", &r, &used),
             HTTP_RESPONSE_COMPLETE);
    CHECK(!r.keep_alive);
}

static void header_names_ignore_case(void)
{
    struct http_response r;
    size_t used;
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 200 OK\r\nCONTENT-length: 3\r\nCONNECTION: Close\r\n\r\nabc", &r, &used),
             HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(r.body_bytes, 3);
    CHECK(!r.keep_alive);
    /* A name that only looks similar is just another header: no length, so the body runs to EOF. */
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 200 OK\r\nContent-Lengtm: 3\r\n\r\nabc", &r, &used), HTTP_RESPONSE_INCOMPLETE);
}

static void equal_duplicate_content_length(void)
{
    struct http_response r;
    size_t used;
    CHECK_EQ(parse_all_ways(false, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx", &r, &used),
             HTTP_RESPONSE_COMPLETE);
}

static void expect_error(const char *text)
{
    struct http_response r;
    size_t used;
    int result = parse_all_ways(false, text, &r, &used);
    if (result != HTTP_RESPONSE_ERROR) {
        printf("FAIL %s: accepted %s\n", current, text);
        failures++;
    }
}

static void malformed_responses(void)
{
    expect_error("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n");             /* bare LF */
    expect_error("HTTP/1.1 20 OK\r\n\r\n");                                  /* two-digit status */
    expect_error("HTTP/1.1 600 Nope\r\n\r\n");                               /* status out of range */
    expect_error("HTTP/2.0 200 OK\r\n\r\n");                                 /* version */
    expect_error("HTTP/1.1 200OK\r\n\r\n");                                  /* no SP after status */
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 13x\r\n\r\n");          /* not a number */
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n");             /* empty */
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"); /* conflict */
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx");        /* list */
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    expect_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx");          /* space before colon */
    expect_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"); /* obs-fold */
    expect_error("HTTP/1.1 200 OK\r\nX: a\x01z\r\nContent-Length: 0\r\n\r\n"); /* control character */
    expect_error("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n");
    expect_error("HTTP/1.1 101 Switching Protocols\r\n\r\n");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");  /* chunk size */
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n"); /* no CRLF */
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n");  /* bare LF */
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n"); /* huge */
}

static void head_too_large(void)
{
    size_t len = HTTP_RESPONSE_MAX_HEAD + 100;
    char *text = malloc(len + 1);
    CHECK(text != NULL);
    memcpy(text, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(text + 20, 'a', len - 20);
    text[len] = '\0';
    struct http_response r;
    size_t used;
    int result = feed(&r, false, text, len, 4096, &used);
    free(text);
    CHECK_EQ(result, HTTP_RESPONSE_ERROR);
}

static void used_after_complete_is_an_error(void)
{
    struct http_response r;
    size_t used;
    const char *text = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    http_response_start(&r, false);
    CHECK_EQ(http_response_parse(&r, text, strlen(text), &used), HTTP_RESPONSE_COMPLETE);
    CHECK_EQ(http_response_parse(&r, text, strlen(text), &used), HTTP_RESPONSE_ERROR);
}

/* --- histogram cases -------------------------------------------------------------------------- */

static void hdr_uniform_percentiles(void)
{
    struct hdr h;
    CHECK_EQ(hdr_init(&h, INT64_C(3600000000), 3), 0);
    for (int64_t v = 1; v <= 100000; v++)
        hdr_record(&h, v);
    CHECK_EQ(h.total, 100000);
    CHECK_EQ(h.min, 1);
    CHECK_EQ(h.max, 100000);
    CHECK(fabs(hdr_mean(&h) - 50000.5) < 1e-6);
    CHECK(fabs(hdr_stdev(&h) - 28867.513) < 0.01);
    static const double ps[] = {50, 75, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double exact = ps[i] * 1000;
        double got = (double)hdr_value_at_percentile(&h, ps[i]);
        CHECK(got >= exact && got <= exact * 1.001 + 1);
    }
    CHECK_EQ(hdr_value_at_percentile(&h, 100), 100000);
    hdr_destroy(&h);
}

static void hdr_precision_three_digits(void)
{
    struct hdr h;
    CHECK_EQ(hdr_init(&h, INT64_C(3600000000), 3), 0);
    for (int64_t v = 0; v <= INT64_C(3600000000); v = v < 5000 ? v + 1 : v + v / 997) {
        int32_t index = hdr_index_of(&h, v);
        CHECK(index >= 0 && index < h.counts_len);
        int64_t low = hdr_lowest_at_index(&h, index), high = hdr_highest_at_index(&h, index);
        CHECK(low <= v && v <= high);
        CHECK((double)(high - low) <= 0.001 * (double)v || high == low);
    }
    hdr_destroy(&h);
}

static void hdr_zero_and_clamped(void)
{
    struct hdr h;
    CHECK_EQ(hdr_init(&h, 1000000, 3), 0);
    hdr_record(&h, 0);
    hdr_record(&h, 5000000);
    CHECK_EQ(h.total, 2);
    CHECK_EQ(h.clamped, 1);
    CHECK_EQ(h.min, 0);
    CHECK_EQ(h.max, 1000000);
    CHECK_EQ(hdr_value_at_percentile(&h, 50), 0);
    hdr_destroy(&h);
}

static void hdr_merge_adds_counts(void)
{
    struct hdr a, b, all;
    CHECK_EQ(hdr_init(&a, 3600000000, 3), 0);
    CHECK_EQ(hdr_init(&b, 3600000000, 3), 0);
    CHECK_EQ(hdr_init(&all, 3600000000, 3), 0);
    for (int64_t v = 1; v < 50000; v += 7) {
        hdr_record(v % 2 ? &a : &b, v * 3);
        hdr_record(&all, v * 3);
    }
    CHECK_EQ(hdr_add(&a, &b), 0);
    CHECK_EQ(a.total, all.total);
    CHECK_EQ(a.min, all.min);
    CHECK_EQ(a.max, all.max);
    CHECK_EQ(hdr_value_at_percentile(&a, 99), hdr_value_at_percentile(&all, 99));
    CHECK(memcmp(a.counts, all.counts, (size_t)a.counts_len * sizeof *a.counts) == 0);
    struct hdr other;
    CHECK_EQ(hdr_init(&other, 3600000000, 2), 0);
    CHECK(hdr_add(&a, &other) != 0);
    hdr_destroy(&a);
    hdr_destroy(&b);
    hdr_destroy(&all);
    hdr_destroy(&other);
}

static void hdr_sparse_copy_keeps_percentiles(void)
{
    struct hdr h, copy;
    CHECK_EQ(hdr_init(&h, 3600000000, 3), 0);
    CHECK_EQ(hdr_init(&copy, 3600000000, 3), 0);
    for (int64_t v = 100; v < 2000000; v += 313)
        hdr_record(&h, v);
    for (int32_t i = hdr_next_nonzero(&h, 0); i >= 0; i = hdr_next_nonzero(&h, i + 1))
        hdr_add_at_index(&copy, i, h.counts[i]);
    CHECK_EQ(copy.total, h.total);
    CHECK_EQ(hdr_value_at_percentile(&copy, 50), hdr_value_at_percentile(&h, 50));
    CHECK_EQ(hdr_value_at_percentile(&copy, 99), hdr_value_at_percentile(&h, 99));
    CHECK_EQ(hdr_count_above(&h, 1000000), hdr_count_above(&copy, 1000000));
    hdr_destroy(&h);
    hdr_destroy(&copy);
}

/* --- the --mix sequence and the timeline ------------------------------------------------------ */

/* After every request, every path is less than one request away from its exact share. */
static void mix_within_one_request(void)
{
    static const int32_t sets[][MAX_PATHS] = {
        {1000000},
        {900000, 100000},
        {645000, 100000, 255000},
        {864801, 114507, 12116, 7877, 699}, /* smooth weighted round-robin drifts past 1 here */
        {1, 999999},                          /* --mix /x:99.9999 */
        {470000, 10000, 10000, 500000, 5000, 5000},
        {62500, 62500, 62500, 62500, 62500, 62500, 62500, 62500, 62500, 62500, 62500, 62500, 62500, 62500,
         62500, 62500},
        {400003, 1, 3, 7, 13, 29, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 567271},
    };
    for (size_t set = 0; set < sizeof sets / sizeof sets[0]; set++) {
        int count = 0;
        int64_t sum = 0;
        while (count < MAX_PATHS && sets[set][count] > 0)
            sum += sets[set][count++];
        CHECK_EQ(sum, MIX_WHOLE);
        struct mix_state mix;
        mix_init(&mix, count, sets[set]);
        int64_t had[MAX_PATHS] = {0};
        for (int64_t n = 1; n <= 300000; n++) {
            int path = mix_next(&mix);
            CHECK(path >= 0 && path < count);
            had[path]++;
            for (int i = 0; i < count; i++) {
                int64_t off = had[i] * MIX_WHOLE - n * sets[set][i]; /* in millionths of a request */
                if (off <= -MIX_WHOLE || off >= MIX_WHOLE) {
                    printf("FAIL %s: set %zu, path %d has %lld after %lld requests, share %d\n", current, set, i,
                           (long long)had[i], (long long)n, sets[set][i]);
                    failures++;
                    return;
                }
            }
        }
    }
}

/* Two threads' timelines of two paths, merged: counts add, percentiles come from the summed
 * buckets (2 digits), the maximum is exact. */
static void timeline_merges_threads_and_paths(void)
{
    struct config config = {.duration_s = 2.5, .path_count = 2};
    struct run_stats a, b;
    CHECK_EQ(run_stats_init(&a, &config, false), 0);
    CHECK_EQ(run_stats_init(&b, &config, false), 0);
    CHECK_EQ(a.timeline.second_count, 3);
    for (int i = 0; i < 990; i++)
        timeline_record(&a.timeline, 0, 0, 1000)->completed++;
    for (int i = 0; i < 10; i++)
        timeline_record(&b.timeline, 0, 1, 50000 + i)->completed++;
    timeline_record(&b.timeline, 0, 1, -1)->errors++;
    CHECK(timeline_move_to(&b.timeline, 0));
    b.timeline.loose_errors[b.timeline.current_second]++;
    timeline_record(&a.timeline, 2, 1, 7000)->completed++;
    timeline_record(&a.timeline, 3, 0, 7001)->completed++; /* just past the window: the last second */
    timeline_flush(&a.timeline);
    timeline_flush(&b.timeline);
    const struct timeline *timelines[] = {&a.timeline, &b.timeline};
    struct timeline_point points[3], path_points[6];
    CHECK_EQ(timeline_merge(timelines, 2, 3, points, path_points), 0);
    CHECK_EQ(points[0].completed, 1000);
    CHECK_EQ(points[0].errors, 2);
    CHECK(points[0].p50_us >= 1000 && points[0].p50_us <= 1008);
    CHECK(points[0].p99_us >= 1000 && points[0].p99_us <= 1008); /* rank 990 of 1000 */
    CHECK_EQ(points[0].max_us, 50009);
    CHECK_EQ(path_points[0].completed, 990);
    CHECK_EQ(path_points[0].max_us, 1000);
    CHECK_EQ(path_points[1].completed, 10);
    CHECK_EQ(path_points[1].errors, 1);
    CHECK(path_points[1].p50_us >= 50000 && path_points[1].p50_us <= 50009);
    CHECK_EQ(path_points[1].max_us, 50009);
    CHECK_EQ(points[1].completed, 0);
    CHECK_EQ(points[1].p99_us, -1);
    CHECK_EQ(points[2].completed, 2);
    CHECK_EQ(points[2].max_us, 7001);
    CHECK_EQ(path_points[2 * 2 + 1].max_us, 7000);
    run_stats_destroy(&a);
    run_stats_destroy(&b);
}

/* A run longer than the cap: the timeline keeps the first MAX_TIMELINE_SECONDS and drops the rest. */
static void timeline_is_capped(void)
{
    struct config config = {.duration_s = MAX_TIMELINE_SECONDS + 100.5, .path_count = 1};
    struct run_stats a;
    CHECK_EQ(run_stats_init(&a, &config, false), 0);
    CHECK_EQ(a.timeline.second_count, MAX_TIMELINE_SECONDS);
    CHECK(a.timeline.truncated);
    timeline_record(&a.timeline, MAX_TIMELINE_SECONDS - 1, 0, 10)->completed++;
    CHECK(timeline_record(&a.timeline, MAX_TIMELINE_SECONDS, 0, 10) == &a.timeline.sink);
    CHECK(!timeline_move_to(&a.timeline, MAX_TIMELINE_SECONDS + 50));
    timeline_flush(&a.timeline);
    CHECK_EQ(a.timeline.seconds[MAX_TIMELINE_SECONDS - 1].completed, 1);
    CHECK_EQ(a.timeline.seconds[MAX_TIMELINE_SECONDS - 1].max_us, 10);
    run_stats_destroy(&a);
}

int main(void)
{
    setup_guard();
    run("response: content-length", content_length);
    run("response: two pipelined", pipelined_two);
    run("response: chunked with extensions and trailers", chunked_with_extensions_and_trailers);
    run("response: interim 100 then final", interim_100_then_final);
    run("response: HEAD has no body", head_response_has_no_body);
    run("response: 204 and 304 have no body", status_204_and_304_have_no_body);
    run("response: close-delimited body", close_delimited_body);
    run("response: EOF in the middle is an error", eof_in_the_middle_is_an_error);
    run("response: keep-alive rules", keep_alive_rules);
    run("response: header names ignore case", header_names_ignore_case);
    run("response: equal duplicate Content-Length", equal_duplicate_content_length);
    run("response: malformed responses are errors", malformed_responses);
    run("response: head too large", head_too_large);
    run("response: parser used after complete", used_after_complete_is_an_error);
    run("hdr: uniform percentiles", hdr_uniform_percentiles);
    run("hdr: three significant digits", hdr_precision_three_digits);
    run("hdr: zero and clamped values", hdr_zero_and_clamped);
    run("hdr: merge adds counts", hdr_merge_adds_counts);
    run("hdr: sparse copy keeps percentiles", hdr_sparse_copy_keeps_percentiles);
    run("mix: every path within one request of its share", mix_within_one_request);
    run("timeline: threads and paths merge", timeline_merges_threads_and_paths);
    run("timeline: capped at MAX_TIMELINE_SECONDS", timeline_is_capped);
    printf("%s\n", failures ? "unit tests FAILED" : "unit tests passed");
    return failures ? 1 : 0;
}
