/* pyopen.c: finds CPython 3.11+ in a process (its executable or a mapped libpython3.*, _PyRuntime, Py_Version and the layout of that version) and opens, forks and hands out a reader for it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/elfsym.h"
#include "prof.h"
#include "pystack_int.h"

/* ---- open ---- */

struct candidate {
    char path[PATH_MAX];     /* as in /proc/PID/maps */
    uint64_t start, end, pgoff;   /* the mapping with the lowest file offset */
    int is_exe;
};

static void set_why(char *why, size_t whycap, const char *fmt, unsigned a, unsigned b)
{
    if (why && whycap)
        snprintf(why, whycap, fmt, a, b);
}

/* Open the ELF of a mapped file as the target sees it (its root, or the mapping itself if the path is gone). */
static int open_mapped_elf(pid_t pid, const struct candidate *c, struct prof_elf **e)
{
    char p[PATH_MAX + 64];
    int rc;

    if (c->is_exe) {
        snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
        if ((rc = prof_elf_open(p, e)) == 0)
            return 0;
    }
    rc = PROF_ENOENT;
    if (snprintf(p, sizeof(p), "/proc/%d/root%s", (int)pid, c->path) < (int)sizeof(p) &&
        (rc = prof_elf_open(p, e)) == 0)
        return 0;
    /* The file was replaced or deleted since it was mapped: open the mapping itself. */
    snprintf(p, sizeof(p), "/proc/%d/map_files/%llx-%llx", (int)pid, (unsigned long long)c->start,
             (unsigned long long)c->end);
    int rc2 = prof_elf_open(p, e);
    return rc2 == 0 ? 0 : rc;
}

/* Collect the executable and any libpython3.* from /proc/PID/maps. */
static int scan_maps(pid_t pid, struct candidate *cands, size_t cap, size_t *n)
{
    char path[64], exe[PATH_MAX], line[PATH_MAX + 256];
    ssize_t el;

    *n = 0;
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    el = readlink(path, exe, sizeof(exe) - 1);
    if (el < 0) {
        if (errno == ENOENT && kill(pid, 0) < 0 && errno == ESRCH)
            return PROF_ESRCH;
        el = 0;  /* kernel thread or no permission: fall back to libpython only */
    }
    exe[el] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? PROF_ESRCH : prof_err_from_errno(errno);
    while (fgets(line, sizeof(line), f)) {
        unsigned long long start, end, pgoff;
        int pos = 0;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &pgoff, &pos) < 4 || !pos)
            continue;
        char *p = line + pos;
        p[strcspn(p, "\n")] = '\0';
        if (p[0] != '/')
            continue;
        const char *base = strrchr(p, '/') + 1;
        int is_exe = el > 0 && strcmp(p, exe) == 0;
        if (!is_exe && strncmp(base, "libpython3.", 11) != 0)
            continue;
        size_t i;
        for (i = 0; i < *n; i++)
            if (strcmp(cands[i].path, p) == 0)
                break;
        if (i == *n) {
            if (*n == cap)
                continue;
            snprintf(cands[i].path, sizeof(cands[i].path), "%s", p);
            cands[i].start = start;
            cands[i].end = end;
            cands[i].pgoff = pgoff;
            cands[i].is_exe = is_exe;
            (*n)++;
        } else if (pgoff < cands[i].pgoff) {
            cands[i].start = start;
            cands[i].end = end;
            cands[i].pgoff = pgoff;
        }
    }
    fclose(f);
    return 0;
}

/* Load bias of a mapped ELF: start of its lowest mapping minus the page of the link-time address there. */
static int load_bias(const struct prof_elf *e, const struct candidate *c, uint64_t *bias)
{
    uint64_t v;
    long pg = sysconf(_SC_PAGESIZE);

    if (!prof_elf_is_dyn(e)) {
        *bias = 0;
        return 0;
    }
    if (prof_elf_offset_to_vaddr(e, c->pgoff, &v) < 0)
        return PROF_ENOENT;
    *bias = c->start - (v & ~(uint64_t)(pg - 1));
    return 0;
}

static uint64_t sym_addr(const struct prof_elf *e, const char *name, uint64_t bias)
{
    uint64_t v;
    return prof_elf_symbol_value(e, name, &v) == 0 && v ? v + bias : 0;
}

