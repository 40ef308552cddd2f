/* md_escape.h: Markdown text escaping shared by the Markdown renderers (the check's and the report's). */
#ifndef POOLPROF_MD_ESCAPE_H
#define POOLPROF_MD_ESCAPE_H

#include <stdint.h>
#include <stdio.h>

/*
 * cp as GitHub-flavoured Markdown text that stays inside one table cell and renders as written
 * (a prof_check_esc_fn: NULL to print cp as it is, else its replacement, built in buf of cap bytes).
 * '|' would end the cell and a newline the row (a newline becomes <br>); backslashes, backticks,
 * '*', '_', '~', '[' and ']' would start code, emphasis or links (backslash-escaped); '<', '>' and
 * '&' would start HTML (entities). Other control characters print as \xNN. flag is unused.
 */
const char *prof_md_escape_char(uint32_t cp, int flag, char *buf, size_t cap);

/* s through prof_md_escape_char to out, a byte that begins no well-formed UTF-8 character as \xNN. */
void prof_md_escape(FILE *out, const char *s);

#endif
