/* unit_check.h - the check of the C unit tests (test_conn, test_coro, test_chan): one line
 * "PASS name" or "FAIL name: why" per check, counted for the closing "N passed, N failed" that
 * unit_check_summary() prints (its value is the exit status). Included by one file per test. */
#ifndef C10K_UNIT_CHECK_H
#define C10K_UNIT_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int passed, failed;

__attribute__((format(printf, 3, 4)))
static void check(bool ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("PASS %s\n", name);
        passed++;
        return;
    }
    printf("FAIL %s: ", name);
    va_list args;
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
    failed++;
}

static int unit_check_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