/* The last step of every open: the tables sized by the layout, then the reader is the caller's (or freed). */
static int hand_out(struct prof_py *py, struct prof_py **out)
{
    py->threads = calloc(MAX_THREADS, sizeof(*py->threads));
    py->spec_buf = malloc(SPEC_THREADS * (size_t)py->sp.ts_len);
    py->code_hdrs = malloc(MAX_FRAMES * (size_t)py->sp.code_len);
    if (!py->threads || !py->spec_buf || !py->code_hdrs) {
        free(py->threads);
        free(py->spec_buf);
        free(py->code_hdrs);
        free(py);
        return PROF_ENOMEM;
    }
    *out = py;
    return 0;
}

/*
 * The layout of version's structures: 3.11 and 3.12 from the tables generated from their
 * headers; 3.13 and later from the target's own _PyRuntime.debug_offsets (their cookie and
 * version checked), so that a later version reads without a new poolprof where its layout
 * is still the one those offsets describe. 0, PROF_ENOTSUP (why said), or a read's error.
 */
static int choose_layout(struct prof_py *py, unsigned long ver, char *why, size_t whycap)
{
    unsigned maj = (unsigned)(ver >> 24) & 0xff, min = (unsigned)(ver >> 16) & 0xff;
    const struct py_layout *table = py_layout_table((uint32_t)ver);
    int rc;
    if (ver >= 0x030D0000UL) {
        unsigned char raw[1024];
        size_t len = py_layout_debug_offsets_size();
        if (len > sizeof raw)
            return PROF_ENOTSUP;
        if ((rc = pystack_rd(py, py->runtime, raw, len)) < 0)
            return rc == PROF_EIO ? PROF_EACCES : rc;
        char dwhy[160] = "";
        rc = py_layout_from_debug_offsets(raw, len, &py->L, dwhy, sizeof dwhy);
        if (rc == 0 && (py->L.version >> 16) != (ver >> 16)) {
            snprintf(dwhy, sizeof dwhy, "CPython %u.%u: its _Py_DebugOffsets say version %u.%u", maj, min,
                     (unsigned)(py->L.version >> 24), (unsigned)(py->L.version >> 16) & 0xff);
            rc = PROF_ENOTSUP;
        }
        if (rc == PROF_EFORMAT)
            set_why(why, whycap, "CPython %u.%u is not supported (no _Py_DebugOffsets in its _PyRuntime)", maj, min);
        else if (rc < 0 && why && whycap)
            snprintf(why, whycap, "%s", dwhy);
        if (rc < 0)
            return PROF_ENOTSUP;
        py->from_debug_offsets = 1;
    } else if (table) {
        py->L = *table;
    } else {
        set_why(why, whycap, "CPython %u.%u is not supported (3.11 or later only)", maj, min);
        return PROF_ENOTSUP;
    }
    if (py_layout_spans(&py->L, &py->sp) < 0) {
        set_why(why, whycap, "CPython %u.%u is not supported (its structures are larger than this poolprof reads)",
                maj, min);
        return PROF_ENOTSUP;
    }
    py->gil_base = py->L.gil_in_interp ? 0 : py->runtime;
    /* A free-threaded build runs without its GIL unless something switches it on (the first sample tells). */
    py->gil_absent = py->L.free_threaded && py->L.gil_enabled >= 0;
    return 0;
}

/*
 * Called again and again on processes that are not CPython (a shell, a native program, the
 * parent waiting for a pool), so it reads the maps with plain reads and looks for the name
 * alone: with scan_maps()'s stdio stream, line-by-line sscanf and link of the executable a
 * call took 60-70 us on this VM (the maps of sleep), 40-45 us so (the kernel's formatting of
 * the maps is the rest).
 */
int prof_py_libpython_mapped(pid_t pid)
{
    static const char pat[] = "/libpython3.";
    enum { PATLEN = sizeof pat - 1, CHUNK = 16384 };
    char path[64], buf[PATLEN + CHUNK + 1];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? PROF_ESRCH : prof_err_from_errno(errno);
    /* A match may straddle two reads: each read is appended to the last PATLEN bytes of the one
     * before. The name must be a path's last component (no '/' after it on its line). */
    size_t keep = 0;
    int found = 0, rc = 0;
    while (!found) {
        ssize_t n = read(fd, buf + keep, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errno == ESRCH ? PROF_ESRCH : prof_err_from_errno(errno);
            break;
        }
        if (n == 0)
            break;
        size_t len = keep + (size_t)n;
        buf[len] = '\0';
        for (const char *m = buf; (m = memmem(m, len - (size_t)(m - buf), pat, PATLEN)); m += PATLEN) {
            size_t rest = strcspn(m + 1, "/\n");
            if (m[1 + rest] != '/') {
                found = 1;
                break;
            }
        }
        keep = len < PATLEN ? len : PATLEN;
        memmove(buf, buf + len - keep, keep);
    }
    close(fd);
    return rc < 0 ? rc : found;
}

