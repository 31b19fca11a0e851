/* Experiment for docs/PERFORMANCE.md: set TCP_NODELAY on every socket a process accept()s.
 * rumqttd 0.20 (the embedded broker) never sets it, so its small writes to a client wait for the client's
 * delayed ACK (Nagle). Preloading this into greenhoused shows what a one-line rumqttd fix would gain:
 *   cc -shared -fPIC -O2 -o /tmp/nodelay-preload.so scripts/nodelay-preload.c -ldl
 *   BENCH_DAEMON_PRELOAD=/tmp/nodelay-preload.so target/release/examples/bench --only embedded
 * Not part of the product. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
    int one = 1;
    if (fd >= 0) {
        /* Fails harmlessly (ENOTSUP/EOPNOTSUPP) on non-TCP sockets. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

int accept(int s, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int fd = real(s, addr, len);
    nodelay(fd);
    return fd;
}

int accept4(int s, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int fd = real(s, addr, len, flags);
    nodelay(fd);
    return fd;
}
