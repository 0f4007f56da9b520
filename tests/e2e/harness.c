/*
 * harness.c: the end-to-end test harness declared in harness.h: child processes (test upstream, corral), a libcurl
 * HTTP client (single and parallel), the upstream's control endpoints and a tiny JSON field reader.
 *
 * Invariants:
 *   - children are tracked in a fixed table; each is stopped by PID (harness_stop) and, as a safety net, killed and
 *     reaped by an atexit hook and by PR_SET_PDEATHSIG if the test binary dies first.
 *   - all waits are bounded polling loops stepping 10 ms against CLOCK_MONOTONIC deadlines.
 *   - temp files go to one mkdtemp directory per run, removed at exit unless CORRAL_E2E_KEEP is set.
 *   - every cr_resp_t handed out has body and headers_raw non-NULL and NUL-terminated, even after a transport error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define STARTUP_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define CHECK_TIMEOUT_MS 10000
#define REQUEST_TIMEOUT_MS 10000L
#define PARALLEL_TIMEOUT_MS 60000L
#define POLL_STEP_MS 10
#define MAX_CHILDREN 64

/* ---- small utilities ---- */

long harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define now_ms harness_now_ms

static void poll_step(void)
{
    struct timespec ts = {0, POLL_STEP_MS * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static int buf_append(buf_t *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Returns the buffer's string (never NULL) and leaves b empty. */
static char *buf_take(buf_t *b)
{
    char *p = b->p;
    if (p == NULL)
        p = calloc(1, 1);
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

char *harness_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf_append(&b, chunk, n) != 0) {
            free(b.p);
            fclose(f);
            return NULL;
        }
    }
    fclose(f);
    return buf_take(&b);
}

static void print_log(const char *what, const char *path)
{
    char *text = harness_read_file(path);
    fprintf(stderr, "\n---- %s log (%s) ----\n%s\n---- end of log ----\n", what, path, text ? text : "(unreadable)");
    free(text);
}

/* ---- repository root, temp directory, child table ---- */

/* Walks up from dir (modified) to the first directory holding tools/test-upstream.py; 0 and root set, or -1. */
static int find_root_from(char *dir, char *root, size_t rootsize)
{
    char probe[PATH_MAX + 64];
    for (;;) {
        snprintf(probe, sizeof(probe), "%s/tools/test-upstream.py", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(root, rootsize, "%s", dir);
            return 0;
        }
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
            return -1;
        *slash = '\0';
    }
}

const char *harness_repo_root(void)
{
    static char root[PATH_MAX];
    if (root[0])
        return root;
    const char *env = getenv("CORRAL_ROOT");
    if (env && *env) {
        snprintf(root, sizeof(root), "%s", env);
        return root;
    }
    char dir[PATH_MAX];
    if (getcwd(dir, sizeof(dir)) != NULL && find_root_from(dir, root, sizeof(root)) == 0)
        return root;
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n > 0) {
        dir[n] = '\0';
        if (find_root_from(dir, root, sizeof(root)) == 0)
            return root;
    }
    if (getcwd(root, sizeof(root)) == NULL)
        snprintf(root, sizeof(root), ".");
    return root;
}

static char tmp_dir[128];
static pid_t children[MAX_CHILDREN];
static int atexit_done;

static void cleanup_at_exit(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
    if (tmp_dir[0] == '\0' || getenv("CORRAL_E2E_KEEP") != NULL)
        return;
    DIR *d = opendir(tmp_dir);
    if (d != NULL) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", tmp_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmp_dir);
}

static void ensure_atexit(void)
{
    if (!atexit_done) {
        atexit(cleanup_at_exit);
        atexit_done = 1;
    }
}

/* Fills out with a fresh file name "<tmpdir>/<prefix>-<n><suffix>"; 0 or -1. */
static int temp_path(char *out, size_t outsize, const char *prefix, const char *suffix)
{
    static unsigned seq;
    ensure_atexit();
    if (tmp_dir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof(tmp_dir), "%s/corral-e2e.XXXXXX", base && *base && strlen(base) < 80 ? base : "/tmp");
        if (mkdtemp(tmp_dir) == NULL) {
            fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
            tmp_dir[0] = '\0';
            return -1;
        }
    }
    int n = snprintf(out, outsize, "%s/%s-%u%s", tmp_dir, prefix, ++seq, suffix);
    return n > 0 && (size_t)n < outsize ? 0 : -1;
}

static void track_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
    }
}

