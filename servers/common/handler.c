/* handler.c - routing and response heads. Pure protocol: no sockets here, so every paradigm runs
 * exactly this code for every request. */
#include "handler.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "options.h"
#include "signals.h"

#define MAX_BYTES_N  (64ull << 20)
#define MAX_CPU_US   1000000ull
#define MAX_SLEEP_MS 10000ull

/* /bytes bodies are sent straight from this array: byte i of a body is the alphabet[i % 26], so a
 * slice starting at i % 26 is the body from byte i on. One chunk per write keeps writes large. */
#define PATTERN_CHUNK (256 * 1024)
static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz";
static char pattern[PATTERN_CHUNK + 26];
static void fill_pattern(void) __attribute__((constructor));
static void fill_pattern(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = alphabet[i % 26];
}

const char *handler_pattern_at(uint64_t offset, uint64_t remaining, size_t *len)
{
    *len = remaining < PATTERN_CHUNK ? (size_t)remaining : PATTERN_CHUNK;
    return pattern + offset % 26;
}

static const char hello_body[] = "Hello, World!";
static const char ok_body[] = "OK\n";

static const char *error_body(int status)
{
    switch (status) {
    case 400: return "400 Bad Request\n";
    case 404: return "404 Not Found\n";
    case 405: return "405 Method Not Allowed\n";
    case 408: return "408 Request Timeout\n";
    case 413: return "413 Content Too Large\n";
    case 431: return "431 Request Header Fields Too Large\n";
    case 501: return "501 Not Implemented\n";
    case 503: return "503 Service Unavailable\n";
    case 505: return "505 HTTP Version Not Supported\n";
    default: return "500 Internal Server Error\n";
    }
}

static void set_error(int status, struct response *response)
{
    response->status = status;
    response->content_type = "text/plain";
    response->body = error_body(status);
    response->body_len = strlen(response->body);
}

void handler_refuse(int status, struct response *response)
{
    *response = (struct response){0};
    set_error(status, response);
    response->close = true;
}

/* The digits after a route prefix: all digits, at least one, at most max. */
static bool parse_route_number(const char *digits, size_t len, unsigned long long max,
                               unsigned long long *value)
{
    unsigned long long result = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        result = result * 10 + (unsigned long long)(digits[i] - '0');
        if (result > max)
            return false;
    }
    *value = result;
    return true;
}

static double thread_cpu_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Burns CPU time of this thread (not wall time: a descheduled thread keeps burning once it runs
 * again, so /cpu costs the same CPU on every paradigm). Returns false if the server is stopping. */
static bool burn_cpu(unsigned long long microseconds)
{
    double end = thread_cpu_seconds() + (double)microseconds / 1e6;
    volatile unsigned long sink = 1;
    while (thread_cpu_seconds() < end) {
        if (server_stopping)
            return false;
        for (int i = 0; i < 1000; i++)
            sink = sink * 6364136223846793005ul + 1442695040888963407ul;
    }
    return true;
}

