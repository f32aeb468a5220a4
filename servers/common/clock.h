/* clock.h - the two clocks a server needs: monotonic seconds for deadlines, and the Date header. */
#ifndef C10K_CLOCK_H
#define C10K_CLOCK_H

#define HTTP_DATE_LEN 29 /* "Tue, 24 Nov 2026 10:51:20 GMT" */

/* Seconds on a monotonic clock. Coarse (a few milliseconds), which is plenty for deadlines of
 * seconds and costs no system call. */
double clock_now(void);

/* The same clock to the microsecond, for the rare wait shorter than clock_now() can tell. No
 * system call either (the vDSO reads it). */
double clock_now_precise(void);

/* The current time as an IMF-fixdate, formatted at most once per second per thread. */
const char *clock_http_date(void);

#endif
