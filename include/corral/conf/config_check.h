/*
 * config_check.h: the start-up checks of a loaded configuration that need files or the environment (the admin token,
 * the TLS certificates and keys). `corral -t` and start-up call the same function, so a config that passes -t is
 * one that starts, up to what only binding can tell.
 */
#ifndef CORRAL_CONFIG_CHECK_H
#define CORRAL_CONFIG_CHECK_H

#include <openssl/ssl.h>

#include "corral/conf/config.h"

/*
 * Reads the admin token (admin.token_file: readable and not empty after trailing whitespace is cut; admin.token_env:
 * set and not empty) and loads every listener's TLS certificate chain and key and checks that they match.
 * Returns 0 and sets *admin_token (malloc'ed; NULL when no token is configured; admin_token may be NULL to discard
 * it), or -1 with errbuf = "file:line:col: message" pointing at the offending value.
 */
int cr_config_check(const cr_config_t *cfg, char **admin_token, char *errbuf, size_t errbufsize);

/* A TLS server context for listener `index` of cfg (TLS 1.2+, certificate chain and key loaded and matching), or
 * NULL with errbuf as above. The caller adds ALPN and owns the context. */
SSL_CTX *cr_config_tls_ctx_new(const cr_config_t *cfg, size_t index, char *errbuf, size_t errbufsize);

#endif
