/* http_response.c - the incremental response parser (see http_response.h).
 *
 * The head is parsed a line at a time with memchr, remembering how far an unfinished line was
 * searched (picohttpparser's last_len), so a head trickling in a byte at a time costs linear work.
 * Chunk framing is a byte-wise state machine, so a chunk-size line split across reads needs no
 * buffering at all. Bodies are only counted. */
#include "http_response.h"

#include <string.h>

#include "../servers/common/http_syntax.h"

enum state {
    ST_STATUS_LINE,
    ST_HEADER_LINE,
    ST_BODY_LENGTH,
    ST_BODY_EOF,
    ST_CHUNK_SIZE,
    ST_CHUNK_EXT,
    ST_CHUNK_SIZE_LF,
    ST_CHUNK_DATA,
    ST_CHUNK_DATA_CR,
    ST_CHUNK_DATA_LF,
    ST_TRAILER_START,
    ST_TRAILER_LINE,
    ST_TRAILER_LINE_LF,
    ST_TRAILER_END_LF,
    ST_DONE,
};

static int fail(struct http_response *response, const char *why)
{
    response->error = why;
    response->state = ST_DONE;
    return HTTP_RESPONSE_ERROR;
}

static void reset_head(struct http_response *response)
{
    response->state = ST_STATUS_LINE;
    response->status = 0;
    response->minor_version = 0;
    response->head_bytes = 0;
    response->scanned = 0;
    response->chunked = false;
    response->have_length = false;
    response->close_seen = false;
    response->keep_alive_seen = false;
    response->transfer_encoding_seen = false;
    response->content_length = 0;
    response->remaining = 0;
    response->chunk_digits = 0;
}

void http_response_start(struct http_response *response, bool no_body)
{
    reset_head(response);
    response->no_body = no_body;
    response->keep_alive = false;
    response->body_bytes = 0;
    response->error = NULL;
}

bool http_response_started(const struct http_response *response)
{
    return response->state != ST_STATUS_LINE || response->head_bytes > 0 || response->scanned > 0;
}

/* "HTTP/1.D SP 3DIGIT SP reason" */
static int parse_status_line(struct http_response *response, const char *line, size_t len)
{
    if (len < 13 || memcmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' || line[8] != ' ')
        return fail(response, "bad status line");
    for (int i = 9; i < 12; i++)
        if (line[i] < '0' || line[i] > '9')
            return fail(response, "bad status code");
    if (line[9] < '1' || line[9] > '5')
        return fail(response, "status code out of range");
    if (line[12] != ' ')
        return fail(response, "bad status line");
    for (size_t i = 13; i < len; i++)
        if (!http_is_field_char((unsigned char)line[i]))
            return fail(response, "control character in reason phrase");
    response->minor_version = line[7] - '0';
    response->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    return HTTP_RESPONSE_INCOMPLETE;
}

/* Calls on_token for each non-empty element of a comma-separated list; stops at its first error. */
static int for_each_token(struct http_response *response, const char *value, size_t len,
                          int (*on_token)(struct http_response *, const char *, size_t))
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && http_is_token_char((unsigned char)value[i]))
            i++;
        size_t token_len = i - start;
        while (i < len && (value[i] == ' ' || value[i] == '\t'))
            i++;
        if (i < len && value[i] != ',')
            return fail(response, "bad list element");
        if (token_len > 0) {
            int result = on_token(response, value + start, token_len);
            if (result != HTTP_RESPONSE_INCOMPLETE)
                return result;
        }
    }
    return HTTP_RESPONSE_INCOMPLETE;
}

static int on_transfer_coding(struct http_response *response, const char *token, size_t len)
{
    /* Nothing may follow chunked (RFC 9112 6.1): a coding after it means broken framing. */
    if (response->chunked)
        return fail(response, "chunked is not the final transfer coding");
    if (http_name_equals(token, len, "chunked"))
        response->chunked = true;
    return HTTP_RESPONSE_INCOMPLETE;
}

static int on_connection_option(struct http_response *response, const char *token, size_t len)
{
    if (http_name_equals(token, len, "close"))
        response->close_seen = true;
    else if (http_name_equals(token, len, "keep-alive"))
        response->keep_alive_seen = true;
    return HTTP_RESPONSE_INCOMPLETE;
}

static int parse_content_length(struct http_response *response, const char *value, size_t len)
{
    if (len == 0 || len > 18)
        return fail(response, "bad Content-Length");
    uint64_t length = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return fail(response, "bad Content-Length");
        length = length * 10 + (uint64_t)(value[i] - '0');
    }
    if (response->have_length && response->content_length != length)
        return fail(response, "conflicting Content-Length headers");
    response->have_length = true;
    response->content_length = length;
    return HTTP_RESPONSE_INCOMPLETE;
}