static void untrack_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* fork+exec argv with stdin from /dev/null, stdout to out_path and stderr to err_path (either NULL = /dev/null,
 * the same path = one shared file). Returns the pid or -1. */
static pid_t spawn(char *const argv[], const char *out_path, const char *err_path)
{
    ensure_atexit();
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0); /* keep terminal signals (Ctrl-C) for the runner; it stops children itself */
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        int err = (err_path && out_path && strcmp(err_path, out_path) == 0)
                      ? dup(out)
                      : open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0 || err < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        closefrom(3);
        execvp(argv[0], argv);
        dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    track_child(pid);
    return pid;
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Polls for pid's exit up to timeout_ms. Returns the decoded status, or -2 while it runs, -1 on waitpid error. */
static int wait_pid(pid_t pid, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            untrack_child(pid);
            return decode_status(status);
        }
        if (r < 0 && errno != EINTR) {
            untrack_child(pid);
            return -1;
        }
        if (now_ms() >= deadline)
            return -2;
        poll_step();
    }
}

/* ---- ports ---- */

int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int harness_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int can_connect(int port)
{
    int fd = harness_connect(port);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int harness_wait_port(int port, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (can_connect(port))
            return 0;
        if (now_ms() >= deadline)
            return -1;
        poll_step();
    }
}

/* ---- process control ---- */

