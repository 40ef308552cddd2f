/* golden.h: what the renderers' golden-file tests share: a document rendered to memory, a file read whole, and the byte-for-byte comparison that names the first line that differs. */
#ifndef POOLPROF_TESTS_GOLDEN_H
#define POOLPROF_TESTS_GOLDEN_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/render.h"

/* What rd writes for doc alone (no run behind it), NUL-terminated; *len its length when len. */
static inline char *golden_render(const struct prof_renderer *rd, json_t *doc, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    struct prof_report r = {.doc = doc};
    cr_assert_not_null(f);
    cr_assert_eq(prof_render(rd, &r, f), 0, "%s renderer failed", rd->name);
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

/* The file at path, whole and NUL-terminated; *len its length. */
static inline char *golden_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/*
 * got (glen bytes) is the golden file at path byte for byte, or the test fails naming what (the
 * fixture and format), the line and the byte where they part. POOLPROF_REGEN=1 first rewrites the
 * file from got: read its diff before committing it, a golden file is a claim.
 */
static inline void golden_compare(const char *what, const char *got, size_t glen, const char *path)
{
    size_t wlen;
    if (getenv("POOLPROF_REGEN")) {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f, "%s: cannot write", path);
        cr_assert_eq(fwrite(got, 1, glen, f), glen);
        fclose(f);
    }
    char *want = golden_slurp(path, &wlen);
    if (glen != wlen || memcmp(got, want, glen) != 0) {
        size_t i = 0, line = 1;
        for (; i < glen && i < wlen && got[i] == want[i]; i++)
            line += got[i] == '\n';
        cr_assert_fail("%s differs from %s at line %zu (byte %zu)", what, path, line, i);
    }
    free(want);
}

#endif
