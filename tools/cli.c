/* cli.c: the one option parser of the poolprof commands, the help it generates from their tables, and the CLI's messages. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "prof.h"

#define HELP_WIDTH 88  /* columns of poolprof help */
#define HELP_OPTCOL 26 /* where an option's description starts */
#define MAX_ARGS 64    /* words a CLI_ARGS_LIST command may take */

static const char *current = "poolprof";

const char *cli_name(void)
{
    return current;
}

void cli_msg(const char *fmt, ...)
{
    va_list ap;

    if (strcmp(current, "poolprof") == 0)
        fprintf(stderr, "poolprof: ");
    else
        fprintf(stderr, "poolprof: %s: ", current);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- help ------------------------------------------------------------------------------------------ */

void cli_wrap(FILE *out, const char *text, int indent, int col)
{
    int fresh = 1; /* no word of text on this line yet */

    for (const char *p = text; *p;) {
        if (*p == '\n') {
            fputc('\n', out);
            col = 0;
            fresh = 1;
            p++;
            continue;
        }
        int word = (int)strcspn(p, " \n");
        if (!fresh && col + 1 + word > HELP_WIDTH) {
            fputc('\n', out);
            col = 0;
            fresh = 1;
        }
        if (col < indent)
            col += fprintf(out, "%*s", indent - col, "");
        else if (!fresh)
            col += fprintf(out, " ");
        col += fprintf(out, "%.*s", word, p);
        fresh = 0;
        p += word;
        while (*p == ' ')
            p++;
    }
    if (col)
        fputc('\n', out);
}

static void help_option(FILE *out, char shortname, const char *longname, const char *value, const char *help)
{
    int n = shortname ? fprintf(out, "  -%c, ", shortname) : fprintf(out, "  ");
    n += fprintf(out, "--%s%s%s", longname, value ? " " : "", value ? value : "");
    if (n >= HELP_OPTCOL - 1) {
        fputc('\n', out);
        n = 0;
    }
    cli_wrap(out, help, HELP_OPTCOL, n);
}

void cli_help(const struct cli_cmd *c, FILE *out)
{
    fprintf(out, "usage: poolprof %s%s%s\n\n", c->name, c->usage[0] ? " " : "", c->usage);
    cli_wrap(out, c->about, 0, 0);
    fprintf(out, "\noptions:\n");
    for (const struct cli_opt *o = c->opts; o && o->name; o++)
        help_option(out, o->short_name, o->name, o->value, o->help);
    help_option(out, 'h', "help", NULL, "describe every option of the command, and exit");
    if (c->help_more) {
        fputc('\n', out);
        c->help_more(out);
    }
    fputc('\n', out);
    cli_wrap(out, c->exits, 0, 0);
}

void cli_help_exits(FILE *out)
{
    int n;
#define CLI_EXIT_ROW(name, value, shown, meaning) \
    n = fprintf(out, "  %s", shown);              \
    cli_wrap(out, meaning, 14, n);
    CLI_EXIT_MAP(CLI_EXIT_ROW)
#undef CLI_EXIT_ROW
}

/* ---- the parser ---------------------------------------------------------------------------------------- */

/* -h, --help: every command's, answered by the parser itself. */
static const struct cli_opt help_opt = {"help", 'h', NULL, NULL, NULL, 0, 0, 0, NULL};

/* The option named by s (after "--", up to '=' or its end, len chars): exact, else the one it abbreviates.
 * NULL when none; *ambiguous set when it abbreviates several. */
static const struct cli_opt *find_long(const struct cli_cmd *c, const char *s, size_t len, int *ambiguous)
{
    const struct cli_opt *found = NULL;
    int n = 0;

    *ambiguous = 0;
    for (size_t k = 0;; k++) {
        const struct cli_opt *o = c->opts && c->opts[k].name ? &c->opts[k] : &help_opt;
        if (strncmp(o->name, s, len) == 0) {
            if (strlen(o->name) == len)
                return o;
            found = o;
            n++;
        }
        if (o == &help_opt)
            break;
    }
    *ambiguous = n > 1;
    return n == 1 ? found : NULL;
}

static const struct cli_opt *find_short(const struct cli_cmd *c, char ch)
{
    for (const struct cli_opt *o = c->opts; o && o->name; o++)
        if (o->short_name == ch)
            return o;
    return ch == 'h' ? &help_opt : NULL;
}

/* The one-line hint every usage error ends with. */
static void usage_error(const struct cli_cmd *c, const char *fmt, const char *a, const char *b)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a, b);
    cli_msg("%s (usage: poolprof %s %s; poolprof help %s)", msg, c->name, c->usage, c->name);
}

/*
 * One option at argv[*i]: its value from "--name=VALUE", "-oVALUE" or the next word. 0 to go
 * on, 1 when it was --help (printed), PROF_EINVAL after the one-line message.
 */