static int log_contains(const char *path, const char *needle)
{
    char *text = harness_read_file(path);
    int found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* Starts python3 tools/<name> --port N (see harness_start_upstream). */
/* fixed_port: that port (one attempt), or 0 for a free one */
static int start_script(cr_proc_t *p, const char *name, int fixed_port)
{
    memset(p, 0, sizeof(*p));
    char script[PATH_MAX + 64];
    snprintf(script, sizeof(script), "%s/tools/%s", harness_repo_root(), name);
    for (int attempt = fixed_port != 0 ? 2 : 0; attempt < 3; attempt++) {
        int port = fixed_port != 0 ? fixed_port : harness_free_port();
        if (port <= 0)
            return -1;
        char port_s[16], ready[32];
        snprintf(port_s, sizeof(port_s), "%d", port);
        snprintf(ready, sizeof(ready), "ready %d", port);
        if (temp_path(p->log_path, sizeof(p->log_path), "upstream", ".log") != 0)
            return -1;
        char *argv[] = {"python3", script, "--port", port_s, NULL};
        pid_t pid = spawn(argv, p->log_path, p->log_path);
        if (pid < 0)
            return -1;
        int64_t deadline = now_ms() + STARTUP_TIMEOUT_MS;
        for (;;) {
            int st = wait_pid(pid, 0);
            if (st != -2) {
                if (attempt < 2 && log_contains(p->log_path, "in use"))
                    break; /* lost the port race: try another */
                fprintf(stderr, "harness: test upstream exited during startup (status %d)\n", st);
                print_log("upstream", p->log_path);
                return -1;
            }
            if (log_contains(p->log_path, ready) || can_connect(port)) {
                p->pid = pid;
                p->port = port;
                return 0;
            }
            if (now_ms() >= deadline) {
                fprintf(stderr, "harness: test upstream not ready after %d ms\n", STARTUP_TIMEOUT_MS);
                kill(pid, SIGKILL);
                wait_pid(pid, STOP_TIMEOUT_MS);
                print_log("upstream", p->log_path);
                return -1;
            }
            poll_step();
        }
    }
    return -1;
}

int harness_start_upstream(cr_proc_t *p)
{
    return start_script(p, "test-upstream.py", 0);
}

int harness_restart_upstream(cr_proc_t *p)
{
    return start_script(p, "test-upstream.py", p->port);
}

int harness_start_hostile_upstream(cr_proc_t *p)
{
    return start_script(p, "hostile-upstream.py", 0);
}

/* template with every ${PORT}, ${ADMIN_PORT} and ${UPSTREAM_PORT} replaced; malloc'ed or NULL. */
static char *substitute(const char *tmpl, int port, int admin_port, int upstream_port)
{
    static const char *const names[] = {"${PORT}", "${ADMIN_PORT}", "${UPSTREAM_PORT}"};
    int values[] = {port, admin_port, upstream_port};
    buf_t b = {0};
    const char *s = tmpl;
    while (*s) {
        int hit = -1;
        if (s[0] == '$' && s[1] == '{') {
            for (int i = 0; i < 3; i++)
                if (strncmp(s, names[i], strlen(names[i])) == 0)
                    hit = i;
        }
        if (hit >= 0) {
            char num[16];
            int n = snprintf(num, sizeof(num), "%d", values[hit]);
            if (buf_append(&b, num, (size_t)n) != 0)
                goto fail;
            s += strlen(names[hit]);
        } else {
            if (buf_append(&b, s, 1) != 0)
                goto fail;
            s++;
        }
    }
    return buf_take(&b);
fail:
    free(b.p);
    return NULL;
}

static const char *corral_bin(void)
{
    static char bin[PATH_MAX];
    const char *env = getenv("CORRAL_BIN");
    if (env && *env)
        snprintf(bin, sizeof(bin), "%s", env);
    else
        snprintf(bin, sizeof(bin), "%s/build/corral", harness_repo_root());
    return bin;
}

/* Picks a port and a different admin port, writes the substituted config to a new temp file. 0 or -1. */
static int write_config(const char *yaml, int upstream_port, char *conf_path, size_t conf_size, int *port, int *admin)
{
    *port = harness_free_port();
    do {
        *admin = harness_free_port();
    } while (*admin == *port && *admin > 0);
    if (*port <= 0 || *admin <= 0)
        return -1;
    char *text = substitute(yaml, *port, *admin, upstream_port);
    if (text == NULL)
        return -1;
    int rc = temp_path(conf_path, conf_size, "corral", ".yaml") == 0 && write_file(conf_path, text) == 0 ? 0 : -1;
    free(text);
    return rc;
}

int harness_start_corral(cr_proc_t *p, const char *yaml_template, const cr_proc_t *upstream)
{
    memset(p, 0, sizeof(*p));
    const char *bin = corral_bin();
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "harness: corral binary %s is not executable (set CORRAL_BIN or build it)\n", bin);
        return -1;
    }
    int upstream_port = upstream ? upstream->port : 1;
    for (int attempt = 0; attempt < 3; attempt++) {
        int port, admin;
        if (write_config(yaml_template, upstream_port, p->conf_path, sizeof(p->conf_path), &port, &admin) != 0 ||
            temp_path(p->log_path, sizeof(p->log_path), "corral", ".log") != 0) {
            fprintf(stderr, "harness: cannot write the corral config\n");
            return -1;
        }
        char *argv[] = {(char *)bin, "-c", p->conf_path, NULL};
        pid_t pid = spawn(argv, p->log_path, p->log_path);
        if (pid < 0)
            return -1;
        int64_t deadline = now_ms() + STARTUP_TIMEOUT_MS;
        for (;;) {
            int st = wait_pid(pid, 0);
            if (st != -2) {
                if (attempt < 2 && log_contains(p->log_path, "in use"))
                    break;
                fprintf(stderr, "harness: corral exited during startup (status %d), config %s\n", st, p->conf_path);
                print_log("corral", p->log_path);
                return -1;
            }
            if (can_connect(port)) {
                p->pid = pid;
                p->port = port;
                p->admin_port = admin;
                return 0;
            }
            if (now_ms() >= deadline) {
                fprintf(stderr, "harness: corral not listening on %d after %d ms\n", port, STARTUP_TIMEOUT_MS);
                kill(pid, SIGKILL);
                wait_pid(pid, STOP_TIMEOUT_MS);
                print_log("corral", p->log_path);
                return -1;
            }
            poll_step();
        }
    }
    return -1;
}

/* Sanitizer reports found in children's logs (harness_sanitizer_reports). */
static int sanitizer_reports;

/* After a child is reaped: a sanitizer report in its log (at exit, or before a SIGKILL) is printed and counted, so
 * the run fails even where a test did not check the exit status. */
static void scan_for_sanitizer_report(const cr_proc_t *p)
{
    static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                                          "WARNING: ThreadSanitizer", NULL};
    char line[1024];
    int printing = 0, printed = 0;
    FILE *fp;

    if (p->log_path[0] == '\0' || (fp = fopen(p->log_path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), fp) != NULL && printed < 60) {
        for (int i = 0; !printing && markers[i] != NULL; ++i)
            if (strstr(line, markers[i]) != NULL) {
                printing = 1;
                ++sanitizer_reports;
                fprintf(stderr, "\nharness: a sanitizer report in %s:\n", p->log_path);
            }
        if (printing) {
            fputs(line, stderr);
            ++printed;
        }
    }
    fclose(fp);
}

int harness_time_scale(void)
{
    const char *env = getenv("CORRAL_E2E_TIME_SCALE");
    int v = env != NULL ? atoi(env) : 1;
    return v < 1 ? 1 : v > 10 ? 10 : v;
}

