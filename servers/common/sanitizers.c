/* sanitizers.c - defaults for the sanitizer builds (make SANITIZE=...); empty otherwise.
 *
 * ThreadSanitizer sleeps a second in exit() whenever another thread still exists, to catch
 * races at exit. A detached connection thread that has done its work and counted itself out
 * (threads.c) may not have finished exiting when main returns, so that sleep would break the
 * promise that SIGTERM ends a server within a second, in exactly the build meant to check it. */
#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "atexit_sleep_ms=0";
}
#else
typedef int sanitizers_c_is_empty_without_tsan; /* ISO C forbids an empty translation unit */
#endif
