/* pystack.c: reads the thread states, Python frames and GIL holder of a running CPython 3.11+ process with reads of /proc/PID/mem. */

/*
 * Nothing here stops the target: every structure is read while it may be
 * changing. So every remote pointer is only ever handed back to
 * a remote read (never dereferenced here), every loop has a hard cap, and
 * objects are checked against their type object (PyCode_Type, PyUnicode_Type,
 * PyBytes_Type, when the binary exports them) before they are believed.
 * The layout numbers come from py->L (pylayout.h): a table generated from the
 * version's headers, or the target's own _Py_DebugOffsets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "prof.h"
#include "pystack_int.h"

#define MAX_STR_CHARS 1024           /* longer names and paths are cut, not refused */
#define MAX_LINETABLE (64 * 1024)    /* a larger location table is not read: line 0 */
#define CODE_CACHE_LIMIT 16384       /* entries before the cache is dropped and refilled */
#define ARENA_CHUNK (64 * 1024)

/* ---- remote reads ---- */

/* process_vm_readv's contract, through /proc/PID/mem (memread.c: no page of the target unshared).
 * The descriptor is opened at the first read: a cache the const reader may fill. */
static ssize_t py_readv(const struct prof_py *py, const struct iovec *l, unsigned long nl, const struct iovec *r,
                        unsigned long nr)
{
    return prof_mem_readv((struct prof_mem *)&py->mem, l, nl, r, nr);
}

