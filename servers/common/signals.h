/* signals.h - SIGPIPE ignored, SIGTERM and SIGINT turned into a flag every loop polls. */
#ifndef C10K_SIGNALS_H
#define C10K_SIGNALS_H

#include <signal.h>

/* Set by SIGTERM or SIGINT. Every blocking call in a server is bounded (250 ms at most), so every
 * thread sees the flag and the server is gone within a second. */
extern volatile sig_atomic_t server_stopping;

/* Installs the handlers without SA_RESTART, so a blocked call returns EINTR at once in the thread
 * that took the signal. */
void signals_install(void);

#endif
