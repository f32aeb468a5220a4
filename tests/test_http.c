/* test_http.c - named edge cases for the request parser (servers/common/http.c).
 *
 * Every parse goes through parse_guarded(), which copies the input so that it ends where a
 * PROT_NONE page begins: a read past `len` is a SIGSEGV instead of a silent pass (picohttpparser's
 * tests do the same). It also parses a second copy that starts right after a PROT_NONE page, for
 * reads before `buf`, and requires the same answer from both. Each test runs in its own child
 * process under a timeout, so a crash or a hang fails that test only, and the runner names the
 * input being parsed. Run `test_http NAME` for one test; the environment variable
 * C10K_TEST_TIMEOUT_MULTIPLIER scales the timeout (for sanitizer or valgrind runs). */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_TIMEOUT_SECONDS 30
#define ARENA_BYTES (64 * 1024) /* room for the largest input any test parses */

/* --- failures and the guarded buffer ------------------------------------------------------ */

/* The first failure of the running test; the child prints it after the test returns. */
static char failure[1024];
/* What the child is parsing right now, in memory shared with the runner, so a test killed by the
 * guard page is reported with its input. */
static char *crash_note;
static const size_t crash_note_size = 4096;
/* A PROT_NONE page, ARENA_BYTES starting at arena_start, ARENA_BYTES ending at arena_end, and
 * another PROT_NONE page. */
static char *arena_start, *arena_end;