/* Read len bytes at remote addr. 0, PROF_ESRCH (gone), PROF_EACCES, or PROF_EIO (unmapped / short). */
int pystack_rd(const struct prof_py *py, uint64_t addr, void *buf, size_t len)
{
    if (addr == 0 || addr + len < addr)
        return PROF_EIO;
    struct iovec local = {buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    ssize_t n = py_readv(py, &local, 1, &remote, 1);
    if (n == (ssize_t)len)
        return 0;
    if (n < 0 && (errno == ESRCH || errno == EPERM || errno == EACCES))
        return prof_err_from_errno(errno);
    return PROF_EIO;
}

static uint64_t get_u64(const unsigned char *b, size_t off)
{
    uint64_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

static int64_t get_i64(const unsigned char *b, size_t off)
{
    int64_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

static int32_t get_i32(const unsigned char *b, size_t off)
{
    int32_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

/* ---- string interning ---- */

static uint64_t str_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static char *arena_alloc(struct prof_py *py, size_t len)
{
    struct arena_chunk *c = py->arena;
    if (!c || c->cap - c->used < len) {
        size_t cap = len > ARENA_CHUNK ? len : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->next = py->arena;
        c->used = 0;
        c->cap = cap;
        py->arena = c;
    }
    char *p = c->data + c->used;
    c->used += len;
    return p;
}

/* A copy of s[0..len) that lives until prof_py_close; equal strings return the same pointer. */
static const char *intern(struct prof_py *py, const char *s, size_t len)
{
    if (py->strset_n * 2 >= py->strset_cap) {
        size_t ncap = py->strset_cap ? py->strset_cap * 2 : 1024;
        const char **nset = calloc(ncap, sizeof(*nset));
        if (!nset)
            return NULL;
        for (size_t i = 0; i < py->strset_cap; i++) {
            const char *o = py->strset[i];
            if (!o)
                continue;
            size_t j = str_hash(o, strlen(o)) & (ncap - 1);
            while (nset[j])
                j = (j + 1) & (ncap - 1);
            nset[j] = o;
        }
        free(py->strset);
        py->strset = nset;
        py->strset_cap = ncap;
    }
    size_t j = str_hash(s, len) & (py->strset_cap - 1);
    while (py->strset[j]) {
        const char *o = py->strset[j];
        if (strncmp(o, s, len) == 0 && o[len] == '\0')
            return o;
        j = (j + 1) & (py->strset_cap - 1);
    }
    char *p = arena_alloc(py, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    py->strset[j] = p;
    py->strset_n++;
    return p;
}

/* Append code point cp to out as UTF-8; returns bytes written (0 if it does not fit). */
static size_t put_utf8(char *out, size_t room, uint32_t cp)
{
    if (cp < 0x80 && room >= 1) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800 && room >= 2) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0x800 && cp < 0x10000 && room >= 3) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp >= 0x10000 && cp < 0x110000 && room >= 4) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

/* Where a str object's characters are and how to read them, from its header. */
struct str_plan {
    uint64_t data;   /* remote address of the characters */
    size_t bytes;    /* len * kind */
    unsigned kind;   /* 1, 2 or 4 bytes a character */
    int64_t len;     /* characters, cut at MAX_STR_CHARS */
};

/* The plan for the compact str whose header (the first L.str_ascii_size bytes) is hdr. 0, or -1 when it is not a readable compact str. */
static int str_plan(const struct prof_py *py, const unsigned char *hdr, uint64_t addr, struct str_plan *sp)
{
    const struct py_layout *L = &py->L;
    if (py->unicode_type && get_u64(hdr, (size_t)L->ob_type) != py->unicode_type)
        return -1;
    int64_t len = get_i64(hdr, (size_t)L->str_length);
    uint32_t state;
    memcpy(&state, hdr + L->str_state, sizeof(state));
    /* 3.12 dropped `ready` (its mask 0): every str is ready there. */
    if (len < 0 || !(state & L->str_compact_mask) || (L->str_ready_mask && !(state & L->str_ready_mask)))
        return -1;
    if (len > MAX_STR_CHARS)
        len = MAX_STR_CHARS;
    unsigned kind = (state & L->str_kind_mask) >> L->str_kind_shift;
    if (kind != 1 && kind != 2 && kind != 4)
        return -1;
    /* The ASCII header is the shorter one; a non-ASCII string's characters follow the compact one. */
    sp->data = addr + (uint64_t)((state & L->str_ascii_mask) ? L->str_ascii_size : L->str_compact_size);
    sp->kind = kind;
    sp->len = len;
    sp->bytes = (size_t)len * kind;
    return 0;
}

/* The characters raw of a str planned as sp, interned as UTF-8. */
static const char *str_decode(struct prof_py *py, const unsigned char *raw, const struct str_plan *sp)
{
    char out[MAX_STR_CHARS * 4];
    size_t o = 0;
    for (int64_t i = 0; i < sp->len; i++) {
        uint32_t cp;
        if (sp->kind == 1) {
            cp = raw[i];
        } else if (sp->kind == 2) {
            uint16_t c;
            memcpy(&c, raw + i * 2, 2);
            cp = c;
        } else {
            memcpy(&cp, raw + i * 4, 4);
        }
        size_t w = put_utf8(out + o, sizeof(out) - o, cp);
        if (!w)
            break;
        o += w;
    }
    return intern(py, out, o);
}

/* Read a compact str object at addr and intern it as UTF-8. NULL when it is not a readable compact str. */
static const char *read_str(struct prof_py *py, uint64_t addr)
{
    unsigned char hdr[PY_STR_HDR_MAX], raw[MAX_STR_CHARS * 4];
    struct str_plan sp;
    if (pystack_rd(py, addr, hdr, (size_t)py->L.str_ascii_size) < 0 || str_plan(py, hdr, addr, &sp) < 0)
        return NULL;
    if (sp.bytes && pystack_rd(py, sp.data, raw, sp.bytes) < 0)
        return NULL;
    return str_decode(py, raw, &sp);
}

/* ---- code object cache ---- */

static void codes_drop(struct prof_py *py)
{
    for (size_t i = 0; i < py->codes_cap; i++)
        free(py->codes[i].lt);
    free(py->codes);
    py->codes = NULL;
    py->codes_cap = py->codes_n = 0;
}

static struct code_entry *codes_slot(struct prof_py *py, uint64_t addr)
{
    size_t j = (size_t)((addr >> 4) * 0x9E3779B97F4A7C15ULL) & (py->codes_cap - 1);
    while (py->codes[j].addr && py->codes[j].addr != addr)
        j = (j + 1) & (py->codes_cap - 1);
    return &py->codes[j];
}

/* Make room for one more entry; a cache past its limit is dropped (addresses get reused after free). */
static int codes_reserve(struct prof_py *py)
{
    if (py->codes_n >= CODE_CACHE_LIMIT)
        codes_drop(py);
    if (py->codes_cap && (py->codes_n + 1) * 2 <= py->codes_cap)
        return 0;
    size_t ncap = py->codes_cap ? py->codes_cap * 2 : 256;
    struct code_entry *old = py->codes;
    size_t ocap = py->codes_cap;
    py->codes = calloc(ncap, sizeof(*py->codes));
    if (!py->codes) {
        py->codes = old;
        return PROF_ENOMEM;
    }
    py->codes_cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].addr)
            *codes_slot(py, old[i].addr) = old[i];
    }
    free(old);
    return 0;
}

/*
 * A fork's reader starts with its parent's code cache, its strings interned again in its own
 * arena (the parent's reader may close first). An entry is used only while the header read at
 * each sample still matches it (code_get), in the child as in one process: a short-lived pool
 * worker does not read every code object of its stack again (two reads of strings each).
 * A failure leaves the cache partly filled.
 */
