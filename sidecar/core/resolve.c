/*
 * resolve.c: cr_resolve_host (resolve.h), getaddrinfo with IPv4 preferred.
 *
 * Invariants: blocking (never called on an event loop), reentrant (getaddrinfo is thread-safe), no state.
 */
#include "corral/core/resolve.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

int cr_resolve_host(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *sslen, const char **why)
{
    struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
    char portstr[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        *why = gai_strerror(rc);
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(*ss) || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
            continue;
        if (pick == NULL || (ai->ai_family == AF_INET && pick->ai_family != AF_INET))
            pick = ai;
    }
    if (pick == NULL) {
        freeaddrinfo(res);
        *why = "no address";
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *sslen = (socklen_t)pick->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
