/* log.c - diagnostics. A whole line goes out in one write so lines from threads do not mix. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "options.h"

static void log_line(const char *format, va_list args)
{
    char line[1024];
    int prefix = snprintf(line, sizeof line, "c10k-%s: ", server_options.name ? server_options.name : "server");
    int body = vsnprintf(line + prefix, sizeof line - (size_t)prefix - 1, format, args);
    size_t len = (size_t)prefix + (body < 0 ? 0 : (size_t)body);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* Nothing sensible is left to do if stderr itself fails. */
    if (write(STDERR_FILENO, line, len) < 0)
        return;
}

void log_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line(format, args);
    va_end(args);
}

void die(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line(format, args);
    va_end(args);
    exit(1);
}
