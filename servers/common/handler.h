/* handler.h - the routes of docs/protocol.md, and the bytes of a response head.
 *
 * The handler decides what to answer; conn.c decides when and how the bytes go out. */
#ifndef C10K_HANDLER_H
#define C10K_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* The largest response head handler_format_head() writes. */
#define RESPONSE_HEAD_MAX 512

struct response {
    int status;
    const char *content_type;
    const char *body;      /* in memory (or NULL), body_len bytes */
    size_t body_len;
    uint64_t pattern_len;  /* /bytes/N: the body is N bytes of the pattern, streamed, not copied */
    const char *allow;     /* the Allow header of a 405, else NULL */
    bool head_only;        /* HEAD: Content-Length as for GET, no body */
    bool close;            /* the server closes the connection after this response */
    bool keep_alive_10;    /* an HTTP/1.0 keep-alive request: say "Connection: keep-alive" */
};

/* Answers one complete request whose body (content_length bytes) is at body. /cpu and /sleep do
 * their work here, in the calling thread. */
void handler_respond(const struct http_request *request, const char *body, struct response *response);

/* Whether the request takes a route that blocks the calling thread (/cpu, /sleep), which a
 * server may run on another thread (conn.h's offloading). */
bool handler_blocks(const struct http_request *request);

/* The response refusing a request with an error status (400, 408, 413, ...): short text body, and
 * the connection closes. */
void handler_refuse(int status, struct response *response);

/* Writes the status line and headers, ending with the empty line, into dst (RESPONSE_HEAD_MAX
 * bytes); returns their length. */
size_t handler_format_head(const struct response *response, char *dst);

/* A pointer to the /bytes body from byte `offset` on, valid for *len bytes (at most a fixed chunk,
 * no more than `remaining`). */
const char *handler_pattern_at(uint64_t offset, uint64_t remaining, size_t *len);

#endif
