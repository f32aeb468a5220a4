/* scheduler.c - see scheduler.h. One thread runs the processes; a process that waits for a socket
 * is on the io list with its deadline, one that waits for a channel is on no list at all (the
 * channel holds it), and one that may run is on the ready queue. Other threads make a process
 * ready through a locked queue and an eventfd in the epoll set. */
#include "scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "coro.h"
#include "log.h"
#include "signals.h"

#define MAX_EVENTS 256
#define WAIT_MS 250        /* so SIGTERM is never more than this late */
#define SWEEP_SECONDS 0.25 /* how often the io list is looked through for passed deadlines */

struct proc {
    struct coro *coro;
    struct proc *next;          /* in the ready queue */
    struct proc *io_prev, *io_next; /* in the io list, while waiting in proc_wait_fd() */
    int fd;                     /* the descriptor this process has registered with epoll, or -1 */
    uint32_t registered;        /* the events epoll watches for on it; 0: disarmed */
    uint32_t wanted;            /* what proc_wait_fd() waits for */
    double deadline;
    bool waiting_io;
    enum proc_wait woken_by;    /* how the wait ended */
};

struct proc_queue {
    struct proc *head, *tail;
};

static int epoll_fd = -1;
static int wake_fd = -1;
static struct proc_queue ready;          /* the scheduler thread's own */
static struct proc_queue remote_ready;   /* made ready by other threads, under remote_lock */
static pthread_mutex_t remote_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool wake_pending;         /* wake_fd written and not yet read */
static struct proc io_list;              /* sentinel of the io waiters' list */
static size_t live_procs;
static double next_sweep;
static _Thread_local struct proc *running; /* NULL on every other thread */
static pthread_t scheduler_thread;

static void queue_push(struct proc_queue *queue, struct proc *proc)
{
    proc->next = NULL;
    if (queue->tail == NULL)
        queue->head = proc;
    else
        queue->tail->next = proc;
    queue->tail = proc;
}

static struct proc *queue_pop(struct proc_queue *queue)
{
    struct proc *proc = queue->head;
    if (proc != NULL) {
        queue->head = proc->next;
        if (queue->head == NULL)
            queue->tail = NULL;
    }
    return proc;
}

void scheduler_init(void)
{
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        die("epoll_create1: %m");
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0)
        die("eventfd: %m");
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event) != 0)
        die("epoll_ctl(ADD eventfd): %m");
    io_list.io_prev = io_list.io_next = &io_list;
    scheduler_thread = pthread_self();
}

struct proc *proc_spawn(void (*body)(void *arg), void *arg, size_t stack_bytes)
{
    struct proc *proc = calloc(1, sizeof *proc);
    if (proc == NULL)
        die("out of memory for a process");
    proc->coro = coro_create(stack_bytes, body, arg);
    if (proc->coro == NULL)
        die("no memory for a process's stack of %zu bytes: %m", stack_bytes);
    proc->fd = -1;
    live_procs++;
    queue_push(&ready, proc);
    return proc;
}

struct proc *proc_current(void)
{
    return running;
}

void proc_park(void)
{
    coro_yield();
}

void proc_ready(struct proc *proc)
{
    if (pthread_equal(pthread_self(), scheduler_thread)) {
        queue_push(&ready, proc);
        return;
    }
    if (pthread_mutex_lock(&remote_lock) != 0)
        die("pthread_mutex_lock failed");
    queue_push(&remote_ready, proc);
    pthread_mutex_unlock(&remote_lock);
    /* One write per sleep of the scheduler is enough: it reads the eventfd, then takes the whole
     * remote queue. The exchange is after the push, so a scheduler that cleared the flag will
     * find the push when it locks the queue. */
    if (!atomic_exchange(&wake_pending, true)) {
        uint64_t one = 1;
        if (write(wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_error("write(eventfd): %m");
    }
}

void proc_yield(void)
{
    queue_push(&ready, running);
    coro_yield();
}

/* --- waiting for sockets -------------------------------------------------------------------------- */

static void io_list_remove(struct proc *proc)
{
    proc->io_prev->io_next = proc->io_next;
    proc->io_next->io_prev = proc->io_prev;
    proc->waiting_io = false;
}

static void wake_from_io(struct proc *proc, enum proc_wait woken_by)
{
    io_list_remove(proc);
    proc->woken_by = woken_by;
    queue_push(&ready, proc);
}

enum proc_wait proc_wait_fd(int fd, uint32_t events, double deadline)
{
    struct proc *self = running;
    if (server_stopping)
        return PROC_STOPPING;
    if (self->fd != fd && self->fd >= 0)
        proc_forget_fd(self->fd, false);
    if (self->fd != fd || self->registered != events) {
        struct epoll_event event = {.events = events, .data.ptr = self};
        int op = self->fd == fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(epoll_fd, op, fd, &event) != 0) {
            log_error("epoll_ctl(%s): %m", op == EPOLL_CTL_ADD ? "ADD" : "MOD");
            return PROC_UNWATCHED;
        }
        self->fd = fd;
        self->registered = events;
    }
    self->wanted = events;
    self->deadline = deadline;
    self->waiting_io = true;
    self->io_next = &io_list;
    self->io_prev = io_list.io_prev;
    io_list.io_prev->io_next = self;
    io_list.io_prev = self;
    coro_yield();
    return self->woken_by;
}

void proc_forget_fd(int fd, bool will_close)
{
    struct proc *self = running;
    if (self->fd != fd)
        return;
    /* Closing the descriptor takes it out of the epoll set, so a descriptor about to be closed
     * costs no system call here. */
    if (!will_close && epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL) != 0)
        log_error("epoll_ctl(DEL): %m");
    self->fd = -1;
    self->registered = 0;
}

