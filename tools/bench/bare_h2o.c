/*
 * bare_h2o.c: the ceiling for any server built on libh2o, measured beside corral in the same bench run.
 *
 *   bare_h2o PORT BODYFILE [CONTENT-TYPE]
 *
 * One thread, one listener on 127.0.0.1:PORT (HTTP/1.1, h2c with prior knowledge or Upgrade), and a handler that
 * answers every request with the bytes of BODYFILE from a static buffer: brotli when the request's Accept-Encoding
 * names br, else gzip when it names gzip, else identity (both codings made once at start, as corral makes them when
 * it stores an object: brotli quality 6, gzip level 6). No cache, no key, no lookup, no headers beyond
 * content-type, content-encoding and vary: whatever corral spends on top of this is its own cost. Stops on SIGTERM.
 * For benchmarks only (tools/bench/run.sh); not part of corral.
 */
#include <brotli/encode.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "h2o.h"
#include "h2o/http1.h"
#include "h2o/http2.h"

static h2o_iovec_t body_identity, body_gzip, body_br;
static h2o_iovec_t content_type;
static volatile sig_atomic_t stopping;

static void gen_proceed(h2o_generator_t *self, h2o_req_t *req)
{
}

static void gen_stop(h2o_generator_t *self, h2o_req_t *req)
{
}

static h2o_generator_t static_generator = {gen_proceed, gen_stop};

/* 1 when the Accept-Encoding value lists `coding` as a token (a q of 0 is not looked at: the bench never sends one). */
static int accepts(h2o_req_t *req, const char *coding, size_t len)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, -1);
    const char *p, *end;

    if (i == -1)
        return 0;
    p = req->headers.entries[i].value.base;
    end = p + req->headers.entries[i].value.len;
    while (p < end) {
        const char *tok;
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            ++p;
        tok = p;
        while (p < end && *p != ',' && *p != ';' && *p != ' ')
            ++p;
        if ((size_t)(p - tok) == len && strncasecmp(tok, coding, len) == 0)
            return 1;
        while (p < end && *p != ',')
            ++p;
    }
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t body = body_identity;

    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type.base, content_type.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("accept-encoding"));
    if (body_br.len != 0 && accepts(req, H2O_STRLIT("br"))) {
        body = body_br;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("br"));
    } else if (body_gzip.len != 0 && accepts(req, H2O_STRLIT("gzip"))) {
        body = body_gzip;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("gzip"));
    }
    req->res.content_length = body.len;
    h2o_start_response(req, &static_generator);
    h2o_send(req, &body, 1, 1);
    return 0;
}

static int read_file(const char *path, h2o_iovec_t *out)
{
    FILE *fp = fopen(path, "rb");
    long len;

    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        if (fp != NULL)
            fclose(fp);
        return -1;
    }
    out->base = malloc((size_t)len + 1);
    out->len = (size_t)len;
    if (out->base == NULL || fread(out->base, 1, out->len, fp) != out->len) {
        fclose(fp);
        return -1;
    }
    fclose(fp);
    return 0;
}

static void make_codings(void)
{
    size_t brlen = BrotliEncoderMaxCompressedSize(body_identity.len);
    uLongf gzcap = compressBound(body_identity.len) + 32;
    z_stream zs;

    body_br.base = malloc(brlen);
    if (body_br.base != NULL &&
        BrotliEncoderCompress(6, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, body_identity.len, (const uint8_t *)body_identity.base,
                              &brlen, (uint8_t *)body_br.base))
        body_br.len = brlen;
    memset(&zs, 0, sizeof(zs));
    body_gzip.base = malloc(gzcap);
    if (body_gzip.base != NULL && deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
        zs.next_in = (Bytef *)body_identity.base;
        zs.avail_in = (uInt)body_identity.len;
        zs.next_out = (Bytef *)body_gzip.base;
        zs.avail_out = (uInt)gzcap;
        if (deflate(&zs, Z_FINISH) == Z_STREAM_END)
            body_gzip.len = zs.total_out;
        deflateEnd(&zs);
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_accept_ctx_t *accept_ctx = listener->data;
    h2o_socket_t *sock;

    if (err != NULL)
        return;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(accept_ctx, sock);
}

static void on_term(int signo)
{
    stopping = 1;
}

int main(int argc, char **argv)
{
    static h2o_globalconf_t config;
    static h2o_context_t ctx;
    static h2o_accept_ctx_t accept_ctx;
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;
    h2o_handler_t *handler;
    h2o_socket_t *sock;
    struct sockaddr_in addr;
    int fd, on = 1;

    if (argc < 3) {
        fprintf(stderr, "usage: bare_h2o PORT BODYFILE [CONTENT-TYPE]\n");
        return 2;
    }
    if (read_file(argv[2], &body_identity) != 0) {
        fprintf(stderr, "bare_h2o: cannot read %s\n", argv[2]);
        return 1;
    }
    content_type = argc > 3 ? h2o_iovec_init(argv[3], strlen(argv[3])) : h2o_iovec_init(H2O_STRLIT("application/json"));
    make_codings();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);

    h2o_config_init(&config);
    hostconf = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;

    h2o_context_init(&ctx, h2o_evloop_create(), &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)atoi(argv[1]));
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(fd, H2O_SOMAXCONN) != 0) {
        perror("bare_h2o: listen");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    sock = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = &accept_ctx;
    h2o_socket_read_start(sock, on_accept);
    fprintf(stderr, "bare_h2o: listening on 127.0.0.1:%s, body %zu B (gzip %zu B, br %zu B)\n", argv[1], body_identity.len,
            body_gzip.len, body_br.len);

    while (!stopping)
        h2o_evloop_run(ctx.loop, 100);
    return 0;
}
