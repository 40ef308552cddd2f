/* utf8.h: decoding one UTF-8 character, for every reader and renderer that must not pass a target's malformed bytes on. */
#ifndef POOLPROF_FORMAT_UTF8_H
#define POOLPROF_FORMAT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * The character at s (at most n bytes): its length, with its code point in *cp; 0 when the bytes
 * there begin no well-formed character (a stray continuation byte, a cut sequence, an overlong
 * form, a surrogate, past U+10FFFF). Thread names, argv and paths come from the target as bytes:
 * a 15-byte thread name can end in half a character.
 */
size_t prof_utf8_decode(const char *s, size_t n, uint32_t *cp);

#endif