/* "name: OWS value OWS" */
static int parse_header_line(struct http_response *response, const char *line, size_t len)
{
    size_t name_len, value_len;
    const char *value;
    switch (http_split_field_line(line, len, &name_len, &value, &value_len)) {
    case HTTP_FIELD_LINE_OK:
        break;
    case HTTP_FIELD_LINE_BAD_NAME:
        return fail(response, "bad header line");
    case HTTP_FIELD_LINE_BAD_VALUE:
        return fail(response, "control character in header value");
    }

    if (http_name_equals(line, name_len, "content-length"))
        return parse_content_length(response, value, value_len);
    if (http_name_equals(line, name_len, "transfer-encoding")) {
        response->transfer_encoding_seen = true;
        return for_each_token(response, value, value_len, on_transfer_coding);
    }
    if (http_name_equals(line, name_len, "connection"))
        return for_each_token(response, value, value_len, on_connection_option);
    return HTTP_RESPONSE_INCOMPLETE;
}

/* The empty line ended the head: decide how the body is framed (RFC 9112 6.3). Returns
 * HTTP_RESPONSE_COMPLETE for a response without a body. */
static int end_of_head(struct http_response *response)
{
    if (response->transfer_encoding_seen && response->minor_version == 0)
        return fail(response, "Transfer-Encoding in an HTTP/1.0 response");
    if (response->transfer_encoding_seen && response->have_length)
        return fail(response, "both Transfer-Encoding and Content-Length");
    if (response->status == 101)
        return fail(response, "unexpected 101 Switching Protocols");
    if (response->minor_version >= 1)
        response->keep_alive = !response->close_seen;
    else
        response->keep_alive = response->keep_alive_seen && !response->close_seen;

    if (response->status < 200) { /* interim: the real response follows */
        bool no_body = response->no_body;
        reset_head(response);
        response->no_body = no_body;
        return HTTP_RESPONSE_INCOMPLETE;
    }
    if (response->no_body || response->status == 204 || response->status == 304) {
        response->state = ST_DONE;
        return HTTP_RESPONSE_COMPLETE;
    }
    response->head_bytes = 0; /* from here on it bounds chunk-size and trailer lines */
    if (response->chunked) {
        response->state = ST_CHUNK_SIZE;
    } else if (response->transfer_encoding_seen || !response->have_length) {
        response->state = ST_BODY_EOF;
        response->keep_alive = false;
    } else if (response->content_length == 0) {
        response->state = ST_DONE;
        return HTTP_RESPONSE_COMPLETE;
    } else {
        response->state = ST_BODY_LENGTH;
        response->remaining = response->content_length;
    }
    return HTTP_RESPONSE_INCOMPLETE;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One byte of chunk framing (everything but chunk data). */
static int chunk_byte(struct http_response *response, char c)
{
    if (++response->head_bytes > HTTP_RESPONSE_MAX_HEAD)
        return fail(response, "chunk-size line or trailer too long");
    switch (response->state) {
    case ST_CHUNK_SIZE: {
        int digit = hex_value(c);
        if (digit >= 0) {
            if (++response->chunk_digits > 15) /* keeps the size below 2^60 */
                return fail(response, "chunk size too large");
            response->remaining = response->remaining * 16 + (uint64_t)digit;
        } else if (response->chunk_digits == 0) {
            return fail(response, "bad chunk size");
        } else if (c == '\r') {
            response->state = ST_CHUNK_SIZE_LF;
        } else if (c == ';' || c == ' ' || c == '\t') {
            response->state = ST_CHUNK_EXT;
        } else {
            return fail(response, "bad chunk size");
        }
        return HTTP_RESPONSE_INCOMPLETE;
    }
    case ST_CHUNK_EXT:
        if (c == '\r')
            response->state = ST_CHUNK_SIZE_LF;
        else if (!http_is_field_char((unsigned char)c))
            return fail(response, "control character in chunk extension");
        return HTTP_RESPONSE_INCOMPLETE;
    case ST_CHUNK_SIZE_LF:
        if (c != '\n')
            return fail(response, "chunk-size line not ended by CRLF");
        response->head_bytes = 0;
        response->state = response->remaining == 0 ? ST_TRAILER_START : ST_CHUNK_DATA;
        return HTTP_RESPONSE_INCOMPLETE;
    case ST_CHUNK_DATA_CR:
        if (c != '\r')
            return fail(response, "chunk data not followed by CRLF");
        response->state = ST_CHUNK_DATA_LF;
        return HTTP_RESPONSE_INCOMPLETE;
    case ST_CHUNK_DATA_LF:
        if (c != '\n')
            return fail(response, "chunk data not followed by CRLF");
        response->state = ST_CHUNK_SIZE;
        response->chunk_digits = 0;
        response->remaining = 0;
        response->head_bytes = 0;
        return HTTP_RESPONSE_INCOMPLETE;
    case ST_TRAILER_START:
        if (c == '\r')
            response->state = ST_TRAILER_END_LF;
        else if (http_is_token_char((unsigned char)c))
            response->state = ST_TRAILER_LINE;
        else
            return fail(response, "bad trailer line");
        return HTTP_RESPONSE_INCOMPLETE;
    case ST_TRAILER_LINE:
        if (c == '\r')
            response->state = ST_TRAILER_LINE_LF;
        else if (!http_is_field_char((unsigned char)c))
            return fail(response, "control character in trailer");
        return HTTP_RESPONSE_INCOMPLETE;
    case ST_TRAILER_LINE_LF:
        if (c != '\n')
            return fail(response, "trailer line not ended by CRLF");
        response->state = ST_TRAILER_START;
        return HTTP_RESPONSE_INCOMPLETE;
    case ST_TRAILER_END_LF:
        if (c != '\n')
            return fail(response, "trailer section not ended by CRLF");
        response->state = ST_DONE;
        return HTTP_RESPONSE_COMPLETE;
    default:
        return fail(response, "parser state corrupt");
    }
}

int http_response_parse(struct http_response *response, const char *data, size_t len, size_t *consumed)
{
    size_t pos = 0;
    *consumed = 0;
    while (pos < len) {
        switch (response->state) {
        case ST_STATUS_LINE:
        case ST_HEADER_LINE: {
            const char *line = data + pos;
            size_t available = len - pos;
            size_t scanned = response->scanned < available ? response->scanned : available;
            const char *newline = memchr(line + scanned, '\n', available - scanned);
            if (newline == NULL) {
                if (response->head_bytes + available > HTTP_RESPONSE_MAX_HEAD)
                    return fail(response, "response head too large");
                response->scanned = available;
                *consumed = pos;
                return HTTP_RESPONSE_INCOMPLETE;
            }
            size_t line_len = (size_t)(newline - line) + 1;
            response->scanned = 0;
            response->head_bytes += line_len;
            if (response->head_bytes > HTTP_RESPONSE_MAX_HEAD)
                return fail(response, "response head too large");
            if (line_len < 2 || newline[-1] != '\r')
                return fail(response, "head line not ended by CRLF");
            pos += line_len;
            size_t text_len = line_len - 2;
            int result;
            if (response->state == ST_STATUS_LINE) {
                result = parse_status_line(response, line, text_len);
                response->state = ST_HEADER_LINE;
            } else if (text_len == 0) {
                result = end_of_head(response);
            } else {
                result = parse_header_line(response, line, text_len);
            }
            if (result != HTTP_RESPONSE_INCOMPLETE) {
                *consumed = pos;
                return result;
            }
            break;
        }
        case ST_BODY_LENGTH: {
            size_t take = len - pos;
            if (take > response->remaining)
                take = (size_t)response->remaining;
            pos += take;
            response->remaining -= take;
            response->body_bytes += take;
            if (response->remaining == 0) {
                response->state = ST_DONE;
                *consumed = pos;
                return HTTP_RESPONSE_COMPLETE;
            }
            break;
        }
        case ST_BODY_EOF:
            response->body_bytes += len - pos;
            pos = len;
            break;
        case ST_CHUNK_DATA: {
            size_t take = len - pos;
            if (take > response->remaining)
                take = (size_t)response->remaining;
            pos += take;
            response->remaining -= take;
            response->body_bytes += take;
            if (response->remaining == 0)
                response->state = ST_CHUNK_DATA_CR;
            break;
        }
        case ST_DONE:
            return fail(response, "parser used after the end of a response");
        default: {
            int result = chunk_byte(response, data[pos++]);
            if (result != HTTP_RESPONSE_INCOMPLETE) {
                *consumed = pos;
                return result;
            }
            break;
        }
        }
    }
    *consumed = pos;
    return HTTP_RESPONSE_INCOMPLETE;
}

int http_response_finish_at_eof(struct http_response *response)
{
    if (response->state == ST_BODY_EOF) {
        response->state = ST_DONE;
        return HTTP_RESPONSE_COMPLETE;
    }
    if (!http_response_started(response))
        return fail(response, "connection closed before a response");
    return fail(response, "connection closed in the middle of a response");
}
