/* md_escape.c: Markdown text escaping shared by the Markdown renderers: a target's strings never break a table or become HTML. */
#include <stdio.h>

#include "reports/check_render.h"
#include "reports/md_escape.h"

const char *prof_md_escape_char(uint32_t cp, int flag, char *buf, size_t cap)
{
    (void)flag;
    switch (cp) {
    case '\n':
        return "<br>";
    case '\r':
    case '\t':
        return " ";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '&':
        return "&amp;";
    case '\\':
    case '|':
    case '`':
    case '*':
    case '_':
    case '~':
    case '[':
    case ']':
        snprintf(buf, cap, "\\%c", (int)cp);
        return buf;
    }
    /* The backslash of \xNN is escaped in turn, so it shows rather than escaping the x. */
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
        snprintf(buf, cap, "\\\\x%02X", (unsigned)cp);
        return buf;
    }
    return NULL;
}

void prof_md_escape(FILE *out, const char *s)
{
    prof_check_escape(out, NULL, 0, s, prof_md_escape_char, 0, "\\\\x%02X", NULL);
}