int prof_py_open(pid_t pid, struct prof_py **out, char *why, size_t whycap)
{
    return prof_py_probe(pid, out, NULL, why, whycap);
}

int prof_py_probe(pid_t pid, struct prof_py **out, int *needs_lib, char *why, size_t whycap)
{
    struct candidate cands[4];
    size_t ncand;
    int rc;

    if (needs_lib)
        *needs_lib = 0;
    if (!out || pid <= 0)
        return PROF_EINVAL;
    *out = NULL;
    if (why && whycap)
        why[0] = '\0';
    if ((rc = scan_maps(pid, cands, 4, &ncand)) < 0)
        return rc;

    struct prof_py *py = calloc(1, sizeof(*py));
    if (!py)
        return PROF_ENOMEM;
    py->pid = pid;
    py->mem.pid = pid;

    uint64_t version_addr = 0;
    const char *lib = NULL;
    for (size_t i = 0; i < ncand && !py->runtime; i++) {
        struct prof_elf *e;
        uint64_t bias;
        if (open_mapped_elf(pid, &cands[i], &e) < 0)
            continue;
        if (needs_lib && cands[i].is_exe)
            *needs_lib = prof_elf_needs(e, "libpython3.");
        if (load_bias(e, &cands[i], &bias) == 0 && (py->runtime = sym_addr(e, "_PyRuntime", bias))) {
            version_addr = sym_addr(e, "Py_Version", bias);
            py->code_type = sym_addr(e, "PyCode_Type", bias);
            py->unicode_type = sym_addr(e, "PyUnicode_Type", bias);
            py->bytes_type = sym_addr(e, "PyBytes_Type", bias);
            lib = strrchr(cands[i].path, '/') + 1;
        }
        prof_elf_close(e);
    }
    if (!py->runtime) {
        free(py);
        return kill(pid, 0) < 0 && errno == ESRCH ? PROF_ESRCH : PROF_ENOENT;
    }

    /* Py_Version (3.11+) is PY_VERSION_HEX; without it the interpreter predates 3.11. */
    unsigned long ver = 0;
    if (!version_addr) {
        unsigned a = 0, b = 0;
        if (sscanf(lib, "libpython%u.%u", &a, &b) == 2 || sscanf(lib, "python%u.%u", &a, &b) == 2)
            set_why(why, whycap, "CPython %u.%u is not supported (3.11 or later only)", a, b);
        else
            set_why(why, whycap, "CPython older than 3.11 is not supported (no Py_Version)", 0, 0);
        free(py);
        return PROF_ENOTSUP;
    }
    if ((rc = pystack_rd(py, version_addr, &ver, sizeof(ver))) < 0) {
        free(py);
        return rc == PROF_EIO ? PROF_EACCES : rc;
    }
    if ((rc = choose_layout(py, ver, why, whycap)) < 0) {
        free(py);
        return rc;
    }

    return hand_out(py, out);
}

int prof_py_open_runtime(pid_t pid, uint64_t runtime, unsigned long version, struct prof_py **out, char *why,
                         size_t whycap)
{
    if (!out || pid <= 0 || !runtime)
        return PROF_EINVAL;
    *out = NULL;
    if (why && whycap)
        why[0] = '\0';
    struct prof_py *py = calloc(1, sizeof(*py));
    if (!py)
        return PROF_ENOMEM;
    py->pid = pid;
    py->mem.pid = pid;
    py->runtime = runtime;
    int rc = choose_layout(py, version, why, whycap);
    if (rc < 0) {
        free(py);
        return rc;
    }
    return hand_out(py, out);
}

int prof_py_fork(const struct prof_py *parent, pid_t pid, struct prof_py **out)
{
    if (!parent || !out || pid <= 0)
        return PROF_EINVAL;
    *out = NULL;
    struct prof_py *py = calloc(1, sizeof(*py));
    if (!py)
        return PROF_ENOMEM;
    py->pid = pid;
    py->mem.pid = pid;
    py->runtime = parent->runtime;
    py->L = parent->L;
    py->sp = parent->sp;
    py->from_debug_offsets = parent->from_debug_offsets;
    py->gil_base = parent->gil_base;
    py->gil_absent = parent->gil_absent;
    py->checked = parent->checked;
    py->code_type = parent->code_type;
    py->unicode_type = parent->unicode_type;
    py->bytes_type = parent->bytes_type;
    int rc = hand_out(py, out);
    /* The parent's code cache, copied: each entry is checked against the code object's header
     * at every use, so one whose address the child reused for other code is read again. */
    if (rc == 0)
        prof_py_codes_copy(*out, parent);
    return rc;
}