int harness_under_tsan(void)
{
    const char *env = getenv("CORRAL_E2E_TSAN");
    return env != NULL && strcmp(env, "1") == 0;
}

int harness_sanitizer_reports(void)
{
    return sanitizer_reports;
}

int harness_stop(cr_proc_t *p)
{
    if (p == NULL || p->pid <= 0)
        return -1;
    pid_t pid = p->pid;
    kill(pid, SIGTERM);
    int st = wait_pid(pid, STOP_TIMEOUT_MS);
    if (st == -2) {
        fprintf(stderr, "harness: pid %d ignored SIGTERM for %d ms; killing it\n", (int)pid, STOP_TIMEOUT_MS);
        kill(pid, SIGKILL);
        st = wait_pid(pid, STOP_TIMEOUT_MS);
    }
    p->pid = 0;
    scan_for_sanitizer_report(p);
    return st < 0 ? -1 : st;
}

int harness_kill(cr_proc_t *p, int sig)
{
    if (p == NULL || p->pid <= 0)
        return -1;
    return kill(p->pid, sig);
}

int harness_wait_exit(cr_proc_t *p, int timeout_ms)
{
    if (p == NULL || p->pid <= 0)
        return -1;
    int st = wait_pid(p->pid, timeout_ms);
    if (st != -2) {
        p->pid = 0;
        scan_for_sanitizer_report(p);
    }
    return st;
}

int harness_run_corral_check(const char *yaml, char *out, size_t outsize)
{
    if (out && outsize)
        out[0] = '\0';
    char conf[256], err_path[256];
    int port, admin;
    if (write_config(yaml, 1, conf, sizeof(conf), &port, &admin) != 0 ||
        temp_path(err_path, sizeof(err_path), "check", ".err") != 0)
        return -1;
    const char *bin = corral_bin();
    char *argv[] = {(char *)bin, "-t", "-c", conf, NULL};
    pid_t pid = spawn(argv, NULL, err_path);
    if (pid < 0)
        return -1;
    int st = wait_pid(pid, CHECK_TIMEOUT_MS);
    if (st == -2) {
        fprintf(stderr, "harness: %s -t did not finish in %d ms\n", bin, CHECK_TIMEOUT_MS);
        kill(pid, SIGKILL);
        wait_pid(pid, STOP_TIMEOUT_MS);
        st = -1;
    }
    if (out && outsize) {
        char *text = harness_read_file(err_path);
        if (text) {
            snprintf(out, outsize, "%s", text);
            free(text);
        }
    }
    return st;
}

/* ---- HTTP client ---- */

static __thread char last_error[CURL_ERROR_SIZE + 64];

const char *http_last_error(void)
{
    return last_error;
}

typedef struct {
    cr_resp_t *resp;
    buf_t body, hdrs;
    struct curl_slist *list;
    char err[CURL_ERROR_SIZE];
    int done;
    CURLcode result;
} xfer_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    return buf_append(&x->body, data, size * nmemb) == 0 ? size * nmemb : 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    return buf_append(&x->hdrs, data, size * nmemb) == 0 ? size * nmemb : 0;
}

static int has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (; headers && *headers; headers++)
        if (strncasecmp(*headers, name, n) == 0 && ((*headers)[n] == ':' || (*headers)[n] == ';'))
            return 1;
    return 0;
}

/* Configures h for one exchange; x must outlive the transfer. 0 or -1. */
static int setup_easy(CURL *h, xfer_t *x, cr_proto_t proto, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len)
{
    for (const char *const *hp = headers; hp && *hp; hp++) {
        struct curl_slist *l = curl_slist_append(x->list, *hp);
        if (l == NULL)
            return -1;
        x->list = l;
    }
    if (!has_header(headers, "Expect")) {
        struct curl_slist *l = curl_slist_append(x->list, "Expect:");
        if (l == NULL)
            return -1;
        x->list = l;
    }
    long version = proto == CR_H2C ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                   : proto == CR_H2C_UPGRADE ? (long)CURL_HTTP_VERSION_2_0
                                             : (long)CURL_HTTP_VERSION_1_1;
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, version) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->err) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PRIVATE, x) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->list) != CURLE_OK;
    if (method == NULL)
        method = "GET";
    if (strcmp(method, "HEAD") == 0) {
        bad |= curl_easy_setopt(h, CURLOPT_NOBODY, 1L) != CURLE_OK;
    } else if (strcmp(method, "GET") != 0 || body != NULL) {
        if (strcmp(method, "POST") != 0)
            bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
        if (body != NULL) {
            bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) != CURLE_OK;
            bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK;
        } else if (strcmp(method, "POST") == 0) {
            bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0) != CURLE_OK;
            bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, "") != CURLE_OK;
        }
    }
    return bad ? -1 : 0;
}

