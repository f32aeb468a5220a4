/* http_syntax.h - the lexical rules of HTTP/1.1 that a request and a response share (RFC 9110
 * 5.5 and 5.6.2, RFC 9112 5): token characters, field-value characters, case-insensitive names,
 * and the shape of a field line. Used by the servers' request parser (http.c) and by loadgen's
 * response parser (harness/http_response.c); header-only, so loadgen needs none of the servers'
 * objects. */
#ifndef C10K_HTTP_SYNTAX_H
#define C10K_HTTP_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

/* tchar, as a table: every byte of every method, header name and list token is looked up. */
static const bool http_token_chars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static inline bool http_is_token_char(unsigned char c)
{
    return http_token_chars[c];
}

/* A field value (or a reason phrase) may hold HTAB, SP, visible ASCII and obs-text (0x80-0xFF),
 * never another control character. */
static inline bool http_is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Whether name[0..len) equals lowercase_name, ignoring the case of name. */
static inline bool http_name_equals(const char *name, size_t len, const char *lowercase_name)
{
    size_t i;
    for (i = 0; i < len; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (lowercase_name[i] == '\0' || c != lowercase_name[i])
            return false;
    }
    return lowercase_name[i] == '\0';
}

enum http_field_line_result {
    HTTP_FIELD_LINE_OK,
    HTTP_FIELD_LINE_BAD_NAME,  /* no token before the colon: also obs-fold and space before ':' */
    HTTP_FIELD_LINE_BAD_VALUE, /* a control character in the value */
};

/* Splits a field line (without its CRLF), "name: OWS value OWS", into its name (line[0..*name_len))
 * and its value without the surrounding whitespace (*value, *value_len). */
static inline enum http_field_line_result http_split_field_line(const char *line, size_t len, size_t *name_len,
                                                                 const char **value, size_t *value_len)
{
    size_t name_end = 0;
    while (name_end < len && http_is_token_char((unsigned char)line[name_end]))
        name_end++;
    if (name_end == 0 || name_end == len || line[name_end] != ':')
        return HTTP_FIELD_LINE_BAD_NAME;
    size_t start = name_end + 1, end = len;
    while (start < len && (line[start] == ' ' || line[start] == '\t'))
        start++;
    while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    for (size_t i = start; i < end; i++)
        if (!http_is_field_char((unsigned char)line[i]))
            return HTTP_FIELD_LINE_BAD_VALUE;
    *name_len = name_end;
    *value = line + start;
    *value_len = end - start;
    return HTTP_FIELD_LINE_OK;
}

#endif
