/* http_response.h - a strict, incremental HTTP/1.x response parser that allocates nothing.
 *
 * Shaped like picohttpparser, turned around for responses: the caller owns the bytes and hands
 * them over as they arrive; the parser keeps only a few integers between calls, so a body of any
 * size streams through without being copied or stored. The head is parsed a line at a time, so
 * the only bytes a caller must keep between reads are those of an unfinished head line.
 *
 * Framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; else chunked when
 * Transfer-Encoding ends in "chunked", else Content-Length, else everything until the server
 * closes. Interim 1xx responses (but 101) are skipped. Anything else that is not well formed is an
 * error: a load generator that tolerates broken framing would report wrong figures. */
#ifndef LOADGEN_HTTP_RESPONSE_H
#define LOADGEN_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest head line (and the longest head) accepted. */
#define HTTP_RESPONSE_MAX_HEAD 16384

enum http_response_result {
    HTTP_RESPONSE_ERROR = -1,      /* malformed; the connection is out of step and must be closed */
    HTTP_RESPONSE_INCOMPLETE = 0,  /* consumed what it could; call again with more bytes */
    HTTP_RESPONSE_COMPLETE = 1,    /* a whole response ended; bytes after it belong to the next */
};

struct http_response {
    /* Results, valid after HTTP_RESPONSE_COMPLETE (status and version once the head is parsed). */
    int status;
    int minor_version;
    bool keep_alive;       /* the connection may carry another response after this one */
    uint64_t body_bytes;   /* body bytes seen so far (chunk payloads only, without framing) */
    const char *error;     /* why, after HTTP_RESPONSE_ERROR */

    /* Private state. */
    bool no_body;          /* the request was HEAD */
    int state;
    size_t head_bytes;     /* bytes of the current head consumed so far, to bound it */
    size_t scanned;        /* bytes of an unfinished line already searched for its end */
    bool chunked;
    bool have_length;
    bool close_seen;
    bool keep_alive_seen;
    bool transfer_encoding_seen;
    uint64_t content_length;
    uint64_t remaining;    /* body or chunk bytes still to come */
    int chunk_digits;
};

/* Prepares for the next response; no_body when it answers a HEAD request. */
void http_response_start(struct http_response *response, bool no_body);

/* Parses as much of data[0..len) as belongs to the current response and sets *consumed to the
 * number of bytes used. On HTTP_RESPONSE_INCOMPLETE the caller keeps data[*consumed..len) (at most
 * an unfinished head line) and passes it again, followed by the next bytes; the parser does not
 * search those again. */
int http_response_parse(struct http_response *response, const char *data, size_t len, size_t *consumed);

/* The server closed the connection: completes a response whose body runs until the close,
 * or returns HTTP_RESPONSE_ERROR (with error set) when the response was cut short. */
int http_response_finish_at_eof(struct http_response *response);

/* Whether any byte of the current response has been consumed. */
bool http_response_started(const struct http_response *response);

#endif
