/* schema_gen.c: a build step: the report schema, its template (report.schema.in.json) completed with every figure of the metric table. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "format/metrics.h"

/*
 * usage: schema_gen TEMPLATE OUTPUT
 * The table (metrics.h) says where each figure sits in a thread ($defs.thread) and in a stage
 * ($defs.stage, "a.b" inside the object property a), its type and its description: the
 * template holds everything else. A figure added to the table is in the schema at the next
 * build, and test_metrics checks that it got there.
 */

static json_t *property(const struct prof_metric *mt)
{
    const char *type = mt->unit == PROF_METRIC_NS ? "number" : "integer";
    json_t *t = prof_metric_may_be_null((enum prof_metric_id)(mt - prof_metrics)) ? json_pack("[s, s]", type, "null")
                                                                                   : json_string(type);
    return json_pack("{s:o, s:i, s:s}", "type", t, "minimum", 0, "description", mt->description);
}

/* Put name into object schema o: its properties and its required list. 0, or -1 when o is no object schema. */
static int add(json_t *o, const char *name, json_t *prop)
{
    json_t *props = json_object_get(o, "properties"), *req = json_object_get(o, "required");
    if (!json_is_object(props) || !json_is_array(req)) {
        json_decref(prop);
        return -1;
    }
    json_object_set_new(props, name, prop);
    size_t i;
    json_t *v;
    json_array_foreach(req, i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return 0;
    json_array_append_new(req, json_string(name));
    return 0;
}

static int add_path(json_t *o, const char *key, const struct prof_metric *mt)
{
    const char *dot = strchr(key, '.');
    if (!dot)
        return add(o, key, property(mt));
    char head[64];
    snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
    return add(json_object_get(json_object_get(o, "properties"), head), dot + 1, property(mt));
}

int main(int argc, char **argv)
{
    json_error_t err;

    if (argc != 3) {
        fprintf(stderr, "usage: schema_gen TEMPLATE OUTPUT\n");
        return 2;
    }
    json_t *s = json_load_file(argv[1], JSON_PRESERVE_ORDER, &err);
    if (!s) {
        fprintf(stderr, "schema_gen: %s:%d: %s\n", argv[1], err.line, err.text);
        return 1;
    }
    json_t *defs = json_object_get(s, "$defs");
    json_t *thread = json_object_get(defs, "thread"), *stage = json_object_get(defs, "stage");
    for (size_t i = 0; i < PROF_METRIC_COUNT_; i++) {
        const struct prof_metric *mt = &prof_metrics[i];
        if ((mt->thread_key && add_path(thread, mt->thread_key, mt)) ||
            (mt->stage_key && add_path(stage, mt->stage_key, mt))) {
            fprintf(stderr, "schema_gen: %s: the template has no object schema for %s\n", mt->field,
                    mt->thread_key ? mt->thread_key : mt->stage_key);
            return 1;
        }
    }
    if (json_dump_file(s, argv[2], JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) != 0) {
        fprintf(stderr, "schema_gen: %s: cannot write\n", argv[2]);
        return 1;
    }
    json_decref(s);
    return 0;
}