/* Moves what x collected into its cr_resp_t and records the outcome. 0 or -1. */
static int finish_xfer(CURL *h, xfer_t *x, CURLcode rc)
{
    cr_resp_t *r = x->resp;
    long code = 0, version = 0;
    double total = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &total);
    r->status = code;
    r->http_version = version == CURL_HTTP_VERSION_1_0   ? 10
                      : version == CURL_HTTP_VERSION_1_1 ? 11
                      : version == CURL_HTTP_VERSION_2_0 ? 20
                                                         : 0;
    r->total_ms = total * 1000.0;
    r->body_len = x->body.len;
    r->body = buf_take(&x->body);
    r->headers_raw = buf_take(&x->hdrs);
    curl_slist_free_all(x->list);
    x->list = NULL;
    if (rc != CURLE_OK) {
        snprintf(last_error, sizeof(last_error), "%s: %s", curl_easy_strerror(rc), x->err);
        return -1;
    }
    return 0;
}

int http_request(cr_resp_t *r, cr_proto_t proto, const char *method, const char *url, const char *const *headers,
                 const char *body, size_t body_len)
{
    memset(r, 0, sizeof(*r));
    last_error[0] = '\0';
    xfer_t x = {.resp = r};
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(last_error, sizeof(last_error), "curl_easy_init failed");
        r->body = calloc(1, 1);
        r->headers_raw = calloc(1, 1);
        return -1;
    }
    CURLcode rc = setup_easy(h, &x, proto, method, url, headers, body, body_len) == 0 ? curl_easy_perform(h)
                                                                                        : CURLE_FAILED_INIT;
    int ret = finish_xfer(h, &x, rc);
    curl_easy_cleanup(h);
    return ret;
}

int http_get(cr_resp_t *r, cr_proto_t proto, const char *url, const char *const *headers)
{
    return http_request(r, proto, "GET", url, headers, NULL, 0);
}

int http_parallel_get(cr_resp_t *resps, size_t n, cr_proto_t proto, const char *url, const char *const *headers,
                      size_t max_conns)
{
    last_error[0] = '\0';
    for (size_t i = 0; i < n; i++)
        memset(&resps[i], 0, sizeof(resps[i]));
    xfer_t *xs = calloc(n ? n : 1, sizeof(*xs));
    CURL **hs = calloc(n ? n : 1, sizeof(*hs));
    CURLM *m = curl_multi_init();
    int failed = 0, setup_error = 0;
    if (xs == NULL || hs == NULL || m == NULL) {
        setup_error = 1;
        goto out;
    }
    /* Debian 12's libcurl 7.88.1 breaks streams it multiplexes onto a reused prior-knowledge h2c connection
     * ("Error in the HTTP2 framing layer", curl issue #10634, fixed in 7.89): h2c prior-knowledge transfers each get
     * their own connection here; h2c via Upgrade multiplexes. Many streams on one connection: use h2load. */
    int h2 = proto == CR_H2C_UPGRADE;
    curl_multi_setopt(m, CURLMOPT_PIPELINING, h2 ? (long)CURLPIPE_MULTIPLEX : (long)CURLPIPE_NOTHING);
    if (max_conns > 0) {
        curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_conns);
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_conns);
    }
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)(max_conns > 0 ? max_conns : n + 1));
    for (size_t i = 0; i < n; i++)
        xs[i].resp = &resps[i];
    for (size_t i = 0; i < n; i++) {
        hs[i] = curl_easy_init();
        if (hs[i] == NULL || setup_easy(hs[i], &xs[i], proto, "GET", url, headers, NULL, 0) != 0 ||
            curl_easy_setopt(hs[i], CURLOPT_TIMEOUT_MS, PARALLEL_TIMEOUT_MS) != CURLE_OK ||
            (h2 && curl_easy_setopt(hs[i], CURLOPT_PIPEWAIT, 1L) != CURLE_OK) || curl_multi_add_handle(m, hs[i]) != CURLM_OK) {
            setup_error = 1;
            goto out;
        }
    }
    int64_t deadline = now_ms() + PARALLEL_TIMEOUT_MS;
    int running = 1;
    while (running > 0) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            xfer_t *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (x != NULL) {
                x->done = 1;
                x->result = msg->data.result;
            }
        }
        if (running == 0 || now_ms() >= deadline)
            break;
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }

out:;
    char first_error[sizeof(last_error)] = "";
    for (size_t i = 0; xs != NULL && hs != NULL && i < n; i++) {
        if (hs[i] == NULL) {
            xs[i].resp->body = buf_take(&xs[i].body);
            xs[i].resp->headers_raw = buf_take(&xs[i].hdrs);
            curl_slist_free_all(xs[i].list);
            continue;
        }
        if (finish_xfer(hs[i], &xs[i], xs[i].done ? xs[i].result : CURLE_OPERATION_TIMEDOUT) != 0) {
            failed++;
            if (first_error[0] == '\0')
                snprintf(first_error, sizeof(first_error), "%s", last_error);
        }
        if (m)
            curl_multi_remove_handle(m, hs[i]);
        curl_easy_cleanup(hs[i]);
    }
    snprintf(last_error, sizeof(last_error), "%s", first_error);
    if (m)
        curl_multi_cleanup(m);
    free(hs);
    free(xs);
    if (setup_error) {
        snprintf(last_error, sizeof(last_error), "parallel setup failed");
        return -1;
    }
    return failed;
}

/* Finds the final header block: the last one whose status line is not 1xx (else the last one). */
static const char *final_block(const char *raw, const char **end)
{
    const char *best = NULL, *last = NULL;
    for (const char *line = raw; line && *line;) {
        if (strncmp(line, "HTTP/", 5) == 0) {
            last = line;
            const char *sp = strchr(line, ' ');
            if (sp && !(sp[1] == '1' && isdigit((unsigned char)sp[2])))
                best = line;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    const char *start = best ? best : last;
    if (start == NULL)
        start = raw;
    *end = start + strlen(start);
    const char *nl = strchr(start, '\n');
    for (const char *line = nl ? nl + 1 : *end; line < *end;) {
        if (strncmp(line, "HTTP/", 5) == 0) {
            *end = line;
            break;
        }
        nl = strchr(line, '\n');
        line = nl ? nl + 1 : *end;
    }
    return start;
}

/* Calls fn for each value of header name in the final block; returns the count. */
static int scan_header(const cr_resp_t *r, const char *name, void (*fn)(const char *, size_t, void *), void *ud)
{
    if (r == NULL || r->headers_raw == NULL || name == NULL)
        return 0;
    const char *end, *start = final_block(r->headers_raw, &end);
    size_t nlen = strlen(name);
    int count = 0;
    const char *nl = strchr(start, '\n');
    for (const char *line = nl ? nl + 1 : end; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            count++;
            if (fn)
                fn(v, (size_t)(ve - v), ud);
        }
        line = eol < end ? eol + 1 : end;
    }
    return count;
}

typedef struct {
    char *buf;
    size_t size, len;
    int n;
} join_t;

static void join_value(const char *v, size_t len, void *ud)
{
    join_t *j = ud;
    if (j->size == 0)
        return;
    if (j->n++ > 0) {
        for (const char *s = ", "; *s && j->len + 1 < j->size; s++)
            j->buf[j->len++] = *s;
    }
    for (size_t i = 0; i < len && j->len + 1 < j->size; i++)
        j->buf[j->len++] = v[i];
    j->buf[j->len] = '\0';
}

const char *resp_header(const cr_resp_t *r, const char *name, char *buf, size_t bufsize)
{
    join_t j = {buf, bufsize, 0, 0};
    if (buf && bufsize)
        buf[0] = '\0';
    if (buf == NULL)
        j.size = 0;
    return scan_header(r, name, join_value, &j) > 0 ? buf : NULL;
}

int resp_header_count(const cr_resp_t *r, const char *name)
{
    return scan_header(r, name, NULL, NULL);
}

void resp_free(cr_resp_t *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r->headers_raw);
    memset(r, 0, sizeof(*r));
}

/* ---- upstream control ---- */