static void fail_at(const char *file, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(const char *file, int line, const char *format, ...)
{
    if (failure[0] != '\0')
        return; /* keep the first: later ones are often its consequences */
    int used = snprintf(failure, sizeof failure, "%s:%d: ", file, line);
    va_list args;
    va_start(args, format);
    vsnprintf(failure + used, sizeof failure - (size_t)used, format, args);
    va_end(args);
}

#define ASSERT_EQ(actual, expected)                                                              \
    do {                                                                                         \
        long long actual_ = (long long)(actual), expected_ = (long long)(expected);              \
        if (actual_ != expected_) {                                                              \
            fail_at(__FILE__, __LINE__, "expected %s == %lld, got %lld", #actual, expected_,     \
                    actual_);                                                                    \
            return;                                                                              \
        }                                                                                        \
    } while (0)

/* The bytes at data[0..len) equal the string `expected`. */
#define ASSERT_BYTES(data, len, expected)                                                        \
    do {                                                                                         \
        size_t len_ = (len);                                                                     \
        if (len_ != strlen(expected) || memcmp((data), (expected), len_) != 0) {                 \
            char got_[256];                                                                      \
            escape((data), len_, got_, sizeof got_);                                             \
            fail_at(__FILE__, __LINE__, "expected %s == \"%s\", got \"%s\"", #data, (expected),  \
                    got_);                                                                       \
            return;                                                                              \
        }                                                                                        \
    } while (0)

/* A C-escaped, shortened copy of data[0..len) for messages. */
static void escape(const char *data, size_t len, char *out, size_t size)
{
    size_t used = 0, i;
    for (i = 0; i < len && used + 8 < size; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\r')
            used += (size_t)snprintf(out + used, size - used, "\\r");
        else if (c == '\n')
            used += (size_t)snprintf(out + used, size - used, "\\n");
        else if (c == '\\' || c == '"')
            used += (size_t)snprintf(out + used, size - used, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            used += (size_t)snprintf(out + used, size - used, "\\x%02x", c);
        else
            out[used++] = (char)c;
    }
    out[used] = '\0';
    if (i < len)
        snprintf(out + used, size - used, "...");
}

static void *map_or_die(size_t size, int flags)
{
    void *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        fprintf(stderr, "test_http: mmap(%zu): %s\n", size, strerror(errno));
        exit(2);
    }
    return memory;
}

static void setup_memory(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *arena = map_or_die(page + 2 * ARENA_BYTES + page, MAP_PRIVATE);
    arena_start = arena + page;
    arena_end = arena_start + 2 * ARENA_BYTES;
    if (mprotect(arena, page, PROT_NONE) != 0 || mprotect(arena_end, page, PROT_NONE) != 0) {
        fprintf(stderr, "test_http: mprotect(guard page): %s\n", strerror(errno));
        exit(2);
    }
    crash_note = map_or_die(crash_note_size, MAP_SHARED);
}

/* --- the parse helper ----------------------------------------------------------------------- */

/* One call's answer, with the pointers turned into offsets so that answers from different
 * copies of the input compare equal. The fields after ret are meaningful when ret > 0. */
struct parsed {
    int ret;
    enum http_method method;
    size_t method_off, method_len;
    size_t target_off, target_len;
    int minor_version;
    size_t content_length;
    bool keep_alive;
};

static bool same_answer(const struct parsed *a, const struct parsed *b);
static const char *describe(const struct parsed *p, char *out, size_t size);

static bool is_refusal(int ret)
{
    return ret == -400 || ret == -413 || ret == -431 || ret == -501 || ret == -505;
}

/* Copies input[0..len) to buf, parses it with *scanned carried, and checks what every answer
 * must satisfy whatever the input: a known status, pointers inside the head, the limits. The
 * request struct is poisoned first so that a field left unset shows. */
static struct parsed parse_copy(char *buf, const char *input, size_t len, size_t *scanned,
                                const char *where)
{
    char shown[200];
    escape(input, len, shown, sizeof shown);
    snprintf(crash_note, crash_note_size, "while parsing %zu bytes %s with scanned %zu: \"%s\"",
             len, where, *scanned, shown);

    if (len > 0)
        memcpy(buf, input, len);
    struct http_request req;
    memset(&req, 0xa5, sizeof req);
    size_t scanned_before = *scanned;
    struct parsed p = {.ret = http_parse_request(buf, len, scanned, &req)};

    if (p.ret == HTTP_NEED_MORE) {
        if (*scanned > len || *scanned < scanned_before)
            fail_at(__FILE__, __LINE__, "expected scanned in [%zu, %zu], got %zu for \"%s\"",
                    scanned_before, len, *scanned, shown);
        return p;
    }
    if (p.ret < 0) {
        if (!is_refusal(p.ret))
            fail_at(__FILE__, __LINE__,
                    "expected -400, -413, -431, -501 or -505, got %d for \"%s\"", p.ret, shown);
        return p;
    }

    unsigned char keep_alive_byte;
    memcpy(&keep_alive_byte, &req.keep_alive, 1);
    size_t head = (size_t)p.ret;
    if (head > len || head > HTTP_MAX_HEAD_BYTES)
        fail_at(__FILE__, __LINE__, "expected a head length <= %zu and <= 8192, got %d for \"%s\"",
                len, p.ret, shown);
    else if (req.method_name != buf || req.method_len == 0 || req.method_len >= head)
        fail_at(__FILE__, __LINE__, "expected method_name at the start of the head, got offset "
                "%td length %zu for \"%s\"", req.method_name - buf, req.method_len, shown);
    else if (req.target < buf || req.target >= buf + head || req.target_len > head ||
             req.target + req.target_len > buf + head || req.target[0] != '/')
        fail_at(__FILE__, __LINE__, "expected a target inside the head starting with '/', got "
                "offset %td length %zu for \"%s\"", req.target - buf, req.target_len, shown);
    else if (req.minor_version != 0 && req.minor_version != 1)
        fail_at(__FILE__, __LINE__, "expected minor_version 0 or 1, got %d for \"%s\"",
                req.minor_version, shown);
    else if (req.content_length > HTTP_MAX_BODY_BYTES)
        fail_at(__FILE__, __LINE__, "expected content_length <= 1048576, got %zu for \"%s\"",
                req.content_length, shown);
    else if (keep_alive_byte > 1)
        fail_at(__FILE__, __LINE__, "expected keep_alive set, got byte 0x%02x for \"%s\"",
                keep_alive_byte, shown);
    else if ((unsigned)req.method > HTTP_OTHER)
        fail_at(__FILE__, __LINE__, "expected a method, got %d for \"%s\"", (int)req.method, shown);
    if (failure[0] != '\0')
        return p;

    p.method = req.method;
    p.method_off = (size_t)(req.method_name - buf);
    p.method_len = req.method_len;
    p.target_off = (size_t)(req.target - buf);
    p.target_len = req.target_len;
    p.minor_version = req.minor_version;
    p.content_length = req.content_length;
    p.keep_alive = req.keep_alive;
    return p;
}

/* The parse helper of every test: one copy ends at a guard page, one starts after another. */
static struct parsed parse_guarded(const char *input, size_t len, size_t *scanned)
{
    size_t scanned_front = *scanned;
    struct parsed front = parse_copy(arena_start, input, len, &scanned_front, "after a guard page");
    struct parsed back = parse_copy(arena_end - len, input, len, scanned, "before a guard page");
    if (!same_answer(&front, &back) || scanned_front != *scanned) {
        char a[256], b[256];
        fail_at(__FILE__, __LINE__, "expected the same answer wherever the input lies, got %s "
                "(scanned %zu) and %s (scanned %zu)", describe(&front, a, sizeof a), scanned_front,
                describe(&back, b, sizeof b), *scanned);
    }
    return back;
}

static struct parsed parse_whole(const char *input, size_t len)
{
    size_t scanned = 0;
    return parse_guarded(input, len, &scanned);
}

/* Two reads: input[0..k) first, then the whole with *scanned carried. The first answer that is
 * not HTTP_NEED_MORE is the final one, as for a server. */
static struct parsed parse_split(const char *input, size_t len, size_t k)
{
    size_t scanned = 0;
    struct parsed p = parse_guarded(input, k, &scanned);
    if (p.ret != HTTP_NEED_MORE)
        return p;
    return parse_guarded(input, len, &scanned);
}

/* One byte per read: len 1, 2, 3, ... with *scanned carried. *stopped_at is the length of the
 * call that gave the final answer. */
static struct parsed parse_bytewise(const char *input, size_t len, size_t *stopped_at)
{
    size_t scanned = 0;
    struct parsed p = {.ret = HTTP_NEED_MORE};
    for (*stopped_at = 1; *stopped_at <= len; (*stopped_at)++) {
        p = parse_guarded(input, *stopped_at, &scanned);
        if (p.ret != HTTP_NEED_MORE)
            break;
    }
    return p;
}

static bool same_answer(const struct parsed *a, const struct parsed *b)
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

static const char *describe(const struct parsed *p, char *out, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "other"};
    if (p->ret <= 0)
        snprintf(out, size, "%d", p->ret);
    else
        snprintf(out, size,
                 "%d (method %s at %zu+%zu, target at %zu+%zu, HTTP/1.%d, length %zu, %s)", p->ret,
                 methods[p->method], p->method_off, p->method_len, p->target_off, p->target_len,
                 p->minor_version, p->content_length, p->keep_alive ? "keep-alive" : "close");
    return out;
}

/* --- the table: one named case per rule of docs/protocol.md ------------------------------- */

/* The expected answer "success, and the head is the input up to its first empty line". */
#define HEAD INT_MAX

enum expect_bool { ANY = 0, YES, NO };

struct parse_case {
    const char *name;
    const char *input;
    size_t len;
    int line;
    int expected;                  /* the return value, or HEAD */
    /* Checked on success when set. */
    enum expect_bool keep_alive;
    bool has_method;
    enum http_method method;
    bool has_length;
    size_t length;
    int minor_version;             /* 0 = not checked, else 10 or 11 */
};

/* CASE(name, input, expected, extra checks...): input is a string literal and may hold NULs. */
#define CASE(name_, input_, ...)                                                                 \
    {.name = name_, .input = input_, .len = sizeof(input_) - 1, .line = __LINE__,                \
     .expected = __VA_ARGS__}
#define KEEP_ALIVE .keep_alive = YES
#define CLOSE .keep_alive = NO
#define METHOD(m) .has_method = true, .method = (m)
#define LENGTH(n) .has_length = true, .length = (n)
#define VERSION(v) .minor_version = (v)

