/*
 * mc_harness.c: the memcached processes declared in mc_harness.h (the client is in mc_client.c).
 *
 * Invariants:
 *   - children are tracked in a fixed table; each is stopped by PID (mc_stop) and, as a safety net, killed and
 *     reaped by an atexit hook and by PR_SET_PDEATHSIG if the test binary dies first.
 *   - waits are bounded polling loops stepping 10 ms against harness_now_ms() deadlines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mc_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MC_START_TIMEOUT_MS 10000
#define MC_STOP_TIMEOUT_MS 5000
#define MC_MAX_CHILDREN 32

/* ---- children, temp directory ---- */

static pid_t mc_children[MC_MAX_CHILDREN];
static char mc_dir[128];
static int mc_atexit_done;

static void mc_cleanup_at_exit(void)
{
    int i;
    for (i = 0; i != MC_MAX_CHILDREN; ++i)
        if (mc_children[i] > 0) {
            kill(mc_children[i], SIGKILL);
            waitpid(mc_children[i], NULL, 0);
            mc_children[i] = 0;
        }
    if (mc_dir[0] != '\0' && getenv("CORRAL_E2E_KEEP") == NULL) {
        DIR *d = opendir(mc_dir);
        if (d != NULL) {
            struct dirent *e;
            char path[PATH_MAX];
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                snprintf(path, sizeof(path), "%s/%s", mc_dir, e->d_name);
                unlink(path);
            }
            closedir(d);
        }
        rmdir(mc_dir);
    }
}

static void mc_track(pid_t pid, int add)
{
    int i;
    for (i = 0; i != MC_MAX_CHILDREN; ++i)
        if (add ? mc_children[i] == 0 : mc_children[i] == pid) {
            mc_children[i] = add ? pid : 0;
            return;
        }
}

static int mc_log_path(char *out, size_t outsize)
{
    static unsigned seq;
    if (!mc_atexit_done) {
        atexit(mc_cleanup_at_exit);
        mc_atexit_done = 1;
    }
    if (mc_dir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(mc_dir, sizeof(mc_dir), "%s/corral-e2e-mc.XXXXXX", base && *base && strlen(base) < 80 ? base : "/tmp");
        if (mkdtemp(mc_dir) == NULL) {
            fprintf(stderr, "mc_harness: mkdtemp: %s\n", strerror(errno));
            mc_dir[0] = '\0';
            return -1;
        }
    }
    snprintf(out, outsize, "%s/memcached-%u.log", mc_dir, ++seq);
    return 0;
}

static void mc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int mc_decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Polls for pid's exit up to timeout_ms: its decoded status, -2 while it runs, -1 on a waitpid error. */
static int mc_wait_pid(pid_t pid, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            mc_track(pid, 0);
            return mc_decode_status(status);
        }
        if (r < 0 && errno != EINTR) {
            mc_track(pid, 0);
            return -1;
        }
        if (harness_now_ms() >= deadline)
            return -2;
        mc_sleep_ms(10);
    }
}

static pid_t mc_spawn(int port, const char *log_path)
{
    const char *bin = getenv("CORRAL_MEMCACHED") != NULL ? getenv("CORRAL_MEMCACHED") : "/usr/bin/memcached";
    char port_s[16];
    char *argv[16];
    int argc = 0;
    pid_t parent = getpid(), pid;
    snprintf(port_s, sizeof(port_s), "%d", port);
    argv[argc++] = (char *)bin;
    argv[argc++] = "-l";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "-p";
    argv[argc++] = port_s;
    argv[argc++] = "-U";
    argv[argc++] = "0";
    argv[argc++] = "-t";
    argv[argc++] = "1";
    argv[argc++] = "-m";
    argv[argc++] = "64";
    if (geteuid() == 0) { /* memcached refuses to run as root without -u */
        argv[argc++] = "-u";
        argv[argc++] = "root";
    }
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0) {
        fprintf(stderr, "mc_harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in, out;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        in = open("/dev/null", O_RDONLY);
        out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        closefrom(3);
        execv(bin, argv);
        dprintf(2, "mc_harness: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    mc_track(pid, 1);
    return pid;
}

static void mc_print_log(const char *path)
{
    char *text = harness_read_file(path);
    fprintf(stderr, "\n---- memcached log (%s) ----\n%s\n---- end of log ----\n", path, text != NULL ? text : "(unreadable)");
    free(text);
}

int mc_start(mc_proc_t *m, int port)
{
    int attempt;
    memset(m, 0, sizeof(*m));
    for (attempt = 0; attempt != 3; ++attempt) {
        int p = port != 0 ? port : harness_free_port();
        long deadline;
        pid_t pid;
        if (p <= 0 || mc_log_path(m->log_path, sizeof(m->log_path)) != 0)
            return -1;
        if ((pid = mc_spawn(p, m->log_path)) < 0)
            return -1;
        deadline = harness_now_ms() + MC_START_TIMEOUT_MS;
        for (;;) {
            int st = mc_wait_pid(pid, 0), fd;
            if (st != -2) {
                char *log = harness_read_file(m->log_path);
                int in_use = log != NULL && strstr(log, "in use") != NULL;
                free(log);
                if (in_use && port == 0 && attempt != 2)
                    break; /* lost the port race: another port */
                fprintf(stderr, "mc_harness: memcached on port %d exited during startup (status %d)\n", p, st);
                mc_print_log(m->log_path);
                m->port = port;
                return -1;
            }
            if ((fd = harness_connect(p)) >= 0) {
                close(fd);
                m->pid = pid;
                m->port = p;
                return 0;
            }
            if (harness_now_ms() >= deadline) {
                fprintf(stderr, "mc_harness: memcached not accepting on %d after %d ms\n", p, MC_START_TIMEOUT_MS);
                kill(pid, SIGKILL);
                mc_wait_pid(pid, MC_STOP_TIMEOUT_MS);
                mc_print_log(m->log_path);
                m->port = port;
                return -1;
            }
            mc_sleep_ms(10);
        }
    }
    return -1;
}

int mc_stop(mc_proc_t *m)
{
    int st;
    if (m == NULL || m->pid <= 0)
        return -1;
    kill(m->pid, SIGTERM);
    kill(m->pid, SIGCONT); /* a frozen process acts on the SIGTERM only once it runs */
    if ((st = mc_wait_pid(m->pid, MC_STOP_TIMEOUT_MS)) == -2) {
        fprintf(stderr, "mc_harness: memcached pid %d ignored SIGTERM for %d ms; killing it\n", (int)m->pid, MC_STOP_TIMEOUT_MS);
        kill(m->pid, SIGKILL);
        st = mc_wait_pid(m->pid, MC_STOP_TIMEOUT_MS);
    }
    m->pid = 0;
    m->frozen = 0;
    return st < 0 ? -1 : st;
}

int mc_freeze(mc_proc_t *m)
{
    if (m == NULL || m->pid <= 0 || kill(m->pid, SIGSTOP) != 0)
        return -1;
    m->frozen = 1;
    return 0;
}

int mc_thaw(mc_proc_t *m)
{
    if (m == NULL || m->pid <= 0 || kill(m->pid, SIGCONT) != 0)
        return -1;
    m->frozen = 0;
    return 0;
}
