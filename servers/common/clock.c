/* clock.c - see clock.h. */
#include "clock.h"

#include <time.h>

double clock_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

double clock_now_precise(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

const char *clock_http_date(void)
{
    /* Per thread, so threaded servers format without a lock; a second's worth of responses share
     * one strftime. */
    static _Thread_local char date[HTTP_DATE_LEN + 1];
    static _Thread_local time_t date_second = -1;
    time_t now = time(NULL);
    if (now != date_second) {
        struct tm utc;
        gmtime_r(&now, &utc);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
        date_second = now;
    }
    return date;
}
