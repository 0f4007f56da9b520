/*
 * h1_interpose.h: corral's definitions of picohttpparser's phr_* functions, which take the place of libh2o's bundled
 * lenient parser by symbol interposition (see h1_interpose.c for the mechanism and its precondition).
 */
#ifndef CORRAL_H1_INTERPOSE_H
#define CORRAL_H1_INTERPOSE_H

/* NULL when libh2o's calls of every phr_* function reach corral's own definition (see h1_interpose.c for how that
 * is checked); else the first name that does not (libh2o would then parse HTTP/1.1 with its lenient parser: refuse to start). Referencing this function
 * also links h1_interpose.o into the binary (archive members are only pulled in when referenced). */
const char *cr_h1_interpose_active(void);

#endif
