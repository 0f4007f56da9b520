/*
 * config_check.c: the checks of config_check.h: the admin token and the TLS files, each error reported at the value
 * that names the file or variable ("file:line:col: message", the position config.c recorded).
 *
 * No global state (OpenSSL's error queue is per thread and cleared after each failure); safe from any thread.
 */
#include "corral/conf/config_check.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CR_ADMIN_TOKEN_MAX 4096

__attribute__((format(printf, 5, 6))) static int fail(const cr_config_t *cfg, cr_conf_pos_t pos, char *errbuf, size_t errbufsize,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n;
    if (errbuf == NULL || errbufsize == 0)
        return -1;
    n = snprintf(errbuf, errbufsize, "%s:%u:%u: ", cfg->path, pos.line != 0 ? pos.line : 1, pos.col != 0 ? pos.col : 1);
    if (n >= 0 && (size_t)n < errbufsize) {
        va_start(ap, fmt);
        vsnprintf(errbuf + n, errbufsize - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* OpenSSL's first reason (the cause; later ones are the callers' "PEM lib"), then its queue cleared. */
static const char *ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_error();
    snprintf(buf, size, "%s", e != 0 && ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e) : "unknown error");
    ERR_clear_error();
    return buf;
}

/* Can the file be opened for reading? 0, or -1 with errno. */
static int readable(const char *path)
{
    FILE *fp = fopen(path, "r");
    char c;
    int saved;
    if (fp == NULL)
        return -1;
    if (fread(&c, 1, 1, fp) == 0 && ferror(fp)) {
        saved = errno;
        fclose(fp);
        errno = saved;
        return -1;
    }
    fclose(fp);
    return 0;
}

/* An encrypted key would make OpenSSL ask for its passphrase on the terminal: give none, so it fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

SSL_CTX *cr_config_tls_ctx_new(const cr_config_t *cfg, size_t index, char *errbuf, size_t errbufsize)
{
    const cr_listen_config_t *l = cfg->listens + index;
    char why[256];
    SSL_CTX *ctx;

    if (readable(l->tls_certificate) != 0) {
        fail(cfg, l->tls_certificate_pos, errbuf, errbufsize, "listen[%zu].tls.certificate: cannot read \"%s\": %s", index,
             l->tls_certificate, strerror(errno));
        return NULL;
    }
    if (readable(l->tls_key) != 0) {
        fail(cfg, l->tls_key_pos, errbuf, errbufsize, "listen[%zu].tls.key: cannot read \"%s\": %s", index, l->tls_key,
             strerror(errno));
        return NULL;
    }
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        fail(cfg, l->tls_certificate_pos, errbuf, errbufsize, "listen[%zu].tls: cannot create a TLS context: %s", index,
             ssl_reason(why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1) {
        fail(cfg, l->tls_certificate_pos, errbuf, errbufsize, "listen[%zu].tls.certificate: cannot load \"%s\": %s", index,
             l->tls_certificate, ssl_reason(why, sizeof(why)));
        goto Error;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL checks the key against the certificate while loading it: report a mismatch as one */
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH) {
            ERR_clear_error();
            fail(cfg, l->tls_key_pos, errbuf, errbufsize, "listen[%zu].tls.key: \"%s\" does not match the certificate \"%s\"",
                 index, l->tls_key, l->tls_certificate);
        } else {
            fail(cfg, l->tls_key_pos, errbuf, errbufsize, "listen[%zu].tls.key: cannot load \"%s\": %s", index, l->tls_key,
                 ssl_reason(why, sizeof(why)));
        }
        goto Error;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        fail(cfg, l->tls_key_pos, errbuf, errbufsize, "listen[%zu].tls.key: \"%s\" does not match the certificate \"%s\"", index,
             l->tls_key, l->tls_certificate);
        goto Error;
    }
    return ctx;
Error:
    SSL_CTX_free(ctx);
    return NULL;
}

/* The admin token (see config_check.h); 0 or -1. */
static int load_admin_token(const cr_config_t *cfg, char **out, char *errbuf, size_t errbufsize)
{
    char buf[CR_ADMIN_TOKEN_MAX + 1];
    size_t n;
    FILE *fp;

    *out = NULL;
    if (cfg->admin.token_env != NULL) {
        const char *v = getenv(cfg->admin.token_env);
        if (v == NULL || v[0] == '\0')
            return fail(cfg, cfg->admin.token_env_pos, errbuf, errbufsize,
                        "admin.token_env: the environment variable %s is not set or is empty", cfg->admin.token_env);
        if ((*out = strdup(v)) == NULL)
            return fail(cfg, cfg->admin.token_env_pos, errbuf, errbufsize, "out of memory");
        return 0;
    }
    if (cfg->admin.token_file == NULL)
        return 0;
    if ((fp = fopen(cfg->admin.token_file, "r")) == NULL)
        return fail(cfg, cfg->admin.token_file_pos, errbuf, errbufsize, "admin.token_file: cannot read \"%s\": %s",
                    cfg->admin.token_file, strerror(errno));
    n = fread(buf, 1, sizeof(buf), fp);
    if (ferror(fp)) {
        int saved = errno;
        fclose(fp);
        return fail(cfg, cfg->admin.token_file_pos, errbuf, errbufsize, "admin.token_file: cannot read \"%s\": %s",
                    cfg->admin.token_file, strerror(saved));
    }
    fclose(fp);
    if (n > CR_ADMIN_TOKEN_MAX)
        return fail(cfg, cfg->admin.token_file_pos, errbuf, errbufsize, "admin.token_file: \"%s\" is longer than %d bytes",
                    cfg->admin.token_file, CR_ADMIN_TOKEN_MAX);
    while (n != 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        --n;
    buf[n] = '\0';
    if (n == 0)
        return fail(cfg, cfg->admin.token_file_pos, errbuf, errbufsize, "admin.token_file: \"%s\" is empty", cfg->admin.token_file);
    if (strlen(buf) != n)
        return fail(cfg, cfg->admin.token_file_pos, errbuf, errbufsize, "admin.token_file: \"%s\" contains a NUL byte",
                    cfg->admin.token_file);
    if ((*out = strdup(buf)) == NULL)
        return fail(cfg, cfg->admin.token_file_pos, errbuf, errbufsize, "out of memory");
    return 0;
}

int cr_config_check(const cr_config_t *cfg, char **admin_token, char *errbuf, size_t errbufsize)
{
    char *token = NULL;
    size_t i;

    if (errbuf != NULL && errbufsize != 0)
        errbuf[0] = '\0';
    if (load_admin_token(cfg, &token, errbuf, errbufsize) != 0)
        return -1;
    for (i = 0; i != cfg->num_listens; ++i) {
        SSL_CTX *ctx;
        if (cfg->listens[i].tls_certificate == NULL)
            continue;
        if ((ctx = cr_config_tls_ctx_new(cfg, i, errbuf, errbufsize)) == NULL) {
            free(token);
            return -1;
        }
        SSL_CTX_free(ctx);
    }
    if (admin_token != NULL)
        *admin_token = token;
    else
        free(token);
    return 0;
}
