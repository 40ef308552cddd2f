/* read_run.c: reads run.json, what the CLI wrote before the target started and rewrote when it ended (format/rundir.h). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/read.h"
#include "format/rundir.h"
#include "prof.h"

static uint64_t json_u64(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return (uint64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) > 0)
        return (uint64_t)json_real_value(v);
    return 0;
}

static int read_machine(const json_t *j, struct prof_machine *mc)
{
    if (!json_is_object(j))
        return PROF_EFORMAT;
    memset(mc, 0, sizeof *mc);
    mc->online_cpus = (int)json_u64(j, "online_cpus");
    mc->affinity_cpus = (int)json_u64(j, "affinity_cpus");
    json_t *q = json_object_get(j, "quota_cpus");
    mc->quota_cpus = json_is_number(q) ? json_number_value(q) : 0;
    mc->cgroup_version = (int)json_u64(j, "cgroup_version");
    mc->physical_cores = (int)json_u64(j, "physical_cores");
    mc->usable_cpus = (int)json_u64(j, "usable_cpus");
    mc->mem_total_bytes = json_u64(j, "mem_total_bytes");
    mc->mem_available_bytes = json_u64(j, "mem_available_bytes");
    mc->cgroup_mem_limit_bytes = json_u64(j, "cgroup_mem_limit_bytes");
    mc->nofile_limit = json_u64(j, "nofile_limit");
    mc->clock_ticks = (long)json_u64(j, "clock_ticks");
    mc->page_size = (long)json_u64(j, "page_size");
    /* The fingerprint: absent from run directories older than `poolprof check` ("" and 0). */
    const char *cm = json_string_value(json_object_get(j, "cpu_model"));
    const char *kr = json_string_value(json_object_get(j, "kernel"));
    snprintf(mc->cpu_model, sizeof mc->cpu_model, "%s", cm ? cm : "");
    snprintf(mc->kernel, sizeof mc->kernel, "%s", kr ? kr : "");
    mc->pmu = json_is_true(json_object_get(j, "pmu"));
    /* Without usable_cpus no worker count can be judged: the run.json is not one the CLI wrote. */
    return mc->usable_cpus > 0 ? 0 : PROF_EFORMAT;
}

int prof_read_run(const char *rundir, struct prof_rec_run *out)
{
    char path[PATH_MAX];
    json_error_t jerr;

    memset(out, 0, sizeof *out);
    snprintf(path, sizeof path, "%s/run.json", rundir);
    out->doc = json_load_file(path, 0, &jerr);
    if (!out->doc)
        return access(path, F_OK) == 0 ? PROF_EFORMAT : PROF_ENOENT;
    const char *fmt = json_string_value(json_object_get(out->doc, "format"));
    if (!json_is_object(out->doc) || !fmt || strcmp(fmt, PROF_RUN_FORMAT) != 0)
        return PROF_EFORMAT;
    int rc = read_machine(json_object_get(out->doc, "machine"), &out->machine);
    if (rc)
        return rc;
    out->start_ns = json_u64(out->doc, "start_ns");
    out->end_ns = json_u64(out->doc, "end_ns");
    out->root_pid = (int)json_u64(out->doc, "root_pid");
    out->interval_ms = (int)json_u64(json_object_get(out->doc, "options"), "interval_ms");
    out->attached = json_is_true(json_object_get(json_object_get(out->doc, "options"), "attached"));
    return 0;
}
