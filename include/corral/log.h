/*
 * log.h: the error log (stderr), one line per event with an ISO-8601 UTC timestamp and a level.
 * Thread-safe: each line is formatted into a local buffer and written with one write(2).
 */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

void cr_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
