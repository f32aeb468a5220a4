/* accept_hold.c - see accept_hold.h. */
#include "accept_hold.h"

#include <sys/epoll.h>

#include "clock.h"
#include "log.h"
#include "options.h"

#define MAX_ACCEPTS_PER_REPORT 16
#define HOLDS_SKIPPED_AFTER_ONE_RUNS_OUT 10

void accept_hold_init(struct accept_hold *hold, int epoll_fd, int listen_fd, int hold_us,
                      accept_one_fn *accept_one)
{
    *hold = (struct accept_hold){
        .epoll_fd = epoll_fd, .listen_fd = listen_fd, .hold_us = hold_us, .accept_one = accept_one,
        .number = 1, /* 0 marks a connection that holds nothing */
    };
}

static void watch_listener(struct accept_hold *hold, bool watched)
{
    struct epoll_event event = {.events = watched ? EPOLLIN : 0, .data.fd = hold->listen_fd};
    if (epoll_ctl(hold->epoll_fd, EPOLL_CTL_MOD, hold->listen_fd, &event) != 0)
        die("epoll_ctl(MOD listen): %m");
    hold->on = !watched;
}

void accept_hold_silent(struct accept_hold *hold, unsigned *mark)
{
    *mark = hold->number;
    hold->silent++;
}

void accept_hold_spoke(struct accept_hold *hold, unsigned *mark)
{
    if (*mark == hold->number)
        hold->silent--;
    *mark = 0;
}

/* One accept per report of the listening socket: level-triggered epoll reports it again while
 * connections wait, and an accept that finds none costs almost as much as one that finds one (the
 * kernel makes the new socket and file before it looks at the queue). Accepting until EAGAIN cost
 * 0.65 such empty accepts per connection in churn. A connection answered and closed within its
 * accept is a sign that more have come meanwhile: then the next accept is cheaper than the next
 * turn of the loop, up to a bound that keeps the other connections' turn near. After a hold that
 * ran out the queue may have filled, and waiting again would only let it fill more: then take
 * everyone waiting, holding for none of them. */
static void accept_clients(struct accept_hold *hold, bool after_hold)
{
    int limit = after_hold ? server_options.backlog : MAX_ACCEPTS_PER_REPORT;
    bool may_hold = hold->hold_us > 0 && !after_hold && clock_now() >= hold->none_before;
    for (int accepted = 0; accepted < limit; accepted++) {
        enum accepted result = hold->accept_one(hold->listen_fd, may_hold);
        if (result == ACCEPTED_NONE || (result == ACCEPTED_REGISTERED && !after_hold))
            break;
    }
    if (hold->silent > 0) {
        if (!hold->on)
            watch_listener(hold, false);
        hold->until = clock_now_precise() + hold->hold_us / 1e6;
    }
}

void accept_hold_accept(struct accept_hold *hold)
{
    accept_clients(hold, false);
}

int accept_hold_check(struct accept_hold *hold, int wait_ms)
{
    if (hold->silent == 0) {
        /* They spoke, and the next connections have likely come meanwhile, and spoken too: take
         * them without asking epoll first. One of them that is silent holds the listener again.
         * (Re-watching and waiting for epoll's report cost 0.3 calls more per connection.) */
        accept_clients(hold, false);
        if (hold->silent == 0)
            watch_listener(hold, true);
    }
    if (!hold->on)
        return wait_ms;
    double now = clock_now_precise();
    if (now < hold->until) {
        int left_ms = (int)((hold->until - now) * 1000) + 1;
        return left_ms < wait_ms ? left_ms : wait_ms;
    }
    hold->none_before = now + HOLDS_SKIPPED_AFTER_ONE_RUNS_OUT * hold->hold_us / 1e6;
    if (++hold->number == 0)
        hold->number = 1;
    hold->silent = 0;
    watch_listener(hold, true);
    accept_clients(hold, true);
    return wait_ms;
}
