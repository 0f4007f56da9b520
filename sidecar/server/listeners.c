/*
 * listeners.c: listening sockets and their accept loops, for server.c: opening one (SO_REUSEPORT, one socket per
 * thread and address), claiming an address for this process before the first is opened, and accepting (the
 * connection cap, pauses when descriptors run out).
 *
 * Invariants: a listener (cr_listener_t, the h2o socket's data) belongs to the thread whose loop it was started on;
 * start and stop run there. listeners_in_episode is the only process-wide state (atomic).
 */
#include "corral/server/listeners.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "corral/core/log.h"
#include "corral/server/conn_watch.h"

/* Opens a listening socket; returns the fd or -1 with errno set. */
int cr_listener_open(const struct sockaddr_storage *addr, socklen_t addrlen)
{
    int fd, on = 1;
    if ((fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 || bind(fd, (const void *)addr, addrlen) != 0 ||
        listen(fd, H2O_SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    return fd;
}

/*
 * SO_REUSEPORT would let a second corral (or any process of the same user that sets it) bind an address this one
 * serves, and the kernel would split the traffic between two caches. Before the first listening socket of an address
 * is opened, claim it twice:
 *   - a lock that exists while this process lives: an abstract-namespace unix socket named after the address (bound
 *     by one process at a time, released by the kernel when the process dies), so two corrals starting at the same
 *     moment cannot both pass;
 *   - a probe: a TCP socket bound to the address WITHOUT SO_REUSEPORT (SO_REUSEADDR, so connections in TIME_WAIT from
 *     an earlier run do not count) fails with EADDRINUSE while any other socket listens there (also a wildcard
 *     address on the same port), and is closed at once, before corral's own per-thread sockets are opened.
 * Returns the lock's descriptor (-1 when the lock could not be made for another reason than a holder: warned, the
 * address is only probed), or -2 with errbuf = "cannot listen on ADDRESS: address already in use by another
 * process" (the words "in use" are what the e2e harness looks for to retry on another port).
 */
int cr_listener_claim(const struct sockaddr_storage *addr, socklen_t addrlen, const char *address, const char *what,
                      char *errbuf, size_t errbufsize)
{
    struct sockaddr_un un;
    char host[NI_MAXHOST];
    int lock, fd, on = 1, len, saved;

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    if (getnameinfo((const void *)addr, addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(host, sizeof(host), "%s", address);
    len = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "corral-listen %s %d", host, h2o_socket_getport((void *)addr));
    if ((lock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        bind(lock, (void *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len)) != 0) {
        saved = errno;
        if (lock != -1)
            close(lock);
        lock = -1;
        if (saved == EADDRINUSE) {
            snprintf(errbuf, errbufsize, "cannot listen on %s%s: address already in use by another corral process", address, what);
            return -2;
        }
        cr_log_warn("%s%s: cannot take the per-address lock (%s); checking the address only", address, what, strerror(saved));
    }
    /* else the lock stays open (and bound) until the caller closes it (the process exits, or a reload removes it) */

    if ((fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        snprintf(errbuf, errbufsize, "cannot listen on %s%s: %s", address, what, strerror(errno));
        goto Error;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, (const void *)addr, addrlen) != 0) {
        saved = errno;
        close(fd);
        if (saved == EADDRINUSE)
            snprintf(errbuf, errbufsize, "cannot listen on %s%s: address already in use by another process", address, what);
        else
            snprintf(errbuf, errbufsize, "cannot listen on %s%s: %s", address, what, strerror(saved));
        goto Error;
    }
    close(fd);
    return lock;
Error:
    if (lock != -1)
        close(lock);
    return -2;
}

/*
 * A listener and its accept loop. Each accepted socket goes through cr_conn_admit (the connection cap; a refused one
 * is closed at once) before h2o_accept. When accept fails for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM, or an error that is not about one connection) the pending connection stays in the kernel's queue, and the
 * level-triggered poll would report the listener readable again at once: the listener stops reading for
 * CR_ACCEPT_PAUSE_MS instead and then tries again (nginx does the same). An episode lasts until the listener has
 * emptied its queue (accept says EAGAIN), so a descriptor freed now and then does not end it; an episode's accept loop
 * that stops at its batch size looks again from a zero timeout, since an emptied queue would never poll readable to
 * show that EAGAIN. One warning when the
 * first listener of the process enters an episode, one info line when the last one leaves it; pauses are counted.
 */
#define CR_ACCEPT_PAUSE_MS 100

typedef struct st_cr_listener_t {
    h2o_socket_t *sock;
    h2o_accept_ctx_t *accept_ctx;
    cr_thread_t *thread;
    int counted;                 /* a traffic listener: its connections count toward limits.connections */
    int in_episode;              /* accept failed for lack of resources and the queue has not been emptied since */
    uint64_t episode_started_ms;
    uint64_t pauses;             /* in this episode */
    h2o_timeout_entry_t resume;  /* linked while paused */
    h2o_timeout_entry_t recheck; /* linked when an episode's accept loop stopped at its batch size (see on_accept) */
} cr_listener_t;

static unsigned listeners_in_episode; /* atomic, process-wide */

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_resume_accept(h2o_timeout_entry_t *entry)
{
    cr_listener_t *l = H2O_STRUCT_FROM_MEMBER(cr_listener_t, resume, entry);
    h2o_socket_read_start(l->sock, on_accept);
    /* try at once: with SO_REUSEPORT this listener's own queue may stay empty (the kernel gave the new connections to
     * another thread's), and only an accept that says EAGAIN ends its episode (and the process-wide one) */
    on_accept(l->sock, NULL);
}

static void on_recheck_accept(h2o_timeout_entry_t *entry)
{
    cr_listener_t *l = H2O_STRUCT_FROM_MEMBER(cr_listener_t, recheck, entry);
    if (h2o_socket_is_reading(l->sock))
        on_accept(l->sock, NULL);
}

static void pause_listener(cr_listener_t *l, int err)
{
    h2o_loop_t *loop = l->thread->ctx.loop;
    CR_STAT_INC(l->thread->stats, accept_pauses);
    if (!l->in_episode) {
        l->in_episode = 1;
        l->episode_started_ms = h2o_now(loop);
        l->pauses = 0;
        if (__atomic_fetch_add(&listeners_in_episode, 1, __ATOMIC_ACQ_REL) == 0)
            cr_log_warn("accept: %s (%zu client connections open); pausing the listeners for %d ms at a time until "
                        "a connection can be accepted",
                        strerror(err), cr_connections_open(), CR_ACCEPT_PAUSE_MS);
    }
    ++l->pauses;
    h2o_socket_read_stop(l->sock);
    h2o_timeout_link(loop, cr_thread_timeout(l->thread, CR_ACCEPT_PAUSE_MS), &l->resume);
}

static void end_episode(cr_listener_t *l)
{
    l->in_episode = 0;
    if (__atomic_sub_fetch(&listeners_in_episode, 1, __ATOMIC_ACQ_REL) == 0)
        cr_log_info("accept: accepting connections again after %llu ms (%llu pauses of %d ms)",
                    (unsigned long long)(h2o_now(l->thread->ctx.loop) - l->episode_started_ms), (unsigned long long)l->pauses,
                    CR_ACCEPT_PAUSE_MS);
}

/* accept(2) errors that concern one connection only (accept(2), "Error handling"): take the next one. */
static int accept_error_is_transient(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return 1;
    default:
        return 0;
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    cr_listener_t *l = listener->data;
    h2o_socket_t *sock;
    int i;
    if (err != NULL)
        return;
    for (i = 0; i != 32; ++i) {
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (l->in_episode) /* the queue is empty: the shortage is over (one fd freed now and then is not) */
                    end_episode(l);
                break;
            }
            if (accept_error_is_transient(errno))
                continue;
            pause_listener(l, errno);
            return;
        }
        if (cr_conn_admit(l->thread, sock, l->counted) != 0) {
            h2o_socket_close(sock);
            continue;
        }
        h2o_accept(l->accept_ctx, sock);
    }
    /* A full batch says nothing about the queue. Were it empty now, the level-triggered poll would not call back and
     * an episode could never see the EAGAIN that ends it: look again from the next loop turn. */
    if (i == 32 && l->in_episode && !h2o_timeout_is_linked(&l->recheck))
        h2o_timeout_link(l->thread->ctx.loop, cr_thread_timeout(l->thread, 0), &l->recheck);
}

h2o_socket_t *cr_listener_start(cr_thread_t *t, int fd, h2o_accept_ctx_t *accept_ctx, int counted)
{
    cr_listener_t *l = calloc(1, sizeof(*l));
    assert(l != NULL);
    l->sock = h2o_evloop_socket_create(t->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->accept_ctx = accept_ctx;
    l->thread = t;
    l->counted = counted;
    l->resume.cb = on_resume_accept;
    l->recheck.cb = on_recheck_accept;
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
    return l->sock;
}

/* Closes the listener in *slot (if any) and clears it; a pending resume is cancelled first. */
void cr_listener_stop(h2o_socket_t **slot)
{
    cr_listener_t *l;
    if (*slot == NULL)
        return;
    l = (*slot)->data;
    h2o_timeout_unlink(&l->resume);
    h2o_timeout_unlink(&l->recheck);
    if (l->in_episode)
        __atomic_sub_fetch(&listeners_in_episode, 1, __ATOMIC_ACQ_REL);
    if (h2o_socket_is_reading(l->sock))
        h2o_socket_read_stop(l->sock);
    h2o_socket_close(l->sock);
    free(l);
    *slot = NULL;
}
