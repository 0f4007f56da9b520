// media_pattern.h: the syntax of the media-type patterns a route's compress.types lists, matched by
// cr_media_type_compressible (http/encoding.h): "type/subtype", "type/*", "type/*+suffix", "*/*+suffix", "+suffix".
// (Line comments: the patterns contain comment delimiters.)
#ifndef CORRAL_MEDIA_PATTERN_H
#define CORRAL_MEDIA_PATTERN_H

/* Validates one compress.types pattern (any case). Returns NULL when it is one of the forms above, else a reason. */
const char *cr_media_pattern_check(const char *pattern);

#endif
