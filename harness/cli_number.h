/* cli_number.h - a bounded decimal number from the command line, for the harness's small tools
 * (bin/coro-switch, bin/ring-bench, bin/conn-cost), which each answer a bad one with their own
 * usage message and exit status 2. */
#ifndef C10K_CLI_NUMBER_H
#define C10K_CLI_NUMBER_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* True and *value set when text starts with a decimal number in [low, high] that is followed by
 * the end of the string or, when separator is not '\0', by that separator (a list: "10,100"). */
static inline bool cli_number(const char *text, long low, long high, char separator, long *value)
{
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (errno != 0 || end == text || (*end != '\0' && (separator == '\0' || *end != separator)) ||
        parsed < low || parsed > high)
        return false;
    *value = parsed;
    return true;
}

#endif
