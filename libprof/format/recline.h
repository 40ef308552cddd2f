/* recline.h: one line of a text record (monitor.rec, sampler.rec) split into its type and key=value fields. */
#ifndef POOLPROF_RECLINE_H
#define POOLPROF_RECLINE_H

#include <stdint.h>

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

#endif
