/* fuzz_http.c - libFuzzer target for the request parser (servers/common/http.c).
 *
 * Each input is parsed whole, then again in two reads split at a point taken from its first byte
 * (split_point(); *scanned carried over), and the two answers must agree: how the bytes arrive
 * must not change the answer. Every answer must keep the contract of http.h (a head length
 * within the input and the 8192-byte limit, pointers inside the head, a status we send); when the
 * head parses, the bytes after it are parsed as the next pipelined request. Each buffer handed to
 * the parser is a heap copy of exactly its length, so AddressSanitizer reports any read outside
 * it. */
#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(condition, ...)                                                                    \
    do {                                                                                         \
        if (!(condition)) {                                                                      \
            fprintf(stderr, "fuzz_http: %s:%d: ", __FILE__, __LINE__);                           \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fputc('\n', stderr);                                                                 \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* An answer with the pointers as offsets, so answers from different copies compare equal. */
struct answer {
    int ret;
    enum http_method method;
    size_t method_off, method_len, target_off, target_len;
    int minor_version;
    size_t content_length;
    bool keep_alive;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct answer parse(const uint8_t *data, size_t len, size_t *scanned)
{
    char *buf = malloc(len > 0 ? len : 1);
    CHECK(buf != NULL, "out of memory");
    if (len > 0)
        memcpy(buf, data, len);
    struct http_request req;
    memset(&req, 0xa5, sizeof req);
    size_t scanned_before = *scanned;
    struct answer a = {.ret = http_parse_request(buf, len, scanned, &req)};

    if (a.ret == HTTP_NEED_MORE) {
        CHECK(*scanned >= scanned_before && *scanned <= len, "scanned %zu -> %zu, len %zu",
              scanned_before, *scanned, len);
        CHECK(len < HTTP_MAX_HEAD_BYTES, "need more with %zu bytes, over the head limit", len);
    } else if (a.ret < 0) {
        CHECK(a.ret == -400 || a.ret == -413 || a.ret == -431 || a.ret == -501 || a.ret == -505,
              "unexpected status %d", a.ret);
    } else {
        size_t head = (size_t)a.ret;
        unsigned char keep_alive_byte;
        memcpy(&keep_alive_byte, &req.keep_alive, 1);
        CHECK(head <= len && head <= HTTP_MAX_HEAD_BYTES, "head %zu of %zu bytes", head, len);
        CHECK(head >= 4 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0, "head %zu does not end "
              "with an empty line", head);
        CHECK(req.method_name == buf && req.method_len > 0 && req.method_len < head,
              "method at %p+%zu, buffer %p+%zu", (const void *)req.method_name, req.method_len,
              (const void *)buf, head);
        CHECK(req.target > buf && req.target < buf + head && req.target_len < head &&
              req.target + req.target_len <= buf + head && req.target[0] == '/',
              "target at %p+%zu, buffer %p+%zu", (const void *)req.target, req.target_len,
              (const void *)buf, head);
        CHECK(req.minor_version == 0 || req.minor_version == 1, "HTTP/1.%d", req.minor_version);
        CHECK(req.content_length <= HTTP_MAX_BODY_BYTES, "content length %zu", req.content_length);
        CHECK(keep_alive_byte <= 1, "keep_alive byte 0x%02x", keep_alive_byte);
        bool served = (req.method_len == 3 && memcmp(buf, "GET", 3) == 0) ||
                      (req.method_len == 4 && memcmp(buf, "HEAD", 4) == 0) ||
                      (req.method_len == 4 && memcmp(buf, "POST", 4) == 0);
        CHECK(served ? req.method != HTTP_OTHER : req.method == HTTP_OTHER,
              "method %d for %.*s", (int)req.method, (int)req.method_len, req.method_name);
        a.method = req.method;
        a.method_off = (size_t)(req.method_name - buf);
        a.method_len = req.method_len;
        a.target_off = (size_t)(req.target - buf);
        a.target_len = req.target_len;
        a.minor_version = req.minor_version;
        a.content_length = req.content_length;
        a.keep_alive = req.keep_alive;
    }
    free(buf);
    return a;
}

static bool same_answer(const struct answer *a, const struct answer *b)
{
    if (a->ret != b->ret)
        return false;
    if (a->ret <= 0)
        return true;
    return a->method == b->method && a->method_off == b->method_off &&
           a->method_len == b->method_len && a->target_off == b->target_off &&
           a->target_len == b->target_len && a->minor_version == b->minor_version &&
           a->content_length == b->content_length && a->keep_alive == b->keep_alive;
}

/* Whole, then split in two reads at k; returns the whole answer. */
static struct answer check_request(const uint8_t *data, size_t size, size_t k)
{
    size_t scanned = 0;
    struct answer whole = parse(data, size, &scanned);

    scanned = 0;
    struct answer split = parse(data, k, &scanned);
    if (split.ret == HTTP_NEED_MORE)
        split = parse(data, size, &scanned);
    CHECK(same_answer(&whole, &split), "whole gives %d, split at %zu of %zu gives %d", whole.ret,
          k, size, split.ret);
    return whole;
}

/* The split point for an input starting with byte b: b * size / 255 for most bytes, but the 16
 * smallest (never the start of a valid request) split at 8184..8199, around the head limit. */
static size_t split_point(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t k = data[0] < 16 ? HTTP_MAX_HEAD_BYTES - 8 + data[0] : (size_t)data[0] * size / 255;
    return k < size ? k : size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct answer first = check_request(data, size, split_point(data, size));
    if (first.ret > 0 && (size_t)first.ret < size) {
        size_t head = (size_t)first.ret;
        check_request(data + head, size - head, split_point(data + head, size - head));
    }
    return 0;
}