int prof_py_codes_copy(struct prof_py *py, const struct prof_py *from)
{
    for (size_t i = 0; i < from->codes_cap; i++) {
        const struct code_entry *o = &from->codes[i];
        if (!o->addr)
            continue;
        if (codes_reserve(py) < 0)
            return PROF_ENOMEM;
        struct code_entry n = *o;
        n.func = o->func ? intern(py, o->func, strlen(o->func)) : NULL;
        n.qual = o->qual ? intern(py, o->qual, strlen(o->qual)) : NULL;
        n.file = o->file ? intern(py, o->file, strlen(o->file)) : NULL;
        n.lt = NULL;
        n.ltlen = 0;
        if ((o->func && !n.func) || (o->qual && !n.qual) || (o->file && !n.file))
            return PROF_ENOMEM;
        if (o->lt && o->ltlen) {
            if (!(n.lt = malloc(o->ltlen)))
                return PROF_ENOMEM;
            memcpy(n.lt, o->lt, o->ltlen);
            n.ltlen = o->ltlen;
        }
        *codes_slot(py, n.addr) = n;
        py->codes_n++;
    }
    return 0;
}

/* The length of the bytes object (a line table) whose header is bh, or -1 when it is not one we read. */
static int64_t linetable_len(const struct prof_py *py, const unsigned char *bh)
{
    if (py->bytes_type && get_u64(bh, (size_t)py->L.ob_type) != py->bytes_type)
        return -1;
    int64_t len = get_i64(bh, (size_t)py->L.var_size);
    return len > 0 && len <= MAX_LINETABLE ? len : -1;
}

/*
 * A new entry's name, file name, qualified name and line table, in two system calls: the four
 * objects' headers, then their contents (one by one it was eight; a process pool's run meets
 * ~110 code objects, most while modules are imported). -1 when the batch does not bring all
 * four whole and well-formed: code_fill reads them one by one then.
 */
static int code_fill_batch(struct prof_py *py, struct code_entry *n)
{
    uint64_t sa[3] = {n->name, n->filename, n->qualname};
    const size_t shlen = (size_t)py->L.str_ascii_size, bhlen = (size_t)py->L.bytes_sval;
    unsigned char sh[3][PY_STR_HDR_MAX], bh[PY_STR_HDR_MAX];
    struct iovec l[4], r[4];
    size_t want = 0;
    for (int i = 0; i < 3; i++) {
        if (!sa[i])
            return -1;
        l[i] = (struct iovec){sh[i], shlen};
        r[i] = (struct iovec){(void *)(uintptr_t)sa[i], shlen};
        want += shlen;
    }
    if (!n->linetable)
        return -1;
    l[3] = (struct iovec){bh, bhlen};
    r[3] = (struct iovec){(void *)(uintptr_t)n->linetable, bhlen};
    want += bhlen;
    if (py_readv(py, l, 4, r, 4) != (ssize_t)want)
        return -1;
    struct str_plan sp[3];
    for (int i = 0; i < 3; i++)
        if (str_plan(py, sh[i], sa[i], &sp[i]) < 0)
            return -1;
    int64_t ltlen = linetable_len(py, bh);
    if (ltlen < 0)
        return -1;
    unsigned char raw[3][MAX_STR_CHARS * 4];
    unsigned char *lt = malloc((size_t)ltlen);
    if (!lt)
        return -1;
    int k = 0;
    want = 0;
    for (int i = 0; i < 3; i++) {
        if (!sp[i].bytes)
            continue;
        l[k] = (struct iovec){raw[i], sp[i].bytes};
        r[k] = (struct iovec){(void *)(uintptr_t)sp[i].data, sp[i].bytes};
        want += sp[i].bytes;
        k++;
    }
    l[k] = (struct iovec){lt, (size_t)ltlen};
    r[k] = (struct iovec){(void *)(uintptr_t)(n->linetable + (uint64_t)py->L.bytes_sval), (size_t)ltlen};
    want += (size_t)ltlen;
    k++;
    if (py_readv(py, l, (unsigned long)k, r, (unsigned long)k) != (ssize_t)want) {
        free(lt);
        return -1;
    }
    n->func = str_decode(py, raw[0], &sp[0]);
    n->file = str_decode(py, raw[1], &sp[1]);
    n->qual = str_decode(py, raw[2], &sp[2]);
    if (!n->func || !n->file) {
        free(lt);
        return -1;
    }
    if (!n->qual)
        n->qual = n->func;
    n->lt = lt;
    n->ltlen = (size_t)ltlen;
    return 0;
}