/* Percent-encodes s for a query parameter value into a malloc'ed string ('/' kept for readability). */
static char *query_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* method on /__<endpoint>[?path=<path>] of up; returns the response body (malloc'ed) on a 200, else NULL. */
static char *control_call(const cr_proc_t *up, const char *method, const char *endpoint, const char *path,
                          const char *body)
{
    char url[4096];
    char *esc = path ? query_escape(path) : NULL;
    if (path && esc == NULL)
        return NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__%s%s%s", up->port, endpoint, esc ? "?path=" : "", esc ? esc : "");
    free(esc);
    cr_resp_t r;
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    char *out = NULL;
    if (http_request(&r, CR_H1, method, url, hdrs, body, body ? strlen(body) : 0) == 0 && r.status == 200) {
        out = r.body;
        r.body = NULL;
    } else {
        fprintf(stderr, "harness: upstream %s /__%s failed: status %ld %s\n", method, endpoint, r.status, http_last_error());
    }
    resp_free(&r);
    return out;
}

long upstream_count(const cr_proc_t *up, const char *path)
{
    char *json = control_call(up, "GET", "count", path, NULL);
    long v = -1;
    if (json == NULL || json_get_long(json, "count", &v) != 0)
        v = -1;
    free(json);
    return v;
}

long upstream_total(const cr_proc_t *up)
{
    char *json = control_call(up, "GET", "total", NULL, NULL);
    long v = -1;
    if (json == NULL || json_get_long(json, "count", &v) != 0)
        v = -1;
    free(json);
    return v;
}

int upstream_reset(const cr_proc_t *up)
{
    char *json = control_call(up, "POST", "reset", NULL, "");
    free(json);
    return json ? 0 : -1;
}

int upstream_set(const cr_proc_t *up, const char *path, const char *query_string)
{
    char *json = control_call(up, "POST", "set", path, query_string ? query_string : "");
    free(json);
    return json ? 0 : -1;
}

char *upstream_log(const cr_proc_t *up, const char *path)
{
    return control_call(up, "GET", "log", path, NULL);
}

/* ---- misc ---- */

static char *url_on_port(int port, const char *path_and_query)
{
    static __thread char bufs[16][2048];
    static __thread unsigned next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof(bufs[0]), "http://127.0.0.1:%d%s", port, path_and_query ? path_and_query : "/");
    return b;
}

char *url_of(const cr_proc_t *p, const char *path_and_query)
{
    return url_on_port(p->port, path_and_query);
}

char *admin_url_of(const cr_proc_t *p, const char *path_and_query)
{
    return url_on_port(p->admin_port, path_and_query);
}

long harness_readyz(const cr_proc_t *c, char *body, size_t bodysize)
{
    cr_resp_t r;
    long status = -1;
    if (http_get(&r, CR_H1, admin_url_of(c, "/readyz"), NULL) == 0)
        status = r.status;
    if (body != NULL)
        snprintf(body, bodysize, "%s", r.body != NULL ? r.body : "");
    resp_free(&r);
    return status;
}

long harness_readyz_until(const cr_proc_t *c, long want, char *body, size_t bodysize)
{
    long deadline = harness_now_ms() + 5000L * harness_time_scale(), st;
    while ((st = harness_readyz(c, body, bodysize)) != want && harness_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL); /* pacing for the poll, bounded by the deadline */
    }
    return st;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    return s;
}

/* s at '"': returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *s)
{
    for (s++; *s; s++) {
        if (*s == '\\') {
            if (*++s == '\0')
                return NULL;
        } else if (*s == '"') {
            return s + 1;
        }
    }
    return NULL;
}

/* Skips one JSON value of any kind; returns the position after it, or NULL. */
static const char *skip_value(const char *s)
{
    s = skip_ws(s);
    if (*s == '"')
        return skip_string(s);
    if (*s == '{' || *s == '[') {
        int depth = 0;
        while (*s) {
            if (*s == '"') {
                s = skip_string(s);
                if (s == NULL)
                    return NULL;
                continue;
            }
            if (*s == '{' || *s == '[') {
                depth++;
            } else if (*s == '}' || *s == ']') {
                if (--depth == 0)
                    return s + 1;
            }
            s++;
        }
        return NULL;
    }
    const char *start = s;
    while (*s && *s != ',' && *s != '}' && *s != ']' && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
        s++;
    return s > start ? s : NULL;
}

int json_get_long(const char *json, const char *field, long *out)
{
    if (json == NULL || field == NULL)
        return -1;
    size_t flen = strlen(field);
    const char *s = skip_ws(json);
    if (*s != '{')
        return -1;
    s = skip_ws(s + 1);
    while (*s == '"') {
        const char *key = s + 1, *after = skip_string(s);
        if (after == NULL)
            return -1;
        int match = (size_t)(after - 1 - key) == flen && memcmp(key, field, flen) == 0;
        s = skip_ws(after);
        if (*s != ':')
            return -1;
        s = skip_ws(s + 1);
        if (match) {
            if (!(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))))
                return -1;
            char *endp;
            errno = 0;
            long v = strtol(s, &endp, 10);
            if (errno != 0 || *endp == '.' || *endp == 'e' || *endp == 'E')
                return -1;
            *out = v;
            return 0;
        }
        s = skip_value(s);
        if (s == NULL)
            return -1;
        s = skip_ws(s);
        if (*s != ',')
            return -1;
        s = skip_ws(s + 1);
    }
    return -1;
}

