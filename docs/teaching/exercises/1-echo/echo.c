/* echo.c - a line echo server on select(2), for exercise 1 (README.md in this folder).
 *
 *     echo PORT
 *
 * Every line a client sends (up to 4 KiB, ended by '\n') is sent back to it. The line "date\n" is
 * answered by running /bin/date in a child process whose output goes to the client. One thread
 * serves every client: select says which sockets have input, and the loop reads and answers.
 * The client sockets are nonblocking, so that no read or write can stop the loop.
 *
 * This file works for one polite client at a time and has six bugs that appear under load. Find
 * and fix them; `make grade EX=1` tells you how many are left. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static char partial[FD_SETSIZE][LINE_MAX_BYTES]; /* a line not yet ended, per descriptor */
static size_t partial_len[FD_SETSIZE];

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0) {
        perror("bind/listen");
        exit(1);
    }
    return fd;
}

/* Sends the output of /bin/date to the client. */
static void run_date(int fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        execl("/bin/date", "date", (char *)NULL);
        _exit(127);
    }
}

static void answer_line(int fd, const char *line, size_t len)
{
    if (len == 5 && memcmp(line, "date\n", 5) == 0) {
        run_date(fd);
        return;
    }
    write(fd, line, len);
}

/* Reads what the client sent and answers every complete line. */
static int serve_input(int fd)
{
    char buffer[65536];
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EAGAIN)
        return 0; /* nothing after all */
    if (n <= 0)
        return -1; /* the client is gone */
    for (ssize_t i = 0; i < n; i++) {
        if (partial_len[fd] < LINE_MAX_BYTES)
            partial[fd][partial_len[fd]++] = buffer[i];
        if (buffer[i] == '\n') {
            answer_line(fd, partial[fd], partial_len[fd]);
            partial_len[fd] = 0;
        }
    }
    /* A line begun: wait here for the rest of it, so that it is answered whole. */
    while (partial_len[fd] > 0 && partial[fd][partial_len[fd] - 1] != '\n') {
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EAGAIN)
            continue; /* the rest is on its way */
        if (got != 1)
            return -1;
        if (partial_len[fd] < LINE_MAX_BYTES)
            partial[fd][partial_len[fd]++] = c;
        if (c == '\n') {
            answer_line(fd, partial[fd], partial_len[fd]);
            partial_len[fd] = 0;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: echo PORT\n");
        return 2;
    }
    int listen_fd = listen_on(atoi(argv[1]));
    printf("listening on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);

    fd_set clients;
    FD_ZERO(&clients);
    int max_fd = listen_fd;
    for (;;) {
        fd_set readable = clients;
        FD_SET(listen_fd, &readable);
        if (select(max_fd + 1, &readable, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            perror("select");
            return 1;
        }
        if (FD_ISSET(listen_fd, &readable)) {
            int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK);
            if (fd >= 0) {
                FD_SET(fd, &clients);
                partial_len[fd] = 0;
                if (fd > max_fd)
                    max_fd = fd;
            }
        }
        for (int fd = 0; fd <= max_fd; fd++) {
            if (fd != listen_fd && FD_ISSET(fd, &readable) && serve_input(fd) < 0)
                FD_CLR(fd, &clients);
        }
    }
}