/* Fill a new entry's strings and line table. 0, or -1 when its name or file name is unreadable. */
static int code_fill(struct prof_py *py, struct code_entry *n)
{
    if (code_fill_batch(py, n) == 0)
        return 0;
    n->func = read_str(py, n->name);
    n->file = read_str(py, n->filename);
    n->qual = read_str(py, n->qualname);
    if (!n->func || !n->file)
        return -1;
    if (!n->qual)
        n->qual = n->func;
    unsigned char bh[PY_STR_HDR_MAX];
    int64_t len = pystack_rd(py, n->linetable, bh, (size_t)py->L.bytes_sval) == 0 ? linetable_len(py, bh) : -1;
    if (len > 0) {
        n->lt = malloc((size_t)len);
        if (n->lt && pystack_rd(py, n->linetable + (uint64_t)py->L.bytes_sval, n->lt, (size_t)len) == 0) {
            n->ltlen = (size_t)len;
        } else {
            free(n->lt);
            n->lt = NULL;
        }
    }
    return 0;
}

/*
 * The cached entry for the code object whose header (sp.code_len bytes) is hdr.
 * Code objects are immutable, so a hit needs only the header we already read
 * to match what was cached: same address, same name/file/linetable pointers
 * and first line. A freed and reused address almost never matches all five.
 */
static const struct code_entry *code_get(struct prof_py *py, uint64_t addr, const unsigned char *hdr)
{
    const struct py_layout *L = &py->L;
    if (py->code_type && get_u64(hdr, (size_t)L->ob_type) != py->code_type)
        return NULL;
    uint64_t filename = get_u64(hdr, (size_t)L->co_filename);
    uint64_t name = get_u64(hdr, (size_t)L->co_name);
    uint64_t qualname = get_u64(hdr, (size_t)L->co_qualname);
    uint64_t linetable = get_u64(hdr, (size_t)L->co_linetable);
    int firstlineno = get_i32(hdr, (size_t)L->co_firstlineno);

    if (py->codes_cap) {
        struct code_entry *e = codes_slot(py, addr);
        if (e->addr == addr) {
            if (e->filename == filename && e->name == name && e->qualname == qualname &&
                e->linetable == linetable && e->firstlineno == firstlineno)
                return e;
            /* Same address, another object: replace in place. */
            free(e->lt);
            memset(e, 0, sizeof(*e));
            py->codes_n--;
        }
    }

    struct code_entry n = {0};
    n.addr = addr;
    n.filename = filename;
    n.name = name;
    n.qualname = qualname;
    n.linetable = linetable;
    n.firstlineno = firstlineno;
    n.firsttraceable = L->co_firsttraceable >= 0 ? get_i32(hdr, (size_t)L->co_firsttraceable) : 0;
    if (code_fill(py, &n) < 0)
        return NULL;  /* torn or not a code object: do not cache */

    if (codes_reserve(py) < 0) {
        free(n.lt);
        return NULL;
    }
    struct code_entry *e = codes_slot(py, addr);
    *e = n;
    py->codes_n++;
    return e;
}

/* ---- line numbers ---- */