/* An event for a process that is not waiting for its socket now (it is waiting for a channel):
 * level-triggered epoll would report it on every turn, so the socket is disarmed until the
 * process waits for it again. */
static void disarm(struct proc *proc)
{
    struct epoll_event event = {.events = 0, .data.ptr = proc};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, proc->fd, &event) != 0)
        log_error("epoll_ctl(MOD, disarm): %m");
    proc->registered = 0;
}

static void sweep_deadlines(double now)
{
    bool stopping = server_stopping;
    for (struct proc *proc = io_list.io_next, *next; proc != &io_list; proc = next) {
        next = proc->io_next;
        if (stopping)
            wake_from_io(proc, PROC_STOPPING);
        else if (proc->deadline > 0 && proc->deadline <= now)
            wake_from_io(proc, PROC_DEADLINE);
    }
}

/* --- the scheduler's loop ---------------------------------------------------------------------------- */

static void run_ready(void)
{
    struct proc *proc;
    while ((proc = queue_pop(&ready)) != NULL) {
        running = proc;
        bool finished = coro_resume(proc->coro);
        running = NULL;
        if (finished) {
            coro_destroy(proc->coro);
            free(proc);
            live_procs--;
        }
    }
}

static void take_remote_ready(void)
{
    atomic_store(&wake_pending, false);
    if (pthread_mutex_lock(&remote_lock) != 0)
        die("pthread_mutex_lock failed");
    struct proc *proc;
    while ((proc = queue_pop(&remote_ready)) != NULL)
        queue_push(&ready, proc);
    pthread_mutex_unlock(&remote_lock);
}

static int wait_ms(double now)
{
    if (ready.head != NULL)
        return 0;
    double until_sweep = next_sweep - now;
    int ms = until_sweep <= 0 ? 0 : (int)(until_sweep * 1000) + 1;
    return ms < WAIT_MS ? ms : WAIT_MS;
}

void scheduler_run(void)
{
    struct epoll_event events[MAX_EVENTS];
    next_sweep = clock_now() + SWEEP_SECONDS;
    while (live_procs > 0) {
        run_ready();
        if (live_procs == 0)
            break;
        int count = epoll_wait(epoll_fd, events, MAX_EVENTS, wait_ms(clock_now()));
        if (count < 0 && errno != EINTR)
            die("epoll_wait: %m");
        for (int i = 0; i < count; i++) {
            struct proc *proc = events[i].data.ptr;
            if (proc == NULL) {
                uint64_t value;
                if (read(wake_fd, &value, sizeof value) < 0 && errno != EAGAIN)
                    log_error("read(eventfd): %m");
                take_remote_ready();
            } else if (proc->waiting_io) {
                wake_from_io(proc, PROC_READY);
            } else if (proc->registered != 0) {
                disarm(proc);
            }
        }
        double now = clock_now();
        if (server_stopping || now >= next_sweep) {
            sweep_deadlines(now);
            next_sweep = now + SWEEP_SECONDS;
        }
    }
}

void scheduler_free(void)
{
    coro_free_spares();
    if (wake_fd >= 0)
        close(wake_fd);
    if (epoll_fd >= 0)
        close(epoll_fd);
    wake_fd = epoll_fd = -1;
}
