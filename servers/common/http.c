/* http.c - the request parser: finds the end of the head, then checks every line of it.
 *
 * Two passes, like picohttpparser's "is complete" check followed by the parse: the first pass
 * only looks for the empty line (memchr from where the last call stopped, so a head that arrives
 * a byte at a time is still searched once), the second validates the complete head in one go.
 * Validation never needs more bytes than the head, which keeps every rule independent of how the
 * bytes were split across reads. */
#include "http.h"

#include <string.h>

#include "http_syntax.h"

/* Visible ASCII, the characters of an origin-form target. */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Searches buf[*scanned..len) for the LF that ends the empty line. Every LF on the way must follow
 * a CR: a bare LF is refused here, so the line parser below can rely on CRLF endings. */
static int find_head_end(const char *buf, size_t len, size_t *scanned)
{
    /* Only the first HTTP_MAX_HEAD_BYTES can hold a head we accept; looking further would make the
     * answer (400 or 431) depend on how much had arrived. */
    size_t limit = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
    size_t pos = *scanned;
    while (pos < limit) {
        const char *lf = memchr(buf + pos, '\n', limit - pos);
        if (lf == NULL)
            break;
        size_t at = (size_t)(lf - buf);
        if (at == 0 || buf[at - 1] != '\r')
            return -400;
        if (at == 1)
            return -400; /* an empty request line */
        if (at >= 3 && buf[at - 2] == '\n' && buf[at - 3] == '\r') {
            *scanned = at; /* a repeated call finds the same end at once */
            return (int)(at + 1);
        }
        pos = at + 1;
    }
    *scanned = limit;
    if (len >= HTTP_MAX_HEAD_BYTES)
        return -431;
    return HTTP_NEED_MORE;
}

/* method SP target SP HTTP/D.D CRLF; returns the offset of the first header line or -STATUS. */
static int parse_request_line(const char *buf, size_t head_len, struct http_request *req)
{
    size_t pos = 0;
    while (pos < head_len && http_is_token_char((unsigned char)buf[pos]))
        pos++;
    if (pos == 0 || buf[pos] != ' ')
        return -400;
    req->method_name = buf;
    req->method_len = pos;
    if (pos == 3 && memcmp(buf, "GET", 3) == 0)
        req->method = HTTP_GET;
    else if (pos == 4 && memcmp(buf, "HEAD", 4) == 0)
        req->method = HTTP_HEAD;
    else if (pos == 4 && memcmp(buf, "POST", 4) == 0)
        req->method = HTTP_POST;
    else
        req->method = HTTP_OTHER;

    size_t target_start = ++pos;
    if (buf[pos] != '/')
        return -400;
    while (is_target_char((unsigned char)buf[pos]))
        pos++;
    if (buf[pos] != ' ')
        return -400;
    req->target = buf + target_start;
    req->target_len = pos - target_start;
    pos++;

    /* "HTTP/" DIGIT "." DIGIT CRLF: 10 bytes, all inside the head since it ends with CRLF CRLF. */
    const char *version = buf + pos;
    if (head_len - pos < 10 || memcmp(version, "HTTP/", 5) != 0 || !is_digit((unsigned char)version[5]) ||
        version[6] != '.' || !is_digit((unsigned char)version[7]) || version[8] != '\r' ||
        version[9] != '\n')
        return -400;
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return -505;
    req->minor_version = version[7] - '0';
    return (int)(pos + 10);
}

/* Content-Length: 1*DIGIT. Values over the body limit saturate, so they are refused with 413. */
static bool parse_content_length(const char *value, size_t len, size_t *length)
{
    size_t result = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)value[i]))
            return false;
        if (result <= HTTP_MAX_BODY_BYTES)
            result = result * 10 + (size_t)(value[i] - '0');
    }
    *length = result;
    return true;
}

/* Connection: a comma-separated list of options; only "close" and "keep-alive" mean anything. */
static void parse_connection(const char *value, size_t len, bool *close, bool *keep_alive)
{
    size_t pos = 0;
    while (pos < len) {
        while (pos < len && (value[pos] == ' ' || value[pos] == '\t' || value[pos] == ','))
            pos++;
        size_t start = pos;
        while (pos < len && value[pos] != ',' && value[pos] != ' ' && value[pos] != '\t')
            pos++;
        if (http_name_equals(value + start, pos - start, "close"))
            *close = true;
        else if (http_name_equals(value + start, pos - start, "keep-alive"))
            *keep_alive = true;
    }
}

int http_parse_request(const char *buf, size_t len, size_t *scanned, struct http_request *req)
{
    int head_len = find_head_end(buf, len, scanned);
    if (head_len <= 0)
        return head_len;

    int pos = parse_request_line(buf, (size_t)head_len, req);
    if (pos < 0)
        return pos;

    unsigned host_count = 0;
    bool has_length = false, has_transfer_encoding = false;
    bool connection_close = false, connection_keep_alive = false;
    size_t content_length = 0;
    const char *length_digits = NULL; /* the first Content-Length, without leading zeros */
    size_t length_digits_len = 0;

    /* Every LF follows a CR (checked by find_head_end); the last line is the empty one. */
    while (pos < head_len - 2) {
        const char *line = buf + pos;
        const char *line_end = memchr(line, '\r', (size_t)(head_len - pos));
        if (line_end == NULL || line_end[1] != '\n')
            return -400; /* a bare CR inside a line */
        size_t line_len = (size_t)(line_end - line);

        /* A bad name also catches obs-fold (a line starting with SP or HTAB) and space before
         * the colon. */
        size_t name_len, value_len;
        const char *value;
        if (http_split_field_line(line, line_len, &name_len, &value, &value_len) != HTTP_FIELD_LINE_OK)
            return -400;

        if (http_name_equals(line, name_len, "host")) {
            host_count++;
        } else if (http_name_equals(line, name_len, "content-length")) {
            size_t length;
            if (!parse_content_length(value, value_len, &length))
                return -400;
            /* Compared as digits: the parsed values saturate above the limit. */
            while (value_len > 1 && value[0] == '0')
                value++, value_len--;
            if (has_length && (value_len != length_digits_len || memcmp(value, length_digits, value_len) != 0))
                return -400;
            has_length = true;
            content_length = length;
            length_digits = value;
            length_digits_len = value_len;
        } else if (http_name_equals(line, name_len, "transfer-encoding")) {
            has_transfer_encoding = true;
        } else if (http_name_equals(line, name_len, "connection")) {
            parse_connection(value, value_len, &connection_close, &connection_keep_alive);
        }
        pos += (int)line_len + 2;
    }

    /* RFC 9112 3.2: HTTP/1.1 needs exactly one Host; no version may have two. */
    if (host_count > 1 || (req->minor_version == 1 && host_count == 0))
        return -400;
    if (has_transfer_encoding)
        return -501;
    if (content_length > HTTP_MAX_BODY_BYTES)
        return -413;
    req->content_length = content_length;
    if (req->minor_version == 1)
        req->keep_alive = !connection_close;
    else
        req->keep_alive = connection_keep_alive && !connection_close;
    return head_len;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
