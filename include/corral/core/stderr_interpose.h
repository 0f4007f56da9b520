/*
 * stderr_interpose.h: corral's definitions of the stdio calls libh2o writes stderr with (__fprintf_chk,
 * __vfprintf_chk, fwrite, perror), which route libh2o's lines through corral's rate-limited log by symbol
 * interposition (see stderr_interpose.c for the mechanism).
 */
#ifndef CORRAL_STDERR_INTERPOSE_H
#define CORRAL_STDERR_INTERPOSE_H

/* 1 when libh2o-evloop is loaded and its stderr calls reach these definitions, else 0 (its lines then go to stderr
 * unlimited). Referencing this function also links stderr_interpose.o into the binary. */
int cr_stderr_interpose_active(void);

#endif