int harness_start_pair(cr_proc_t *upstream, cr_proc_t *corral, const char *yaml_template)
{
    if (harness_start_upstream(upstream) != 0)
        return -1;
    if (harness_start_corral(corral, yaml_template, upstream) != 0) {
        harness_stop(upstream);
        return -1;
    }
    return 0;
}

int harness_stop_pair(cr_proc_t *upstream, cr_proc_t *corral)
{
    int rc = harness_stop(corral);
    harness_stop(upstream);
    return rc == 0 ? 0 : -1;
}

long harness_metric(const cr_proc_t *corral, const char *name)
{
    char url[128], needle[160];
    const char *at;
    long v = -1;
    cr_resp_t r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", corral->admin_port);
    if (http_get(&r, CR_H1, url, NULL) == 0 && r.status == 200) {
        snprintf(needle, sizeof(needle), "\n%s ", name);
        if ((at = strstr(r.body, needle)) != NULL)
            v = atol(at + strlen(needle));
    }
    resp_free(&r);
    return v;
}

int harness_get_hit(const cr_proc_t *c, const char *path, long *status, char *ver, size_t versize)
{
    cr_resp_t r;
    char cs[256] = "";
    int hit;
    if (http_get(&r, CR_H1, url_of(c, path), NULL) != 0) {
        resp_free(&r);
        return -1;
    }
    if (status != NULL)
        *status = r.status;
    resp_header(&r, "cache-status", cs, sizeof(cs));
    hit = strstr(cs, "corral; hit") != NULL;
    if (ver != NULL) {
        const char *v = strstr(r.body, "\"version\": \"");
        snprintf(ver, versize, "%.*s", v != NULL ? (int)strcspn(v + 12, "\"") : 0, v != NULL ? v + 12 : "");
    }
    resp_free(&r);
    return hit;
}

long harness_write(const cr_proc_t *c, const char *method, const char *path_and_query)
{
    cr_resp_t r;
    long status;
    if (http_request(&r, CR_H1, method, url_of(c, path_and_query), NULL, "x=1", 3) != 0) {
        resp_free(&r);
        return -1;
    }
    status = r.status;
    resp_free(&r);
    return status;
}

/* ---- raw HTTP/2 frames ---- */

size_t harness_h2_frame_header(unsigned char *p, size_t len, unsigned type, unsigned flags, uint32_t stream)
{
    p[0] = (unsigned char)(len >> 16);
    p[1] = (unsigned char)(len >> 8);
    p[2] = (unsigned char)len;
    p[3] = (unsigned char)type;
    p[4] = (unsigned char)flags;
    p[5] = (unsigned char)(stream >> 24);
    p[6] = (unsigned char)(stream >> 16);
    p[7] = (unsigned char)(stream >> 8);
    p[8] = (unsigned char)stream;
    return 9;
}

size_t harness_h2_get_headers(unsigned char *buf, uint32_t stream, const char *path, const char *authority)
{
    unsigned char block[6 + 2 * 127];
    size_t n = 0, plen = strlen(path), alen = strlen(authority), off;
    if (plen > 127)
        plen = 127;
    if (alen > 127)
        alen = 127;
    block[n++] = 0x82; /* :method GET */
    block[n++] = 0x86; /* :scheme http */
    block[n++] = 0x04; /* :path, literal without indexing */
    block[n++] = (unsigned char)plen;
    memcpy(block + n, path, plen);
    n += plen;
    block[n++] = 0x01; /* :authority, literal without indexing */
    block[n++] = (unsigned char)alen;
    memcpy(block + n, authority, alen);
    n += alen;
    off = harness_h2_frame_header(buf, n, 0x1, 0x5, stream);
    memcpy(buf + off, block, n);
    return off + n;
}

int harness_count_in_file(const char *path, const char *needle)
{
    char *text = harness_read_file(path), *p;
    int n = 0;
    if (text == NULL)
        return -1;
    for (p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        ++n;
    free(text);
    return n;
}
