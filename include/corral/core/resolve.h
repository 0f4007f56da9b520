/*
 * resolve.h: a host name to one socket address (getaddrinfo: /etc/hosts, then DNS), for upstream.url. Blocking:
 * call it only off the event loops (config load, the upstream resolver thread: fill/upstream_resolver.h).
 */
#ifndef CORRAL_CORE_RESOLVE_H
#define CORRAL_CORE_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>

/* Resolves host (a name; numeric addresses work too) for TCP port `port` into *ss / *sslen: the first IPv4 address
 * when there is one (a dual-stack name's IPv6 address is not tried first: sidecars commonly reach an IPv4 Service),
 * else the first IPv6 one. Returns 0, or -1 with *why set to a static reason (gai_strerror or "no address"). */
int cr_resolve_host(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *sslen, const char **why);

#endif
