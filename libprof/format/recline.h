/* recline.h: one line of a text record (monitor.rec, sampler.rec) split into its type and key=value fields. */
#ifndef POOLPROF_RECLINE_H
#define POOLPROF_RECLINE_H

#include <stdint.h>
#include <stdio.h>

#define PROF_REC_MAX_FIELDS 24

struct prof_fields {
    int n;
    const char *key[PROF_REC_MAX_FIELDS];
    char *val[PROF_REC_MAX_FIELDS];
};

/* Split line in place: "T k=v k=v". 0, or -1 when it is not a record line. */
int prof_rec_tokenize(char *line, char *type, struct prof_fields *f);
/* The raw (still escaped) value of key, or NULL. */
char *prof_field(struct prof_fields *f, const char *key);
/* Decimal values: 0, or -1 when absent or malformed. */
int prof_field_u64(struct prof_fields *f, const char *key, uint64_t *out);
int prof_field_int(struct prof_fields *f, const char *key, long long *out);
/* The value, or 0 when absent or malformed. */
uint64_t prof_field_u64_or0(struct prof_fields *f, const char *key);
/* Split an escaped list "a,b,c" (prof_rec_escape_list; modified in place) into a malloc'd argv
 * of unescaped strings appended to *argv. 0, or -1 when out of memory. */
int prof_rec_parse_list(char ***argv, int *argc, char *list);

/* What prof_rec_read_lines saw of a file. */
struct prof_rec_read {
    long lines;         /* lines read, the V line included */
    long bad;           /* malformed lines: not a record, or the callback said so */
    long torn;          /* the number of a last line without LF (its writer stopped mid-line), 0 if none */
    int version_ok;     /* the first line was "V version=VERSION" */
};

/*
 * Read a text record file (monitor.rec, sampler.rec, counters.rec) line by line, the one loop of
 * their readers: the first line must be "V version=VERSION", else nothing more is read; every
 * later non-empty line is tokenised and given to fn, which returns 0, 1 for a malformed line
 * (counted in bad), or a negative code that stops the reading and is returned. A torn last line
 * is left out. Returns 0 or fn's negative code.
 */
int prof_rec_read_lines(FILE *fp, uint64_t version, int (*fn)(void *ctx, char type, struct prof_fields *f), void *ctx,
                        struct prof_rec_read *st);

#endif
