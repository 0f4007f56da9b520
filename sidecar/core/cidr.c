/*
 * cidr.c: parsing client networks and matching addresses against them (cidr.h).
 *
 * Invariants: pure; reads only its arguments. No locks.
 */
#include "corral/core/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* Do the first `bits` bits of a and b agree? */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return 0;
    return rest == 0 || ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int cr_cidr_parse(const char *s, cr_cidr_t *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    unsigned long bits;
    unsigned max, i;

    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    bits = max;
    if (slash != NULL) {
        char *end;
        if (slash[1] < '0' || slash[1] > '9' || (bits = strtoul(slash + 1, &end, 10)) > max || *end != '\0')
            return -1;
    }
    out->bits = (unsigned)bits;
    /* no host bits past the prefix: a typo such as "10.1.0.0/8" is refused rather than read as 10.0.0.0/8 */
    for (i = out->bits; i != max; ++i)
        if ((out->addr[i / 8] >> (7 - i % 8)) & 1)
            return -1;
    return 0;
}

int cr_cidr_list_contains(const cr_cidr_t *nets, size_t n, const struct sockaddr *sa)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *v4 = NULL, *v6 = NULL;
    size_t i;

    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        v4 = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        v6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(v6, v4mapped, sizeof(v4mapped)) == 0)
            v4 = v6 + 12;
    } else {
        return 0;
    }
    for (i = 0; i != n; ++i) {
        if (nets[i].family == AF_INET && v4 != NULL && prefix_equal(nets[i].addr, v4, nets[i].bits))
            return 1;
        if (nets[i].family == AF_INET6 && v6 != NULL && prefix_equal(nets[i].addr, v6, nets[i].bits))
            return 1;
    }
    return 0;
}
