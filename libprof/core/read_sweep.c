/* read_sweep.c: reads sweep.json, the results `poolprof sweep --keep` leaves in the run it profiled (format/rundir.h), checked for the shape the report takes from it. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/read.h"
#include "core/run.h"
#include "format/rundir.h"
#include "prof.h"

/* A number or null: the sweep writes null for what it could not measure (jansson has no NaN). */
static int num_or_null(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) || json_is_null(v);
}

/* Why doc is not a sweep the report can draw, or NULL when it is one. */
static const char *unusable(const json_t *doc)
{
    const char *schema = json_string_value(json_object_get(doc, "schema"));
    if (!schema || strcmp(schema, PROF_SWEEP_SCHEMA) != 0)
        return "its schema is not " PROF_SWEEP_SCHEMA;
    const json_t *points = json_object_get(doc, "points"), *p;
    size_t i;
    if (!json_is_array(points) || json_array_size(points) == 0)
        return "no points";
    json_array_foreach(points, i, p) {
        const json_t *w = json_object_get(p, "workers");
        if (!json_is_integer(w) || json_integer_value(w) < 1 || json_integer_value(w) > INT_MAX)
            return "a point without a worker count";
        if (!num_or_null(p, "median_seconds") || !num_or_null(p, "speedup") || !num_or_null(p, "efficiency"))
            return "a point without its median, speedup or efficiency";
    }
    for (const char *const *k = (const char *const[]){"amdahl", "usl", "recommendation", NULL}; *k; k++) {
        const json_t *v = json_object_get(doc, *k);
        if (v && !json_is_object(v) && !json_is_null(v))
            return "amdahl, usl or recommendation neither an object nor null";
    }
    return NULL;
}

int prof_read_sweep(struct prof_records *rec)
{
    char path[PATH_MAX];
    json_error_t jerr;

    if (snprintf(path, sizeof path, "%s/%s", rec->rundir, PROF_RUN_SWEEP_FILE) >= (int)sizeof path)
        return 0; /* run.json in the same directory was read: this cannot happen */
    if (access(path, F_OK) != 0)
        return 0; /* the run did not come from `poolprof sweep --keep`: the usual case */
    json_t *doc = json_load_file(path, 0, &jerr);
    const char *why = doc ? unusable(doc) : NULL;
    /* Never silently: a sweep.json the report cannot use is named in measurement.notes. */
    if (!doc)
        prof_note(rec->sweep_notes, "%s ignored: not JSON (line %d: %.120s)", PROF_RUN_SWEEP_FILE, jerr.line, jerr.text);
    else if (why)
        prof_note(rec->sweep_notes, "%s ignored: %s (schema %.60s)", PROF_RUN_SWEEP_FILE, why,
                  json_is_string(json_object_get(doc, "schema")) ? json_string_value(json_object_get(doc, "schema"))
                                                                 : "absent");
    else
        rec->sweep = json_incref(doc);
    json_decref(doc);
    return 0;
}