static int parse_option(const struct cli_cmd *c, int argc, char **argv, int *i)
{
    const char *s = argv[*i], *value = NULL;
    const struct cli_opt *o;
    char name[64];

    if (s[1] == '-') {
        const char *eq = strchr(s + 2, '=');
        size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
        int ambiguous;
        o = find_long(c, s + 2, len, &ambiguous);
        if (!o) {
            snprintf(name, sizeof name, "%.*s", (int)(len + 2 < sizeof name ? len + 2 : sizeof name - 1), s);
            usage_error(c, ambiguous ? "option '%s' is ambiguous%s" : "unknown option '%s'%s", name, "");
            return PROF_EINVAL;
        }
        if (eq)
            value = eq + 1;
    } else {
        o = find_short(c, s[1]);
        if (!o) {
            snprintf(name, sizeof name, "-%c", s[1]);
            usage_error(c, "unknown option '%s'%s", name, "");
            return PROF_EINVAL;
        }
        if (s[2]) {
            if (!o->value) {
                usage_error(c, "unknown option '%s'%s", s, "");
                return PROF_EINVAL;
            }
            value = s + 2;
        }
    }
    snprintf(name, sizeof name, "--%s", o->name);
    if (o == &help_opt) {
        cli_help(c, stdout);
        return 1;
    }
    if (!o->value && value) {
        usage_error(c, "option '%s' takes no value%s", name, "");
        return PROF_EINVAL;
    }
    if (o->value && !value) {
        if (*i + 1 >= argc) {
            usage_error(c, "option '%s' needs a value (%s)", name, o->value);
            return PROF_EINVAL;
        }
        value = argv[++*i];
    }
    char why[512] = "";
    if (o->parse(o, value, (char *)c->dst + o->offset, why, sizeof why) < 0) {
        if (value)
            cli_msg("%s '%s': %s", name, value, why);
        else
            cli_msg("%s: %s", name, why);
        return PROF_EINVAL;
    }
    return 0;
}

int cli_run(const struct cli_cmd *c, int argc, char **argv)
{
    static char *args[MAX_ARGS + 1];
    char **rest = NULL;
    int n = 0, only_args = 0;

    current = c->name;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int is_option = !only_args && s[0] == '-' && s[1] != '\0';
        if (is_option && strcmp(s, "--") == 0) {
            only_args = 1;
            if (c->args == CLI_ARGS_COMMAND) {
                rest = argv + i + 1;
                break;
            }
            continue;
        }
        if (!is_option) {
            if (c->args == CLI_ARGS_COMMAND) {
                rest = argv + i;
                break;
            }
            if (n == c->max_args) {
                if (n == 0)
                    usage_error(c, "unexpected argument '%s'%s", s, "");
                else
                    usage_error(c, "one %s wanted, not '%s' as well", c->arg_name, s);
                return CLI_EXIT_USAGE;
            }
            args[n++] = argv[i];
            continue;
        }
        int rc = parse_option(c, argc, argv, &i);
        if (rc < 0)
            return CLI_EXIT_USAGE;
        if (rc > 0)
            return CLI_EXIT_OK;
    }
    if (c->args == CLI_ARGS_COMMAND) {
        if (!rest)
            rest = argv + argc; /* argv[argc] is NULL */
        for (n = 0; rest[n]; n++)
            ;
    } else {
        args[n] = NULL;
        rest = args;
    }
    if (n < c->min_args) {
        usage_error(c, "no %s given%s", c->arg_name, "");
        return CLI_EXIT_USAGE;
    }
    return c->exec(rest, n);
}

/* ---- option values ----------------------------------------------------------------------------------- */

int cli_flag_on(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o, (void)value, (void)why, (void)cap;
    *(int *)dst = 1;
    return 0;
}

int cli_flag_off(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o, (void)value, (void)why, (void)cap;
    *(int *)dst = 0;
    return 0;
}

int cli_string(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o;
    if (!*value) {
        snprintf(why, cap, "wants a value, not an empty string");
        return PROF_EINVAL;
    }
    *(const char **)dst = value;
    return 0;
}

int cli_u64(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    char *end;

    (void)o;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || !(*value >= '0' && *value <= '9')) {
        snprintf(why, cap, "wants a non-negative integer");
        return PROF_EINVAL;
    }
    *(unsigned long long *)dst = v;
    return 0;
}

int cli_int(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    char *end;
    long v = 0;

    errno = 0;
    /* Digits only: strtol would also take leading blanks and a sign. */
    if ((*value >= '0' && *value <= '9') || (*value == '-' && o->min < 0))
        v = strtol(value, &end, 10);
    else
        end = (char *)value;
    if (end == value || *end || errno || v < o->min || v > o->max) {
        snprintf(why, cap, "wants %s from %ld to %ld", o->unit, o->min, o->max);
        return PROF_ERANGE;
    }
    *(int *)dst = (int)v;
    return 0;
}

int cli_seconds(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    char *end;
    double v = strtod(value, &end);

    if (end == value || *end || !(v > 0) || v > (double)o->max) {
        snprintf(why, cap, "wants seconds above 0, at most %ld", o->max);
        return PROF_ERANGE;
    }
    *(double *)dst = v;
    return 0;
}

int cli_check_writable(const char *path, char *why, size_t cap)
{
    struct stat st;
    char dir[PATH_MAX], probe[PATH_MAX + 64];

    if (!*path) {
        snprintf(why, cap, "an empty path");
        return PROF_EINVAL;
    }
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(why, cap, "is a directory");
            return PROF_EINVAL;
        }
        if (!S_ISREG(st.st_mode)) { /* a terminal, a pipe, /dev/stdout: written in place */
            if (access(path, W_OK) < 0) {
                int err = errno;
                snprintf(why, cap, "cannot be written: %s", strerror(err));
                return prof_err_from_errno(err);
            }
            return 0;
        }
    }
    /* A file is written beside itself and renamed over: its directory must take a new file. */
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir) {
        snprintf(why, cap, "path too long");
        return PROF_ERANGE;
    }
    snprintf(probe, sizeof probe, "%s/.poolprof-probe.%d", dir, (int)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            snprintf(why, cap, "cannot be written: no directory %s", dir);
        else
            snprintf(why, cap, "cannot be written in %s: %s", dir, strerror(err));
        return prof_err_from_errno(err);
    }
    close(fd);
    unlink(probe);
    return 0;
}

int cli_output_path(const struct cli_opt *o, const char *value, void *dst, char *why, size_t cap)
{
    (void)o;
    int err = cli_check_writable(value, why, cap);
    if (err < 0)
        return err;
    *(const char **)dst = value;
    return 0;
}
