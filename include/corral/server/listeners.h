/*
 * listeners.h: listening sockets and accept loops (listeners.c), for server.c.
 */
#ifndef CORRAL_LISTENERS_H
#define CORRAL_LISTENERS_H

#include <h2o.h>
#include <sys/socket.h>

#include "corral/core/runtime.h"

/* Opens a listening socket (SO_REUSEADDR, SO_REUSEPORT, TCP_NODELAY); returns the fd or -1 with errno set. */
int cr_listener_open(const struct sockaddr_storage *addr, socklen_t addrlen);

/* Claims an address for this process before its first socket is opened (see listeners.c). Returns the claim's
 * descriptor (close it to release the claim; -1: none could be made, warned) or -2 with errbuf = "cannot listen on
 * ADDRESS<what>: ..." ("in use" when another process holds it). */
int cr_listener_claim(const struct sockaddr_storage *addr, socklen_t addrlen, const char *address, const char *what,
                      char *errbuf, size_t errbufsize);

/* Starts accepting on fd on thread t's loop; `counted`: its connections count toward limits.connections. On t. */
h2o_socket_t *cr_listener_start(cr_thread_t *t, int fd, h2o_accept_ctx_t *accept_ctx, int counted);

/* Closes the listener in *slot (if any) and clears it. On the thread that started it. */
void cr_listener_stop(h2o_socket_t **slot);

#endif
