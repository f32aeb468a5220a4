/* log.h - one-line diagnostics on stderr, prefixed with the server's name. */
#ifndef C10K_LOG_H
#define C10K_LOG_H

/* Prints "c10k-NAME: message" on stderr. */
void log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* The same, then exits with status 1: for failures the server cannot run without. */
void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
