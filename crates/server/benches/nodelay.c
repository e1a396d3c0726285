/* LD_PRELOAD shim for `make bench`: sets TCP_NODELAY on every socket a server accepts. The reference server
 * (s3s-fs) does not, so without it Nagle's algorithm, not the server, decides its small-request figures; the gateway
 * sets TCP_NODELAY itself. Built by the Makefile; never part of the gateway. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int with_nodelay(int fd) {
    if (fd >= 0) {
        int one = 1;
        /* Fails harmlessly on sockets that are not TCP. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    return with_nodelay(real(fd, addr, len));
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    return with_nodelay(real(fd, addr, len, flags));
}