#define H11 "GET / HTTP/1.1\r\nHost: x\r\n"   /* a valid HTTP/1.1 request line and Host */
#define POST11 "POST /echo HTTP/1.1\r\nHost: x\r\n"
#define H10 "GET / HTTP/1.0\r\n"

static const struct parse_case parse_cases[] = {
    /* Served methods and valid heads. */
    CASE("get", H11 "\r\n", HEAD, METHOD(HTTP_GET), VERSION(11), LENGTH(0), KEEP_ALIVE),
    CASE("head", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", HEAD, METHOD(HTTP_HEAD)),
    CASE("post", POST11 "Content-Length: 5\r\n\r\nhello", HEAD, METHOD(HTTP_POST), LENGTH(5)),
    CASE("post_without_length", POST11 "\r\n", HEAD, METHOD(HTTP_POST), LENGTH(0)),
    CASE("get_http10", H10 "\r\n", HEAD, METHOD(HTTP_GET), VERSION(10)),
    CASE("get_http10_with_host", H10 "Host: x\r\n\r\n", HEAD, VERSION(10)),
    CASE("target_with_query", "GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: x\r\n\r\n", HEAD),
    CASE("target_every_visible_char",
         "GET /!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ HTTP/1.1\r\nHost: x\r\n\r\n", HEAD),
    CASE("many_headers", H11 "Accept: */*\r\nUser-Agent: curl/8\r\nX-A: 1\r\nX-B: 2\r\n\r\n", HEAD),

    /* Any other valid token as a method: success with HTTP_OTHER, the server answers 405. */
    CASE("method_delete_is_other", "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", HEAD,
         METHOD(HTTP_OTHER)),
    CASE("method_options_is_other", "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n", HEAD,
         METHOD(HTTP_OTHER)),
    CASE("method_token_chars_is_other", "M-SEARCH!#$%&'*+.^_`|~09 / HTTP/1.1\r\nHost: x\r\n\r\n",
         HEAD, METHOD(HTTP_OTHER)),
    CASE("method_lowercase_get_is_other", "get / HTTP/1.1\r\nHost: x\r\n\r\n", HEAD,
         METHOD(HTTP_OTHER)),
    CASE("method_getx_is_other", "GETX / HTTP/1.1\r\nHost: x\r\n\r\n", HEAD, METHOD(HTTP_OTHER)),
    CASE("method_ge_is_other", "GE / HTTP/1.1\r\nHost: x\r\n\r\n", HEAD, METHOD(HTTP_OTHER)),

    /* Header names are case-insensitive tokens; values are trimmed of OWS. */
    CASE("header_name_every_tchar", H11 "!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", HEAD),
    CASE("header_without_ows", "GET / HTTP/1.1\r\nHost:x\r\n\r\n", HEAD),
    CASE("header_value_empty", H11 "X-Empty:\r\n\r\n", HEAD),
    CASE("header_value_only_ows", H11 "X-Empty: \t \r\n\r\n", HEAD),
    CASE("header_value_inner_htab_and_space", H11 "X: a\tb c\r\n\r\n", HEAD),
    CASE("header_value_obs_text", H11 "X: caf\xc3\xa9 \x80\xff\r\n\r\n", HEAD),
    CASE("host_name_any_case", "GET / HTTP/1.1\r\nhOsT: x\r\n\r\n", HEAD),
    CASE("ows_trimmed_content_length", H11 "Content-Length: \t 5 \t \r\n\r\n", HEAD, LENGTH(5)),
    CASE("ows_trimmed_connection", H11 "Connection: \t close\t \r\n\r\n", HEAD, CLOSE),

    /* 431 is tested with generated heads below; these are the request line's 400s. */
    CASE("empty_request_line", "\r\n" H11 "\r\n", -400),
    CASE("empty_head", "\r\n\r\n", -400),
    CASE("request_line_leading_space", " GET / HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("request_line_two_spaces_after_method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("request_line_two_spaces_before_version", "GET /  HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("request_line_trailing_space", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", -400),
    CASE("request_line_htab_separator", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("request_line_four_fields", "GET / x HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("request_line_method_only", "GET\r\nHost: x\r\n\r\n", -400),
    CASE("request_line_missing_version", "GET /\r\nHost: x\r\n\r\n", -400),
    CASE("request_line_missing_target", "GET HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("method_not_token", "GE(T / HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("method_nul", "GE\0T / HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("method_obs_text", "G\xc9T / HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_not_starting_with_slash", "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_absolute_form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_authority_form", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_asterisk_form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_control_char", "GET /a\x01" "b HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_nul", "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_del", "GET /a\x7f" "b HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_htab", "GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("target_obs_text", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("version_lowercase", "GET / http/1.1\r\nHost: x\r\n\r\n", -400),
    CASE("version_trailing_char", "GET / HTTP/1.1x\r\nHost: x\r\n\r\n", -400),
    CASE("version_two_digit_minor", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", -400),
    CASE("version_missing_minor", "GET / HTTP/1.\r\nHost: x\r\n\r\n", -400),
    CASE("version_missing_dot", "GET / HTTP/11\r\nHost: x\r\n\r\n", -400),
    CASE("version_letters", "GET / HTTP/a.b\r\nHost: x\r\n\r\n", -400),
    CASE("version_missing_slash", "GET / HTTP1.1\r\nHost: x\r\n\r\n", -400),

    /* HTTP/D.D other than 1.0 and 1.1. */
    CASE("version_2_0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", -505),
    CASE("version_0_9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", -505),
    CASE("version_1_2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", -505),
    CASE("version_1_9", "GET / HTTP/1.9\r\nHost: x\r\n\r\n", -505),
    CASE("version_2_0_without_host", "GET / HTTP/2.0\r\n\r\n", -505),

    /* Malformed header lines. */
    CASE("header_missing_colon", H11 "X-Foo\r\n\r\n", -400),
    CASE("header_missing_colon_with_value", H11 "X-Foo bar\r\n\r\n", -400),
    CASE("header_space_before_colon", H11 "X-Foo : bar\r\n\r\n", -400),
    CASE("header_htab_before_colon", H11 "X-Foo\t: bar\r\n\r\n", -400),
    CASE("header_space_before_colon_host", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", -400),
    CASE("header_empty_name", H11 ": bar\r\n\r\n", -400),
    CASE("header_name_not_token", H11 "X(Foo): bar\r\n\r\n", -400),
    CASE("header_name_obs_text", H11 "X-F\xc9o: bar\r\n\r\n", -400),
    CASE("header_name_nul", H11 "X-F\0o: bar\r\n\r\n", -400),
    CASE("value_nul", H11 "X: a\0b\r\n\r\n", -400),
    CASE("value_nul_alone", H11 "X: \0\r\n\r\n", -400),
    CASE("value_0x01", H11 "X: a\x01" "b\r\n\r\n", -400),
    CASE("value_0x1f", H11 "X: a\x1f" "b\r\n\r\n", -400),
    CASE("value_0x7f", H11 "X: a\x7f" "b\r\n\r\n", -400),
    CASE("value_0x7f_at_end", H11 "X: a\x7f\r\n\r\n", -400),
    CASE("value_vertical_tab", H11 "X: a\vb\r\n\r\n", -400),
    CASE("obs_fold_space", H11 "X: a\r\n b\r\n\r\n", -400),
    CASE("obs_fold_htab", H11 "X: a\r\n\tb\r\n\r\n", -400),
    CASE("obs_fold_first_header", "GET / HTTP/1.1\r\n Host: x\r\nHost: x\r\n\r\n", -400),

    /* Bare LF and bare CR. */
    CASE("bare_lf_first_byte", "\n", -400),
    CASE("bare_lf_request_line", "GET / HTTP/1.1\nHost: x\r\n\r\n", -400),
    CASE("bare_lf_header", H11 "X: a\n\r\n", -400),
    CASE("bare_lf_empty_line", H11 "\n", -400),
    CASE("bare_lf_everywhere", "GET / HTTP/1.1\nHost: x\n\n", -400),
    CASE("bare_lf_after_crlf_request_line", "GET / HTTP/1.0\r\n\n", -400),
    CASE("bare_cr_in_value", H11 "X: a\rb\r\n\r\n", -400),
    CASE("bare_cr_before_crlf", H11 "X: a\r\r\n\r\n", -400),
    CASE("bare_cr_line", H11 "\r\r\n\r\n", -400),
    CASE("bare_cr_in_name", H11 "X\r: a\r\n\r\n", -400),
    CASE("bare_cr_ending_request_line", "GET / HTTP/1.1\rHost: x\r\n\r\n", -400),
    CASE("bare_cr_in_target", "GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n", -400),

    /* Host: exactly one on HTTP/1.1; RFC 9112 3.2 refuses two on any version. */
    CASE("host_missing_http11", "GET / HTTP/1.1\r\n\r\n", -400),
    CASE("host_missing_http11_other_headers", "GET / HTTP/1.1\r\nX: y\r\n\r\n", -400),
    CASE("host_lookalike_only_http11", "GET / HTTP/1.1\r\nHostname: x\r\n\r\n", -400),
    CASE("host_twice_http11", H11 "Host: y\r\n\r\n", -400),
    CASE("host_twice_same_value_http11", H11 "Host: x\r\n\r\n", -400),
    CASE("host_twice_any_case_http11", H11 "HOST: x\r\n\r\n", -400),
    CASE("host_absent_http10", H10 "\r\n", HEAD),
    CASE("host_twice_http10", H10 "Host: x\r\nHost: y\r\n\r\n", -400),

    /* Transfer-Encoding, whatever its value or the case of its name. */
    CASE("te_chunked", POST11 "Transfer-Encoding: chunked\r\n\r\n", -501),
    CASE("te_gzip", POST11 "Transfer-Encoding: gzip\r\n\r\n", -501),
    CASE("te_identity", POST11 "Transfer-Encoding: identity\r\n\r\n", -501),
    CASE("te_empty_value", POST11 "Transfer-Encoding:\r\n\r\n", -501),
    CASE("te_name_uppercase", POST11 "TRANSFER-ENCODING: chunked\r\n\r\n", -501),
    CASE("te_name_lowercase", POST11 "transfer-encoding: chunked\r\n\r\n", -501),
    CASE("te_name_mixed_case", POST11 "tRaNsFeR-eNcOdInG: chunked\r\n\r\n", -501),
    CASE("te_with_content_length", POST11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         -501),
    CASE("te_http10", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -501),
    CASE("te_lookalike_is_ignored", POST11 "Transfer-Encodings: chunked\r\n\r\n", HEAD),

    /* Content-Length: all digits, one value, at most 1 MiB. */
    CASE("content_length_letters", POST11 "Content-Length: abc\r\n\r\n", -400),
    CASE("content_length_negative", POST11 "Content-Length: -1\r\n\r\n", -400),
    CASE("content_length_plus", POST11 "Content-Length: +5\r\n\r\n", -400),
    CASE("content_length_empty", POST11 "Content-Length:\r\n\r\n", -400),
    CASE("content_length_only_ows", POST11 "Content-Length:   \r\n\r\n", -400),
    CASE("content_length_inner_space", POST11 "Content-Length: 1 2\r\n\r\n", -400),
    CASE("content_length_list", POST11 "Content-Length: 5, 5\r\n\r\n", -400),
    CASE("content_length_hex", POST11 "Content-Length: 0x5\r\n\r\n", -400),
    CASE("content_length_decimal_point", POST11 "Content-Length: 5.0\r\n\r\n", -400),
    CASE("content_length_two_different", POST11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
         -400),
    CASE("content_length_second_invalid",
         POST11 "Content-Length: 5\r\nContent-Length: 5x\r\n\r\n", -400),
    CASE("content_length_same_twice", POST11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
         HEAD, LENGTH(5)),
    CASE("content_length_same_value_leading_zeros",
         POST11 "Content-Length: 5\r\ncontent-length: 005\r\n\r\n", HEAD, LENGTH(5)),
    CASE("content_length_zero", POST11 "Content-Length: 0\r\n\r\n", HEAD, LENGTH(0)),
    CASE("content_length_leading_zeros", POST11 "Content-Length: 007\r\n\r\n", HEAD, LENGTH(7)),
    CASE("content_length_name_any_case", POST11 "cOnTeNt-LeNgTh: 5\r\n\r\n", HEAD, LENGTH(5)),
    CASE("content_length_on_get", H11 "Content-Length: 3\r\n\r\nabc", HEAD, LENGTH(3)),
    CASE("content_length_1048576", POST11 "Content-Length: 1048576\r\n\r\n", HEAD,
         LENGTH(1048576)),
    CASE("content_length_1048576_leading_zeros", POST11 "Content-Length: 0001048576\r\n\r\n",
         HEAD, LENGTH(1048576)),
    CASE("content_length_1048577", POST11 "Content-Length: 1048577\r\n\r\n", -413),
    CASE("content_length_10485760", POST11 "Content-Length: 10485760\r\n\r\n", -413),
    CASE("content_length_30_digits",
         POST11 "Content-Length: 123456789012345678901234567890\r\n\r\n", -413),
    CASE("content_length_2_pow_64", POST11 "Content-Length: 18446744073709551616\r\n\r\n", -413),
    CASE("content_length_2_pow_64_plus_5", POST11 "Content-Length: 18446744073709551621\r\n\r\n",
         -413),
    CASE("content_length_two_different_over_limit",
         POST11 "Content-Length: 1048577\r\nContent-Length: 2000000\r\n\r\n", -400),
    CASE("content_length_two_different_over_limit_same_prefix",
         POST11 "Content-Length: 1048577\r\nContent-Length: 10485770\r\n\r\n", -400),
    CASE("content_length_same_over_limit_twice",
         POST11 "Content-Length: 2000000\r\nContent-Length: 2000000\r\n\r\n", -413),

    /* keep_alive: HTTP/1.1 unless "close", HTTP/1.0 only with "keep-alive". */
    CASE("keep_alive_http11_default", H11 "\r\n", HEAD, KEEP_ALIVE),
    CASE("keep_alive_http11_close", H11 "Connection: close\r\n\r\n", HEAD, CLOSE),
    CASE("keep_alive_http11_close_uppercase", H11 "Connection: CLOSE\r\n\r\n", HEAD, CLOSE),
    CASE("keep_alive_http11_name_uppercase", H11 "CONNECTION: close\r\n\r\n", HEAD, CLOSE),
    CASE("keep_alive_http11_explicit", H11 "Connection: keep-alive\r\n\r\n", HEAD, KEEP_ALIVE),
    CASE("keep_alive_http11_list_close", H11 "Connection: foo, close\r\n\r\n", HEAD, CLOSE),
    CASE("keep_alive_http11_list_close_first", H11 "Connection: close, foo\r\n\r\n", HEAD, CLOSE),
    CASE("keep_alive_http11_list_no_spaces", H11 "Connection: foo,close,bar\r\n\r\n", HEAD,
         CLOSE),
    CASE("keep_alive_http11_closed_is_not_close", H11 "Connection: closed\r\n\r\n", HEAD,
         KEEP_ALIVE),
    CASE("keep_alive_http11_upgrade", H11 "Connection: Upgrade\r\n\r\n", HEAD, KEEP_ALIVE),
    CASE("keep_alive_http11_second_header_close",
         H11 "Connection: keep-alive\r\nConnection: close\r\n\r\n", HEAD, CLOSE),
    CASE("keep_alive_http10_default", H10 "\r\n", HEAD, CLOSE),
    CASE("keep_alive_http10_keep_alive", H10 "Connection: keep-alive\r\n\r\n", HEAD, KEEP_ALIVE),
    CASE("keep_alive_http10_keep_alive_any_case", H10 "Connection: Keep-Alive\r\n\r\n", HEAD,
         KEEP_ALIVE),
    CASE("keep_alive_http10_list", H10 "Connection: foo, keep-alive\r\n\r\n", HEAD, KEEP_ALIVE),
    CASE("keep_alive_http10_second_header",
         H10 "Connection: foo\r\nConnection: keep-alive\r\n\r\n", HEAD, KEEP_ALIVE),
    CASE("keep_alive_http10_keep_alive_and_close", H10 "Connection: keep-alive, close\r\n\r\n",
         HEAD, CLOSE),
    CASE("keep_alive_http10_close", H10 "Connection: close\r\n\r\n", HEAD, CLOSE),

    /* Pipelining: the answer is the first head's length, whatever follows it. */
    CASE("pipelined_two_gets", H11 "\r\n" H11 "\r\n", HEAD, KEEP_ALIVE),
    CASE("pipelined_post_then_get", POST11 "Content-Length: 5\r\n\r\nhello" H11 "\r\n", HEAD,
         LENGTH(5)),
    CASE("pipelined_second_invalid", H11 "\r\n" "GET / HTTP/1.1\nHost: x\n\n", HEAD),
    CASE("pipelined_second_partial", H11 "\r\n" "GET / HT", HEAD),
    CASE("body_is_not_parsed", POST11 "Content-Length: 6\r\n\r\n\n\r\0\x01\n\n", HEAD, LENGTH(6)),

    /* An incomplete head. */
    CASE("need_more_empty", "", HTTP_NEED_MORE),
    CASE("need_more_method", "GE", HTTP_NEED_MORE),
    CASE("need_more_request_line", "GET / HTTP/1.1", HTTP_NEED_MORE),
    CASE("need_more_request_line_cr", "GET / HTTP/1.1\r", HTTP_NEED_MORE),
    CASE("need_more_headers", H11, HTTP_NEED_MORE),
    CASE("need_more_last_cr", H11 "\r", HTTP_NEED_MORE),
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The offset just past the first CRLF CRLF, the head's length. */
static int head_length(const char *input, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(input + i, "\r\n\r\n", 4) == 0)
            return (int)(i + 4);
    return -1;
}

static void run_case(const void *arg)
{
    const struct parse_case *c = arg;
    const char *file = __FILE__;
    int expected = c->expected == HEAD ? head_length(c->input, c->len) : c->expected;
    struct parsed p = parse_whole(c->input, c->len);
    char got[256];
    if (p.ret != expected) {
        fail_at(file, c->line, "expected %d, got %s", expected, describe(&p, got, sizeof got));
        return;
    }
    if (p.ret <= 0)
        return;
    describe(&p, got, sizeof got);
    if (c->keep_alive != ANY && p.keep_alive != (c->keep_alive == YES))
        fail_at(file, c->line, "expected keep_alive %d, got %s", c->keep_alive == YES, got);
    else if (c->has_method && p.method != c->method)
        fail_at(file, c->line, "expected method %d, got %s", (int)c->method, got);
    else if (c->has_length && p.content_length != c->length)
        fail_at(file, c->line, "expected content_length %zu, got %s", c->length, got);
    else if (c->minor_version != 0 && p.minor_version != c->minor_version - 10)
        fail_at(file, c->line, "expected HTTP/1.%d, got %s", c->minor_version - 10, got);
}

/* --- generated heads around the 8192-byte limit ------------------------------------------- */

/* "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: aaa...a" then `end`, `size` bytes in all, heap-allocated. */
static char *padded_head(size_t size, const char *end)
{
    static const char start[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    size_t start_len = sizeof start - 1, end_len = strlen(end);
    if (size < start_len + end_len || size > ARENA_BYTES) {
        fprintf(stderr, "test_http: padded_head(%zu) out of range\n", size);
        exit(2);
    }
    char *head = malloc(size);
    if (head == NULL) {
        fprintf(stderr, "test_http: out of memory\n");
        exit(2);
    }
    memcpy(head, start, start_len);
    memset(head + start_len, 'a', size - start_len - end_len);
    memcpy(head + size - end_len, end, end_len);
    return head;
}

static void test_head_exactly_8192(const void *arg)
{
    (void)arg;
    char *head = padded_head(8192, "\r\n\r\n");
    ASSERT_EQ(parse_whole(head, 8192).ret, 8192);
    free(head);
}

static void test_head_8193_with_end(const void *arg)
{
    (void)arg;
    char *head = padded_head(8193, "\r\n\r\n");
    ASSERT_EQ(parse_whole(head, 8193).ret, -431);
    free(head);
}

static void test_head_20000_with_end(const void *arg)
{
    (void)arg;
    char *head = padded_head(20000, "\r\n\r\n");
    ASSERT_EQ(parse_whole(head, 20000).ret, -431);
    free(head);
}

static void test_head_8192_without_end(const void *arg)
{
    (void)arg;
    char *head = padded_head(8192, "");
    ASSERT_EQ(parse_whole(head, 8192).ret, -431);
    free(head);
}

/* 8192 bytes ending in CRLF CR: the empty line would end at byte 8193. */
static void test_head_8192_ending_in_crlf_cr(const void *arg)
{
    (void)arg;
    char *head = padded_head(8192, "\r\n\r");
    ASSERT_EQ(parse_whole(head, 8192).ret, -431);
    free(head);
}

static void test_head_8191_without_end(const void *arg)
{
    (void)arg;
    char *head = padded_head(8191, "");
    ASSERT_EQ(parse_whole(head, 8191).ret, HTTP_NEED_MORE);
    free(head);
}

static void test_head_over_8192_in_many_small_headers(const void *arg)
{
    (void)arg;
    static const char line[] = "X-Header: 0123456789abcdef\r\n"; /* 28 bytes */
    char head[9000];
    size_t len = 0;
    memcpy(head, H11, sizeof H11 - 1);
    len = sizeof H11 - 1;
    while (len <= 8192) {
        memcpy(head + len, line, sizeof line - 1);
        len += sizeof line - 1;
    }
    memcpy(head + len, "\r\n", 2);
    len += 2;
    ASSERT_EQ(parse_whole(head, len).ret, -431);
}

/* A head of exactly 8192 bytes followed by a second request: the limit is on the head, not on
 * what was read. */
static void test_head_exactly_8192_pipelined(const void *arg)
{
    (void)arg;
    size_t len = 8192 + sizeof H11 + 1;
    char *head = padded_head(len, "\r\n\r\n" H11 "\r\n");
    ASSERT_EQ(parse_whole(head, len).ret, 8192);
    free(head);
}

/* The head is over 8192 bytes when the bare LF at byte ~9000 is seen, so the answer is 431: a
 * server that read 8192 bytes first has answered 431 already (see the split tests). */
static void test_head_over_8192_bare_lf_beyond_limit(const void *arg)
{
    (void)arg;
    char *head = padded_head(9000, "\nY: z\r\n\r\n");
    ASSERT_EQ(parse_whole(head, 9000).ret, -431);
    free(head);
}

/* --- fields --------------------------------------------------------------------------------- */

static void test_fields_get(const void *arg)
{
    (void)arg;
    static const char input[] = "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
    struct parsed p = parse_whole(input, sizeof input - 1);
    ASSERT_EQ(p.ret, sizeof input - 1);
    ASSERT_EQ(p.method, HTTP_GET);
    ASSERT_EQ(p.method_off, 0);
    ASSERT_BYTES(input + p.method_off, p.method_len, "GET");
    ASSERT_EQ(p.target_off, 4);
    ASSERT_BYTES(input + p.target_off, p.target_len, "/index.html");
    ASSERT_EQ(p.minor_version, 1);
    ASSERT_EQ(p.content_length, 0);
    ASSERT_EQ(p.keep_alive, true);
}

static void test_fields_target_with_query(const void *arg)
{
    (void)arg;
    static const char input[] = "HEAD /a/b?c=d&e=/f HTTP/1.0\r\n\r\n";
    struct parsed p = parse_whole(input, sizeof input - 1);
    ASSERT_EQ(p.ret, sizeof input - 1);
    ASSERT_EQ(p.method, HTTP_HEAD);
    ASSERT_BYTES(input + p.method_off, p.method_len, "HEAD");
    ASSERT_EQ(p.target_off, 5);
    ASSERT_BYTES(input + p.target_off, p.target_len, "/a/b?c=d&e=/f");
    ASSERT_EQ(p.minor_version, 0);
    ASSERT_EQ(p.keep_alive, false);
}

static void test_fields_post_body_not_in_head(const void *arg)
{
    (void)arg;
    static const char input[] = POST11 "Content-Length: 11\r\n\r\nhello world";
    struct parsed p = parse_whole(input, sizeof input - 1);
    ASSERT_EQ(p.ret, sizeof input - 1 - 11);
    ASSERT_EQ(p.method, HTTP_POST);
    ASSERT_BYTES(input + p.method_off, p.method_len, "POST");
    ASSERT_BYTES(input + p.target_off, p.target_len, "/echo");
    ASSERT_EQ(p.content_length, 11);
}

/* A method the server does not serve is not a parse error: the server answers 405 with it. */
static void test_fields_other_method(const void *arg)
{
    (void)arg;
    static const char input[] = "DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n";
    struct parsed p = parse_whole(input, sizeof input - 1);
    ASSERT_EQ(p.ret, sizeof input - 1);
    ASSERT_EQ(p.method, HTTP_OTHER);
    ASSERT_EQ(p.method_off, 0);
    ASSERT_BYTES(input + p.method_off, p.method_len, "DELETE");
    ASSERT_BYTES(input + p.target_off, p.target_len, "/x");
}

static void test_pipelined_two_requests(const void *arg)
{
    (void)arg;
    static const char input[] = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t len = sizeof input - 1;
    struct parsed first = parse_whole(input, len);
    ASSERT_EQ(first.ret, 32);
    ASSERT_BYTES(input + first.target_off, first.target_len, "/first");
    ASSERT_EQ(first.keep_alive, true);
    struct parsed second = parse_whole(input + first.ret, len - (size_t)first.ret);
    ASSERT_EQ(second.ret, len - 32);
    ASSERT_BYTES(input + first.ret + second.target_off, second.target_len, "/second");
    ASSERT_EQ(second.keep_alive, false);
}

static void test_pipelined_post_body_then_get(const void *arg)
{
    (void)arg;
    static const char input[] = POST11 "Content-Length: 4\r\n\r\n"
                                "\r\n\r\n" /* the body */
                                "GET /next HTTP/1.0\r\n\r\n";
    size_t len = sizeof input - 1;
    struct parsed first = parse_whole(input, len);
    ASSERT_EQ(first.ret, sizeof POST11 - 1 + 21);
    ASSERT_EQ(first.content_length, 4);
    size_t next = (size_t)first.ret + first.content_length;
    struct parsed second = parse_whole(input + next, len - next);
    ASSERT_EQ(second.ret, len - next);
    ASSERT_BYTES(input + next + second.target_off, second.target_len, "/next");
}

/* Calling again with the *scanned of a successful call gives the same answer (http.c relies on
 * it being cheap: it finds the same end at once). */
static void test_repeat_after_success(const void *arg)
{
    (void)arg;
    static const char input[] = H11 "Connection: close\r\n\r\n" H11 "\r\n";
    size_t scanned = 0;
    struct parsed first = parse_guarded(input, sizeof input - 1, &scanned);
    struct parsed again = parse_guarded(input, sizeof input - 1, &scanned);
    ASSERT_EQ(first.ret, sizeof H11 - 1 + 21);
    ASSERT_EQ(same_answer(&first, &again), true);
}

static void test_reason_phrases(const void *arg)
{
    (void)arg;
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {200, "OK"}, {400, "Bad Request"}, {404, "Not Found"}, {405, "Method Not Allowed"},
        {408, "Request Timeout"}, {413, "Content Too Large"},
        {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
        {501, "Not Implemented"}, {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"}, {299, "Unknown"}, {0, "Unknown"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
        const char *reason = http_reason(reasons[i].status);
        ASSERT_BYTES(reason, strlen(reason), reasons[i].reason);
    }
}

/* --- the split property --------------------------------------------------------------------- */

/* Every table input and the generated heads: valid, invalid and incomplete. */
struct sample {
    const char *name;
    const char *data;
    size_t len;
    int line;
};

static size_t collect_samples(struct sample *samples, size_t capacity)
{
    size_t count = 0;
    for (size_t i = 0; i < ARRAY_SIZE(parse_cases) && count < capacity; i++)
        samples[count++] = (struct sample){parse_cases[i].name, parse_cases[i].input,
                                           parse_cases[i].len, parse_cases[i].line};
    static const struct {
        const char *name;
        size_t size;
        const char *end;
        size_t bare_lf_at; /* 0: none */
        int line;
    } generated[] = {
        {"head_exactly_8192", 8192, "\r\n\r\n", 0, __LINE__},
        {"head_8193_with_end", 8193, "\r\n\r\n", 0, __LINE__},
        {"head_8192_without_end", 8192, "", 0, __LINE__},
        {"head_8192_ending_in_crlf_cr", 8192, "\r\n\r", 0, __LINE__},
        {"head_exactly_8192_pipelined", 8192 + sizeof H11 + 1, "\r\n\r\n" H11 "\r\n", 0,
         __LINE__},
        {"head_bare_lf_before_limit", 8300, "\r\n\r\n", 100, __LINE__},
        {"head_over_8192_bare_lf_beyond_limit", 9000, "\nY: z\r\n\r\n", 0, __LINE__},
    };
    for (size_t i = 0; i < ARRAY_SIZE(generated) && count < capacity; i++) {
        char *data = padded_head(generated[i].size, generated[i].end);
        if (generated[i].bare_lf_at != 0)
            data[generated[i].bare_lf_at] = '\n';
        samples[count++] = (struct sample){generated[i].name, data, generated[i].size,
                                           generated[i].line};
    }
    return count;
}

/* Reports the first input that breaks the property, and how many do. */
static void report_split(int differing, size_t total, const struct sample *first,
                         const struct parsed *whole, const struct parsed *split, const char *how)
{
    char expected[256], got[256];
    fail_at(__FILE__, first->line,
            "expected %s for input %s parsed whole, got %s %s (%d of %zu inputs differ)",
            describe(whole, expected, sizeof expected), first->name,
            describe(split, got, sizeof got), how, differing, total);
}

static void test_split_at_every_point(const void *arg)
{
    (void)arg;
    static struct sample samples[ARRAY_SIZE(parse_cases) + 16];
    size_t total = collect_samples(samples, ARRAY_SIZE(samples));
    int differing = 0;
    const struct sample *first = NULL;
    struct parsed first_whole = {0}, first_split = {0};
    char how[128] = "";
    for (size_t i = 0; i < total; i++) {
        const struct sample *s = &samples[i];
        struct parsed whole = parse_whole(s->data, s->len);
        for (size_t k = 0; k <= s->len; k++) {
            struct parsed split = parse_split(s->data, s->len, k);
            if (!same_answer(&whole, &split)) {
                if (differing++ == 0) {
                    first = s, first_whole = whole, first_split = split;
                    snprintf(how, sizeof how, "when the first read is %zu bytes", k);
                }
                break;
            }
        }
    }
    if (differing > 0)
        report_split(differing, total, first, &first_whole, &first_split, how);
}

static void test_split_byte_by_byte(const void *arg)
{
    (void)arg;
    static struct sample samples[ARRAY_SIZE(parse_cases) + 16];
    size_t total = collect_samples(samples, ARRAY_SIZE(samples));
    int differing = 0;
    const struct sample *first = NULL;
    struct parsed first_whole = {0}, first_split = {0};
    char how[128] = "";
    for (size_t i = 0; i < total; i++) {
        const struct sample *s = &samples[i];
        struct parsed whole = parse_whole(s->data, s->len);
        size_t stopped_at;
        struct parsed bytewise = parse_bytewise(s->data, s->len, &stopped_at);
        if (!same_answer(&whole, &bytewise) && differing++ == 0) {
            first = s, first_whole = whole, first_split = bytewise;
            snprintf(how, sizeof how, "byte by byte at length %zu", stopped_at);
        }
    }
    if (differing > 0)
        report_split(differing, total, first, &first_whole, &first_split, how);
}

/* --- the runner ----------------------------------------------------------------------------- */

struct test {
    const char *name;
    void (*run)(const void *arg);
};

static const struct test tests[] = {
    {"head_exactly_8192", test_head_exactly_8192},
    {"head_8193_with_end", test_head_8193_with_end},
    {"head_20000_with_end", test_head_20000_with_end},
    {"head_8192_without_end", test_head_8192_without_end},
    {"head_8192_ending_in_crlf_cr", test_head_8192_ending_in_crlf_cr},
    {"head_8191_without_end", test_head_8191_without_end},
    {"head_over_8192_in_many_small_headers", test_head_over_8192_in_many_small_headers},
    {"head_exactly_8192_pipelined", test_head_exactly_8192_pipelined},
    {"head_over_8192_bare_lf_beyond_limit", test_head_over_8192_bare_lf_beyond_limit},
    {"fields_get", test_fields_get},
    {"fields_target_with_query", test_fields_target_with_query},
    {"fields_post_body_not_in_head", test_fields_post_body_not_in_head},
    {"fields_other_method", test_fields_other_method},
    {"pipelined_two_requests", test_pipelined_two_requests},
    {"pipelined_post_body_then_get", test_pipelined_post_body_then_get},
    {"repeat_after_success", test_repeat_after_success},
    {"reason_phrases", test_reason_phrases},
    {"split_at_every_point", test_split_at_every_point},
    {"split_byte_by_byte", test_split_byte_by_byte},
};

static unsigned test_timeout(void)
{
    const char *multiplier = getenv("C10K_TEST_TIMEOUT_MULTIPLIER");
    double scale = multiplier != NULL ? atof(multiplier) : 1;
    return scale > 0 ? (unsigned)(TEST_TIMEOUT_SECONDS * scale + 0.5) : TEST_TIMEOUT_SECONDS;
}

/* Runs one test in a child process; returns whether it passed. The child prints its own PASS or
 * FAIL line; the runner prints it when the child died instead. */
static bool run_test(const char *name, void (*run)(const void *), const void *arg)
{
    unsigned timeout = test_timeout();
    fflush(stdout);
    crash_note[0] = '\0';
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s: fork: %s\n", name, strerror(errno));
        return false;
    }
    if (pid == 0) {
        alarm(timeout);
        run(arg);
        if (failure[0] != '\0')
            printf("FAIL %s: %s\n", name, failure);
        else
            printf("PASS %s\n", name);
        fflush(stdout);
        _exit(failure[0] != '\0');
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            printf("FAIL %s: waitpid: %s\n", name, strerror(errno));
            return false;
        }
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status) == 0;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (sig == SIGALRM)
        printf("FAIL %s: timed out after %u s %s\n", name, timeout, crash_note);
    else
        printf("FAIL %s: killed by signal %d (%s)%s %s\n", name, sig, strsignal(sig),
               sig == SIGSEGV ? ", a read outside the input?" : "", crash_note);
    return false;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    setup_memory();
    for (size_t i = 0; i < ARRAY_SIZE(parse_cases); i++) {
        if (only != NULL && strcmp(only, parse_cases[i].name) != 0)
            continue;
        if (run_test(parse_cases[i].name, run_case, &parse_cases[i]))
            passed++;
        else
            failed++;
    }
    for (size_t i = 0; i < ARRAY_SIZE(tests); i++) {
        if (only != NULL && strcmp(only, tests[i].name) != 0)
            continue;
        if (run_test(tests[i].name, tests[i].run, NULL))
            passed++;
        else
            failed++;
    }
    if (passed + failed == 0) {
        fprintf(stderr, "test_http: no test named %s\n", only);
        return 2;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed > 0;
}
