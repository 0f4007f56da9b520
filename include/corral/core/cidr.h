/*
 * cidr.h: client networks ("10.0.0.0/8", "::1/128", "127.0.0.1") and whether an address is in one.
 *
 * An IPv4 network also holds IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, as a dual-stack listener reports them).
 * Pure functions: no locks, no global state.
 */
#ifndef CORRAL_CIDR_H
#define CORRAL_CIDR_H

#include <stdint.h>
#include <sys/socket.h>

typedef struct st_cr_cidr_t {
    int family;       /* AF_INET or AF_INET6 */
    unsigned bits;    /* the prefix length: 0..32 or 0..128 */
    uint8_t addr[16]; /* the network's address, masked to `bits` (4 bytes used for AF_INET) */
} cr_cidr_t;

/* Parses "ADDRESS[/BITS]" (no BITS: the one address). Returns 0, or -1 when it is not such a network or its
 * address has bits set past the prefix ("10.1.0.0/8" is refused: say "10.0.0.0/8"). */
int cr_cidr_parse(const char *s, cr_cidr_t *out);

/* Is the socket address `sa` (AF_INET or AF_INET6; any other family: no) in one of the `n` networks? */
int cr_cidr_list_contains(const cr_cidr_t *nets, size_t n, const struct sockaddr *sa);

#endif
