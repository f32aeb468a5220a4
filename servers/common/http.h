/* http.h - the incremental HTTP/1.x request parser shared by every server.
 *
 * Shaped like picohttpparser: it allocates nothing, reads only the caller's buffer, and never
 * rescans what it already searched (the caller keeps *scanned between calls). The same call
 * serves a blocking server that read() some bytes and an event loop that was told a descriptor
 * is readable. See docs/protocol.md for every rule it enforces. */
#ifndef C10K_HTTP_H
#define C10K_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEAD_BYTES 8192         /* request line + headers + empty line */
#define HTTP_MAX_BODY_BYTES (1u << 20)   /* Content-Length limit: 1 MiB */

/* http_parse_request() result when the head has not fully arrived yet. */
#define HTTP_NEED_MORE 0

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_OTHER, /* a valid token we do not serve: answered 405 */
};

/* What the servers need to know about one request. The pointers point into the caller's buffer. */
struct http_request {
    enum http_method method;
    const char *method_name;
    size_t method_len;
    const char *target; /* origin form, starts with '/' */
    size_t target_len;
    int minor_version;  /* HTTP/1.0 or HTTP/1.1 */
    size_t content_length;
    bool keep_alive;    /* from the version and the Connection header */
};

/* Parses the request head at the start of buf[0..len).
 * Returns the head's length in bytes (> 0) when it is complete and valid, HTTP_NEED_MORE when
 * more bytes are needed, or -STATUS (-400, -413, -431, -501, -505) when the request must be
 * refused with that status. *scanned is how far an earlier call searched for the end of the head;
 * set it to 0 for each new request and pass it back unchanged while the answer is HTTP_NEED_MORE. */
int http_parse_request(const char *buf, size_t len, size_t *scanned, struct http_request *req);

/* The reason phrase of a status code ("Not Found"), or "Unknown". */
const char *http_reason(int status);

#endif