/* 3.11-3.13 location table varint: 6-bit groups, low first, bit 6 set on all but the last. */
static int lt_varint(const unsigned char *p, size_t len, size_t *i, uint32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 32; shift += 6) {
        if (*i >= len)
            return -1;
        unsigned char b = p[(*i)++];
        v |= (uint32_t)(b & 63) << shift;
        if (!(b & 64)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int lt_svarint(const unsigned char *p, size_t len, size_t *i, int *out)
{
    uint32_t u;
    if (lt_varint(p, len, i, &u) < 0)
        return -1;
    *out = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
    return 0;
}

/*
 * The line of code unit `index`, by walking the location table (3.11 to 3.13)
 * (Objects/locations.md): each entry starts with a byte 1CCCCLLL, code C and
 * length L+1 code units. Codes 0-9 (short form) and 10-12 (one-line form,
 * line delta C-10) carry column bytes; 13 has only a signed line delta; 14
 * (long form) has a line delta, end line delta and two columns; 15 means no
 * location. Returns 0 when index is outside the table or the table is bad.
 */
static int line_for(const struct code_entry *c, long index)
{
    const unsigned char *p = c->lt;
    size_t len = c->ltlen, i = 0;
    long addr = 0;
    int line = c->firstlineno;

    if (!p || index < 0)
        return 0;
    while (i < len) {
        unsigned char b = p[i++];
        if (!(b & 0x80))
            return 0;
        int code = (b >> 3) & 15;
        long n = (b & 7) + 1;
        int delta = 0, has_line = 1;
        uint32_t u;
        if (code <= 9) {
            i += 1;
        } else if (code <= 12) {
            delta = code - 10;
            i += 2;
        } else if (code == 13) {
            if (lt_svarint(p, len, &i, &delta) < 0)
                return 0;
        } else if (code == 14) {
            if (lt_svarint(p, len, &i, &delta) < 0 || lt_varint(p, len, &i, &u) < 0 ||
                lt_varint(p, len, &i, &u) < 0 || lt_varint(p, len, &i, &u) < 0)
                return 0;
        } else {
            has_line = 0;
        }
        line += delta;
        if (index < addr + n)
            return has_line && line > 0 ? line : 0;
        addr += n;
    }
    return 0;
}

void prof_py_close(struct prof_py *py)
{
    if (!py)
        return;
    codes_drop(py);
    prof_mem_close(&py->mem);
    while (py->arena) {
        struct arena_chunk *c = py->arena;
        py->arena = c->next;
        free(c);
    }
    free(py->strset);
    free(py->threads);
    free(py->frames);
    free(py->spec_buf);
    free(py->code_hdrs);
    free(py);
}

/* ---- sampling ---- */

/*
 * Walk one thread's frame chain into out[0..MAX_FRAMES): from its _PyCFrame (3.11, 3.12: cframe
 * is its address) or from the frame its thread state names (3.13 and later: frame0).
 * CPython allocates a function's _PyInterpreterFrame on the thread's data stack, a chunk of
 * contiguous memory whose used part ends at tstate->datastack_top: the _PyCFrame and the
 * used top of the current chunk (up to WINDOW_MAX) are read in one system call, and the
 * frames found there are walked locally. Only frames elsewhere (a generator's, kept in its
 * object, or in an older chunk) cost a read of their own. At 100 Hz on a program with a
 * few threads this halves the reader's system calls. A layout without the data stack's top
 * (a version known only by its _Py_DebugOffsets) reads every frame on its own.
 */
static size_t read_frames(struct prof_py *py, uint64_t cframe, uint64_t frame0, uint64_t chunk, uint64_t top,
                          struct prof_py_frame *out)
{
    const struct py_layout *L = &py->L;
    unsigned char cf[8];
    uint64_t fr, fr_addr[MAX_FRAMES], code_addr[MAX_FRAMES], instr[MAX_FRAMES];
    unsigned char owner[MAX_FRAMES];
    size_t nf = 0, n = 0;
    const uint64_t frlen = (uint64_t)L->fr_size;

    if (L->ts_cframe >= 0 && !cframe)
        return 0;
    uint64_t wlo = chunk && L->chunk_data >= 0 ? chunk + (uint64_t)L->chunk_data : 0, whi = top;
    if (!wlo || whi <= wlo || whi - wlo > (uint64_t)64 << 20)
        wlo = whi = 0; /* no data stack yet, or not a plausible one */
    else if (whi - wlo > WINDOW_MAX)
        wlo = whi - WINDOW_MAX;
    struct iovec local[2], remote[2];
    unsigned long nio = 0;
    size_t head = 0;
    if (L->ts_cframe >= 0) {
        local[nio] = (struct iovec){cf, sizeof cf};
        remote[nio++] = (struct iovec){(void *)(uintptr_t)(cframe + (uint64_t)L->cframe_current_frame), sizeof cf};
        head = sizeof cf;
    }
    if (whi > wlo) {
        local[nio] = (struct iovec){py->window, (size_t)(whi - wlo)};
        remote[nio++] = (struct iovec){(void *)(uintptr_t)wlo, (size_t)(whi - wlo)};
    }
    if (nio) {
        ssize_t got = py_readv(py, local, nio, remote, nio);
        if (got < (ssize_t)head)
            return 0;
        if (got < (ssize_t)(head + (whi - wlo)))
            wlo = whi = 0; /* the window did not come whole: every frame is read on its own */
    }
    fr = L->ts_cframe >= 0 ? get_u64(cf, 0) : frame0;
    /* The cap ends a cycle; a frame pointing at itself or an earlier frame ends it sooner. */
    while (fr && nf < MAX_FRAMES) {
        unsigned char fbuf[PY_FRAME_READ_MAX];
        const unsigned char *f = fbuf;
        if (fr >= wlo && fr + frlen <= whi && fr + frlen > fr)
            f = py->window + (fr - wlo);
        else if (pystack_rd(py, fr, fbuf, (size_t)frlen) < 0)
            break;
        fr_addr[nf] = fr;
        /* 3.14 tags the low bits of f_executable (a _PyStackRef); objects are 8-aligned in every version. */
        code_addr[nf] = get_u64(f, (size_t)L->fr_code) & ~(uint64_t)7;
        instr[nf] = get_u64(f, (size_t)L->fr_instr);
        owner[nf] = f[L->fr_owner];
        nf++;
        uint64_t prev = get_u64(f, (size_t)L->fr_previous);
        for (size_t k = 0; k < nf && prev; k++)
            if (fr_addr[k] == prev)
                prev = 0;
        fr = prev;
    }
    if (!nf)
        return 0;

    /* All code object headers of the chain in one system call. */
    const size_t clen = py->sp.code_len;
    unsigned char *hdrs = py->code_hdrs;
    struct iovec hl[MAX_FRAMES], hr[MAX_FRAMES];
    size_t nh = 0;
    for (size_t k = 0; k < nf; k++) {
        /* 3.12 and later: the entry frame of a call from C (owned by the C stack) runs no code of its own. */
        if (L->owned_by_cstack >= 0 && owner[k] == L->owned_by_cstack)
            code_addr[k] = 0;
        if (!code_addr[k])
            continue;
        hl[nh] = (struct iovec){hdrs + k * clen, clen};
        hr[nh++] = (struct iovec){(void *)(uintptr_t)code_addr[k], clen};
    }
    ssize_t got = nh ? py_readv(py, hl, nh, hr, nh) : 0;
    if (got < 0)
        got = 0;

    size_t h = 0;
    for (size_t k = 0; k < nf; k++) {
        if (!code_addr[k])
            continue;
        unsigned char *hdr = hdrs + k * clen;
        if ((size_t)got < (h + 1) * clen) {
            /* The batch stops at the first failed iovec; retry the rest one by one. */
            if (pystack_rd(py, code_addr[k], hdr, clen) < 0) {
                h++;
                continue;
            }
        }
        h++;
        /* Not a code object (3.13's f_executable may be None): code_get says so by its type. */
        const struct code_entry *c = code_get(py, code_addr[k], hdr);
        if (!c)
            continue;
        uint64_t code_start = code_addr[k] + (uint64_t)L->co_code_adaptive;
        long index = -1;
        if (instr[k] >= code_start)
            index = (long)((instr[k] - code_start) / (uint64_t)L->codeunit_size);
        /* Incomplete frames (before their RESUME) are not shown by CPython's own tracebacks either. */
        if (L->co_firsttraceable >= 0 && owner[k] != L->owned_by_generator && index < (long)c->firsttraceable)
            continue;
        out[n].func = c->func;
        out[n].qualname = c->qual;
        out[n].file = c->file;
        out[n].line = line_for(c, index);
        n++;
    }
    return n;
}

int prof_py_sample(struct prof_py *py, const struct prof_py_thread **threads, size_t *n)
{
    return prof_py_sample_since(py, NULL, NULL, threads, n);
}

/* The GIL's last holder, locked and (free-threaded builds) enabled, from its span read into gil. */
static void gil_state(struct prof_py *py, const unsigned char *gil, uint64_t *holder, int *locked)
{
    const struct py_layout *L = &py->L;
    *holder = get_u64(gil, (size_t)L->gil_holder - py->sp.gil_lo);
    *locked = get_i32(gil, (size_t)L->gil_locked - py->sp.gil_lo) == 1;
    py->gil_absent = L->gil_enabled >= 0 && get_i32(gil, (size_t)L->gil_enabled - py->sp.gil_lo) == 0;
    if (py->gil_absent)
        *locked = 0;
}

/*
 * The head of a sample: the interpreter list and the GIL, and, where the last walk found them,
 * the interpreter and its first thread states, in one system call (one thread state at a
 * time, a process of three threads took five). The walk takes a guessed thread state only
 * where it finds the same address by following the list it read, so a guess that is wrong (a
 * thread started or ended) costs the reads it would have cost anyway; so a guess left stale by
 * an early return needs no reset. A GIL kept in the interpreter (a layout from
 * _Py_DebugOffsets) is read with it once the interpreter is known. *interp_out: the main
 * interpreter (0: none yet), its fields in is; *have_spec: guessed thread states read.
 */
static int sample_head(struct prof_py *py, unsigned char *is, size_t *have_spec, uint64_t *interp_out,
                       uint64_t *holder, int *locked)
{
    unsigned char rt[PY_SPAN_READ_MAX], gil[PY_SPAN_READ_MAX];
    int rc;
    const struct py_layout *L = &py->L;
    const struct py_spans *sp = &py->sp;
    const size_t tslen = sp->ts_len;
    struct iovec rl[3 + SPEC_THREADS], rr[3 + SPEC_THREADS];
    rl[0] = (struct iovec){rt, sp->rt_len};
    rr[0] = (struct iovec){(void *)(uintptr_t)(py->runtime + sp->rt_lo), sp->rt_len};
    unsigned long nio = 1;
    int gil_read = 0;
    if (py->gil_base) {
        rl[nio] = (struct iovec){gil, sp->gil_len};
        rr[nio++] = (struct iovec){(void *)(uintptr_t)(py->gil_base + sp->gil_lo), sp->gil_len};
        gil_read = 1;
    }
    if (py->spec_interp) {
        rl[nio] = (struct iovec){is, sp->is_len};
        rr[nio++] = (struct iovec){(void *)(uintptr_t)(py->spec_interp + sp->is_lo), sp->is_len};
        for (size_t i = 0; i < py->nspec; i++) {
            rl[nio] = (struct iovec){py->spec_buf + i * tslen, tslen};
            rr[nio++] = (struct iovec){(void *)(uintptr_t)py->spec_ts[i], tslen};
        }
    }
    ssize_t got = py_readv(py, rl, nio, rr, nio);
    size_t fixed = sp->rt_len + (gil_read ? sp->gil_len : 0);
    if (got < (ssize_t)fixed)
        return got < 0 && errno == ESRCH ? PROF_ESRCH : PROF_EIO;
    size_t extra = (size_t)got - fixed;
    int have_is = py->spec_interp && extra >= sp->is_len;
    if (have_is)
        *have_spec = (extra - sp->is_len) / tslen;

    uint64_t interp = L->rt_interp_main >= 0 ? get_u64(rt, (size_t)L->rt_interp_main - sp->rt_lo) : 0;
    if (!interp)
        interp = get_u64(rt, (size_t)L->rt_interp_head - sp->rt_lo);
    if (!interp)
        return 0;  /* not initialised yet, or finalised: *interp_out stays 0 */
    if (!have_is || interp != py->spec_interp) {
        *have_spec = 0;
        if ((rc = pystack_rd(py, interp + sp->is_lo, is, sp->is_len)) < 0)
            return rc == PROF_ESRCH ? rc : PROF_EIO;
    }
    /* Without interpreters.main (_Py_DebugOffsets name only the head), the main interpreter is
     * the list's last: the first one created. Sub-interpreters are rare; each costs a read. */
    for (int hop = 0; L->rt_interp_main < 0 && L->interp_next >= 0 && hop < 8; hop++) {
        uint64_t next;
        if (sp->is_next)
            next = get_u64(is, (size_t)L->interp_next - sp->is_lo);
        else if ((rc = pystack_rd(py, interp + (uint64_t)L->interp_next, &next, sizeof next)) < 0)
            return rc == PROF_ESRCH ? rc : PROF_EIO;
        if (!next || next == interp)
            break;
        *have_spec = 0;
        if ((rc = pystack_rd(py, next + sp->is_lo, is, sp->is_len)) < 0)
            return rc == PROF_ESRCH ? rc : PROF_EIO;
        interp = next;
    }
    if (L->gil_in_interp && py->gil_base != interp) {
        py->gil_base = interp;
        gil_read = 0;
    }
    if (!gil_read) {
        if ((rc = pystack_rd(py, py->gil_base + sp->gil_lo, gil, sp->gil_len)) < 0)
            return rc == PROF_ESRCH ? rc : PROF_EIO;
    }
    gil_state(py, gil, holder, locked);
    *interp_out = interp;
    return 0;
}


int prof_py_sample_since(struct prof_py *py, int (*still)(void *ctx, pid_t tid), void *ctx,
                         const struct prof_py_thread **threads, size_t *n)
{
    unsigned char is[PY_SPAN_READ_MAX];
    int rc;

    if (!py || !threads || !n)
        return PROF_EINVAL;
    *threads = py->threads;
    *n = 0;
    if (!py->runtime)
        return PROF_EIO;
    const struct py_layout *L = &py->L;
    const size_t tslen = py->sp.ts_len;
    size_t have_spec = 0, nprev = py->nthreads;
    uint64_t interp = 0, holder = 0;
    int locked = 0;
    py->nthreads = 0;
    if ((rc = sample_head(py, is, &have_spec, &interp, &holder, &locked)) < 0 || !interp)
        return rc;

    uint64_t found[SPEC_THREADS];
    uint64_t ts = get_u64(is, (size_t)L->interp_threads_head - py->sp.is_lo);
    size_t nt = 0;
    while (ts && nt < MAX_THREADS) {
        unsigned char tb[PY_TSTATE_READ_MAX];
        const unsigned char *t = tb;
        if (nt < have_spec && py->spec_ts[nt] == ts) {
            t = py->spec_buf + nt * tslen;
        } else {
            have_spec = 0; /* the list changed here: the guesses after this point are off too */
            if ((rc = pystack_rd(py, ts, tb, tslen)) < 0) {
                if (rc == PROF_ESRCH)
                    return rc;
                break;  /* a thread state freed under us: keep what we have */
            }
        }
        /* A layout that is wrong for this interpreter (a version known only by its
         * _Py_DebugOffsets, read as another's) shows here first: a thread state of this
         * interpreter that does not point back at it. Said once, not read as empty stacks. */
        if (!py->checked) {
            if (get_u64(t, (size_t)L->ts_interp) != interp)
                return ++py->bad_checks >= 3 ? PROF_EFORMAT : PROF_EIO;  /* or a torn read: look again */
            py->checked = 1;
        }
        if (nt < SPEC_THREADS)
            found[nt] = ts;
        if (nt == py->frames_cap / MAX_FRAMES) {
            size_t ncap = py->frames_cap ? py->frames_cap * 2 : 16 * MAX_FRAMES;
            struct prof_py_frame *nfr = realloc(py->frames, ncap * sizeof(*nfr));
            if (!nfr)
                return PROF_ENOMEM;
            py->frames = nfr;
            py->frames_cap = ncap;
        }
        struct prof_py_thread *th = &py->threads[nt];
        pid_t tid = (pid_t)get_u64(t, (size_t)L->ts_native_thread_id);
        /* The same thread in the same place of the list as last time, and it has not run
         * since: its frames there are still its frames. (A new thread state goes to the
         * head of the list and shifts the rest: then they are read again.) */
        int keep = still && nt < nprev && th->tid == tid && th->nframes && still(ctx, tid);
        th->tid = tid;
        th->holds_gil = locked && holder == ts;
        if (!keep)
            th->nframes = read_frames(py, L->ts_cframe >= 0 ? get_u64(t, (size_t)L->ts_cframe) : 0,
                                      L->ts_current_frame >= 0 ? get_u64(t, (size_t)L->ts_current_frame) : 0,
                                      get_u64(t, (size_t)L->ts_datastack_chunk),
                                      L->ts_datastack_top >= 0 ? get_u64(t, (size_t)L->ts_datastack_top) : 0,
                                      py->frames + nt * MAX_FRAMES);
        nt++;
        uint64_t next = get_u64(t, (size_t)L->ts_next);
        if (next == ts)
            break;
        ts = next;
    }
    /* The guesses for the next sample: this walk's. */
    py->spec_interp = interp;
    py->nspec = nt < SPEC_THREADS ? nt : SPEC_THREADS;
    memcpy(py->spec_ts, found, py->nspec * sizeof *found);
    /* frames may have moved with realloc: point each thread at its slice only now. */
    for (size_t i = 0; i < nt; i++)
        py->threads[i].frames = py->frames + i * MAX_FRAMES;
    *n = py->nthreads = nt;
    return 0;
}

void prof_py_gil_addrs(const struct prof_py *py, uint64_t *cond, uint64_t *cond_len,
                       uint64_t *mutex, uint64_t *mutex_len)
{
    uint64_t base = py ? py->gil_base : 0;
    if (cond)
        *cond = base ? base + (uint64_t)py->L.gil_cond : 0;
    if (cond_len)
        *cond_len = base ? (uint64_t)py->L.gil_cond_size : 0;
    if (mutex)
        *mutex = base ? base + (uint64_t)py->L.gil_mutex : 0;
    if (mutex_len)
        *mutex_len = base ? (uint64_t)py->L.gil_mutex_size : 0;
}

int prof_py_peek(struct prof_py *py)
{
    unsigned char is[PY_SPAN_READ_MAX];
    size_t have_spec = 0;
    uint64_t interp = 0, holder = 0;
    int locked = 0;
    if (!py || !py->runtime)
        return PROF_EINVAL;
    return sample_head(py, is, &have_spec, &interp, &holder, &locked);
}

int prof_py_version(const struct prof_py *py)
{
    return py ? (int)((py->L.version >> 24) * 100 + ((py->L.version >> 16) & 0xff)) : 0;
}

int prof_py_free_threaded(const struct prof_py *py)
{
    return py && py->L.free_threaded;
}

int prof_py_has_gil(const struct prof_py *py)
{
    return py && !py->gil_absent;
}
