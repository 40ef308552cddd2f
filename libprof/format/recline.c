/* recline.c: the text-record line splitter shared by the monitor.rec and sampler.rec readers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/monrec.h"
#include "format/recline.h"

char *prof_field(struct prof_fields *f, const char *key)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->key[i], key) == 0)
            return f->val[i];
    return NULL;
}

int prof_field_u64(struct prof_fields *f, const char *key, uint64_t *out)
{
    char *v = prof_field(f, key), *end;
    if (!v || !*v)
        return -1;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || *v == '-')
        return -1;
    *out = x;
    return 0;
}

int prof_field_int(struct prof_fields *f, const char *key, long long *out)
{
    char *v = prof_field(f, key), *end;
    if (!v || !*v)
        return -1;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

uint64_t prof_field_u64_or0(struct prof_fields *f, const char *key)
{
    uint64_t x = 0;
    prof_field_u64(f, key, &x);
    return x;
}

int prof_rec_tokenize(char *line, char *type, struct prof_fields *f)
{
    char *save = NULL, *tok = strtok_r(line, " ", &save);
    if (!tok || tok[1] != '\0')
        return -1;
    *type = tok[0];
    f->n = 0;
    while ((tok = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        if (f->n < PROF_REC_MAX_FIELDS) {
            f->key[f->n] = tok;
            f->val[f->n] = eq + 1;
            f->n++;
        }
    }
    return 0;
}

int prof_rec_parse_list(char ***argv, int *argc, char *list)
{
    if (!list || !*list)
        return 0;
    for (char *s = list;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        size_t n = prof_rec_unescape(s);
        char **na = realloc(*argv, (*argc + 1) * sizeof *na);
        if (!na)
            return -1;
        *argv = na;
        if (!((*argv)[*argc] = strndup(s, n)))
            return -1;
        (*argc)++;
        if (!comma)
            break;
        s = comma + 1;
    }
    return 0;
}

int prof_rec_read_lines(FILE *fp, uint64_t version, int (*fn)(void *ctx, char type, struct prof_fields *f), void *ctx,
                        struct prof_rec_read *st)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;

    memset(st, 0, sizeof *st);
    while (rc == 0 && (len = getline(&buf, &cap, fp)) > 0) {
        st->lines++;
        if (buf[len - 1] != '\n') {
            st->torn = st->lines; /* writers append whole lines: this one was being written when it stopped */
            break;
        }
        buf[--len] = '\0';
        char type;
        struct prof_fields f;
        if (len == 0)
            continue;
        if (prof_rec_tokenize(buf, &type, &f) != 0) {
            st->bad++;
            continue;
        }
        if (st->lines == 1) {
            uint64_t v = 0;
            if (type != 'V' || prof_field_u64(&f, "version", &v) != 0 || v != version)
                break;
            st->version_ok = 1;
            continue;
        }
        if (!st->version_ok)
            break;
        int r = fn(ctx, type, &f);
        if (r == 1)
            st->bad++;
        else if (r < 0)
            rc = r;
    }
    free(buf);
    return rc;
}