/* Sleeps in slices, so a stopping server does not wait out a long sleep. */
static bool sleep_ms(unsigned long long milliseconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(milliseconds / 1000);
    deadline.tv_nsec += (long)(milliseconds % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (;;) {
        if (server_stopping)
            return false;
        struct timespec now, slice = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left_ns = (long long)(deadline.tv_sec - now.tv_sec) * 1000000000LL +
                            (deadline.tv_nsec - now.tv_nsec);
        if (left_ns <= 0)
            return true;
        if (left_ns < slice.tv_nsec)
            slice.tv_nsec = (long)left_ns;
        nanosleep(&slice, NULL); /* EINTR just means: look at the flag and the clock again */
    }
}

static bool has_prefix(const char *path, size_t len, const char *prefix, size_t prefix_len)
{
    return len >= prefix_len && memcmp(path, prefix, prefix_len) == 0;
}

/* The route table; `path` is the target without its query string. */
static void route(const struct http_request *request, const char *path, size_t len, const char *body,
                  struct response *response)
{
    enum http_method method = request->method;
    bool is_get = method == HTTP_GET || method == HTTP_HEAD;
    unsigned long long n;

    if (method == HTTP_OTHER) {
        set_error(405, response);
        response->allow = "GET, HEAD, POST";
    } else if (len == 1 && path[0] == '/') {
        if (!is_get) {
            set_error(405, response);
            response->allow = "GET, HEAD";
            return;
        }
        response->status = 200;
        response->content_type = "text/plain";
        response->body = hello_body;
        response->body_len = sizeof hello_body - 1;
    } else if (len == 5 && memcmp(path, "/echo", 5) == 0) {
        if (method != HTTP_POST) {
            set_error(405, response);
            response->allow = "POST";
            return;
        }
        response->status = 200;
        response->content_type = "application/octet-stream";
        response->body = body;
        response->body_len = request->content_length;
    } else if (has_prefix(path, len, "/bytes/", 7) || has_prefix(path, len, "/cpu/", 5) ||
               has_prefix(path, len, "/sleep/", 7)) {
        if (!is_get) {
            set_error(405, response);
            response->allow = "GET, HEAD";
            return;
        }
        const char *digits = (const char *)memchr(path + 1, '/', len - 1) + 1;
        size_t digits_len = len - (size_t)(digits - path);
        if (path[1] == 'b') {
            if (!parse_route_number(digits, digits_len, MAX_BYTES_N, &n)) {
                set_error(400, response);
                return;
            }
            response->status = 200;
            response->content_type = "application/octet-stream";
            response->pattern_len = n;
            return;
        }
        bool is_cpu = path[1] == 'c';
        if (!parse_route_number(digits, digits_len, is_cpu ? MAX_CPU_US : MAX_SLEEP_MS, &n)) {
            set_error(400, response);
            return;
        }
        bool finished = is_cpu ? burn_cpu(n) : sleep_ms(n);
        if (!finished) {
            set_error(503, response);
            response->close = true;
            return;
        }
        response->status = 200;
        response->content_type = "text/plain";
        response->body = ok_body;
        response->body_len = sizeof ok_body - 1;
    } else {
        set_error(404, response);
    }
}

bool handler_blocks(const struct http_request *request)
{
    const char *path = request->target;
    size_t len = request->target_len;
    return has_prefix(path, len, "/cpu/", 5) || has_prefix(path, len, "/sleep/", 7);
}

#ifdef C10K_INJECT_NS
/* perfcheck's self-test only (make EXTRA_CFLAGS=-DC10K_INJECT_NS=N): a busy wait of N ns per
 * request, a slowdown of known size that perfcheck must find. Never in a normal build. */
static void inject_slowdown(void)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do
        clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < (long)(C10K_INJECT_NS));
}
#endif

void handler_respond(const struct http_request *request, const char *body, struct response *response)
{
#ifdef C10K_INJECT_NS
    inject_slowdown();
#endif
    *response = (struct response){0};
    const char *query = memchr(request->target, '?', request->target_len);
    size_t path_len = query ? (size_t)(query - request->target) : request->target_len;
    route(request, request->target, path_len, body, response);
    response->head_only = request->method == HTTP_HEAD;
    if (!request->keep_alive)
        response->close = true;
    response->keep_alive_10 = !response->close && request->minor_version == 0;
}

/* Appends a string without its NUL; the head never exceeds RESPONSE_HEAD_MAX, as every piece is
 * bounded (the longest reason phrase, content type and Allow value are fixed strings). */
static char *append(char *dst, const char *text, size_t len)
{
    memcpy(dst, text, len);
    return dst + len;
}
#define APPEND_LITERAL(dst, literal) append((dst), (literal), sizeof(literal) - 1)

static char *append_string(char *dst, const char *text)
{
    return append(dst, text, strlen(text));
}

static char *append_decimal(char *dst, uint64_t value)
{
    char digits[20];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (count > 0)
        *dst++ = digits[--count];
    return dst;
}

size_t handler_format_head(const struct response *response, char *dst)
{
    char *p = dst;
    p = APPEND_LITERAL(p, "HTTP/1.1 ");
    p = append_decimal(p, (uint64_t)response->status);
    *p++ = ' ';
    p = append_string(p, http_reason(response->status));
    p = APPEND_LITERAL(p, "\r\nServer: c10k-");
    p = append_string(p, server_options.name);
    p = APPEND_LITERAL(p, "\r\nDate: ");
    p = append(p, clock_http_date(), HTTP_DATE_LEN);
    p = APPEND_LITERAL(p, "\r\nContent-Type: ");
    p = append_string(p, response->content_type);
    p = APPEND_LITERAL(p, "\r\nContent-Length: ");
    p = append_decimal(p, response->pattern_len ? response->pattern_len : response->body_len);
    if (response->close)
        p = APPEND_LITERAL(p, "\r\nConnection: close");
    else if (response->keep_alive_10)
        p = APPEND_LITERAL(p, "\r\nConnection: keep-alive");
    if (response->allow) {
        p = APPEND_LITERAL(p, "\r\nAllow: ");
        p = append_string(p, response->allow);
    }
    p = APPEND_LITERAL(p, "\r\n\r\n");
    return (size_t)(p - dst);
}
