/* pylayout.c: the CPython layouts the reader knows (tables generated from each version's headers) and the one a target's _Py_DebugOffsets describes. */
#include <stdio.h>
#include <string.h>

#include "prof.h"
#include "pylayout.h"

static const struct py_layout tables[] = {
#include "pylayouts/py311.inc"
#include "pylayouts/py312.inc"
#include "pylayouts/py313.inc"
};
#define NTABLES (sizeof tables / sizeof tables[0])

const struct py_layout *py_layout_table(uint32_t version)
{
    for (size_t i = 0; i < NTABLES; i++)
        if (tables[i].version >> 16 == version >> 16)
            return &tables[i];
    return NULL;
}

const struct py_layout *py_layout_newest(void)
{
    return &tables[NTABLES - 1];
}

/*
 * _Py_DebugOffsets as CPython 3.13 lays it out (Include/internal/pycore_runtime.h): a cookie,
 * the version, then per structure its size and the offsets of its fields, every one a
 * uint64_t. The parser reads this form; a later version that appends to it reads the same,
 * and one that moves fields fails the checks below instead of being read wrong.
 */
struct dbg_offsets {
    char cookie[8];
    uint64_t version, free_threaded;
    struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
    struct {
        uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil,
            gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked, gil_runtime_state_holder;
    } interpreter_state;
    struct {
        uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk, status;
    } thread_state;
    struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
    struct {
        uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames,
            localspluskinds, co_code_adaptive;
    } code_object;
    struct { uint64_t size, ob_type; } pyobject;
    struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
    struct { uint64_t size, ob_item, ob_size; } tuple_object;
    struct { uint64_t size, ob_item, ob_size; } list_object;
    struct { uint64_t size, ma_keys, ma_values; } dict_object;
    struct { uint64_t size, ob_fval; } float_object;
    struct { uint64_t size, lv_tag, ob_digit; } long_object;
    struct { uint64_t size, ob_size, ob_sval; } bytes_object;
    struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
};

size_t py_layout_debug_offsets_size(void)
{
    return sizeof(struct dbg_offsets);
}

static void say(char *why, size_t whycap, const char *fmt, unsigned a, unsigned b, const char *what)
{
    if (why && whycap)
        snprintf(why, whycap, fmt, a, b, what);
}

/* An offset of a field of `size` bytes that ends inside a structure of struct_size bytes (and fits an int32_t). */
static int inside(uint64_t off, uint64_t size, uint64_t struct_size)
{
    return struct_size > 0 && struct_size < (1u << 24) && off < struct_size && size <= struct_size - off;
}

int py_layout_from_debug_offsets(const void *raw, size_t len, struct py_layout *out, char *why, size_t whycap)
{
    struct dbg_offsets d;
    if (len < sizeof d)
        return PROF_EFORMAT;
    memcpy(&d, raw, sizeof d);
    if (memcmp(d.cookie, "xdebugpy", 8) != 0)
        return PROF_EFORMAT;
    unsigned maj = (unsigned)(d.version >> 24) & 0xff, min = (unsigned)(d.version >> 16) & 0xff;
    if (d.version >> 32 || d.version < 0x030D0000) {
        say(why, whycap, "CPython %u.%u: its _Py_DebugOffsets give an impossible version%s", maj, min, "");
        return PROF_ENOTSUP;
    }

    /* Every field used, inside the structure the block says it belongs to. */
    const uint64_t rt = d.runtime_state.size, is = d.interpreter_state.size, ts = d.thread_state.size,
                   fr = d.interpreter_frame.size, co = d.code_object.size, ob = d.pyobject.size,
                   by = d.bytes_object.size, st = d.unicode_object.size;
    const struct { uint64_t off, size, in; const char *what; } checks[] = {
        {d.runtime_state.interpreters_head, 8, rt, "runtime"},
        {d.interpreter_state.next, 8, is, "interpreter"},
        {d.interpreter_state.threads_head, 8, is, "interpreter"},
        {d.interpreter_state.gil_runtime_state_holder, 8, is, "GIL"},
        {d.interpreter_state.gil_runtime_state_locked, 4, is, "GIL"},
        {d.thread_state.next, 8, ts, "thread state"},
        {d.thread_state.interp, 8, ts, "thread state"},
        {d.thread_state.current_frame, 8, ts, "thread state"},
        {d.thread_state.native_thread_id, 8, ts, "thread state"},
        {d.thread_state.datastack_chunk, 8, ts, "thread state"},
        {d.interpreter_frame.previous, 8, fr, "frame"},
        {d.interpreter_frame.executable, 8, fr, "frame"},
        {d.interpreter_frame.instr_ptr, 8, fr, "frame"},
        {d.interpreter_frame.owner, 1, fr, "frame"},
        {d.interpreter_frame.localsplus, 0, fr, "frame"},
        {d.code_object.filename, 8, co, "code object"},
        {d.code_object.name, 8, co, "code object"},
        {d.code_object.qualname, 8, co, "code object"},
        {d.code_object.linetable, 8, co, "code object"},
        {d.code_object.firstlineno, 4, co, "code object"},
        {d.code_object.co_code_adaptive, 0, co, "code object"},
        {d.pyobject.ob_type, 8, ob, "object"},
        {d.bytes_object.ob_size, 8, by, "bytes"},
        {d.bytes_object.ob_sval, 0, by, "bytes"},
        {d.unicode_object.length, 8, st, "str"},
        {d.unicode_object.state, 4, st, "str"},
        {d.unicode_object.asciiobject_size, 0, st + 1, "str"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!inside(checks[i].off, checks[i].size, checks[i].in)) {
            say(why, whycap, "CPython %u.%u: its _Py_DebugOffsets put a %s field outside its structure "
                "(a layout this poolprof does not read)", maj, min, checks[i].what);
            return PROF_ENOTSUP;
        }
    }
    if (d.interpreter_state.gil_runtime_state_enabled && d.free_threaded &&
        !inside(d.interpreter_state.gil_runtime_state_enabled, 4, is)) {
        say(why, whycap, "CPython %u.%u: its _Py_DebugOffsets put a %s field outside its structure", maj, min, "GIL");
        return PROF_ENOTSUP;
    }

    /* Where the block is silent: the same minor version's table if there is one; the newest
     * table's str bits and GIL condition otherwise (unchanged since 3.12 and 3.2). */
    const struct py_layout *same = py_layout_table((uint32_t)d.version), *newest = py_layout_newest();
    const struct py_layout *base = same ? same : newest;
    struct py_layout L;
    memset(&L, 0, sizeof L);
    L.version = (uint32_t)d.version & 0xffff0000u;
    L.free_threaded = d.free_threaded != 0;
    L.rt_interp_head = (int32_t)d.runtime_state.interpreters_head;
    L.rt_interp_main = -1;
    L.gil_in_interp = 1;
    L.gil_holder = (int32_t)d.interpreter_state.gil_runtime_state_holder;
    L.gil_locked = (int32_t)d.interpreter_state.gil_runtime_state_locked;
    L.gil_enabled = L.free_threaded ? (int32_t)d.interpreter_state.gil_runtime_state_enabled : -1;
    /* The condition and mutex follow switch_number, which follows locked, in every version. */
    L.gil_cond = L.gil_locked + (base->gil_cond - base->gil_locked);
    L.gil_mutex = L.gil_locked + (base->gil_mutex - base->gil_locked);
    L.gil_cond_size = base->gil_cond_size;
    L.gil_mutex_size = base->gil_mutex_size;
    L.gil_switch_mutex_from_mutex = base->gil_switch_mutex_from_mutex;
    L.interp_next = (int32_t)d.interpreter_state.next;
    L.interp_threads_head = (int32_t)d.interpreter_state.threads_head;
    L.ts_next = (int32_t)d.thread_state.next;
    L.ts_interp = (int32_t)d.thread_state.interp;
    L.ts_cframe = L.cframe_current_frame = -1;
    L.ts_current_frame = (int32_t)d.thread_state.current_frame;
    L.ts_native_thread_id = (int32_t)d.thread_state.native_thread_id;
    L.ts_native_thread_id_size = 8;
    L.ts_datastack_chunk = (int32_t)d.thread_state.datastack_chunk;
    /* The top of the data stack is not in the block: without it every frame is read on its own. */
    L.ts_datastack_top = same && same->ts_datastack_chunk == L.ts_datastack_chunk ? same->ts_datastack_top : -1;
    L.chunk_data = same ? same->chunk_data : -1;
    L.fr_code = (int32_t)d.interpreter_frame.executable;
    L.fr_instr = (int32_t)d.interpreter_frame.instr_ptr;
    L.fr_previous = (int32_t)d.interpreter_frame.previous;
    L.fr_owner = (int32_t)d.interpreter_frame.owner;
    L.fr_size = (int32_t)d.interpreter_frame.localsplus;
    /* Owner values and the first traceable instruction tell an incomplete frame; without them
     * (another version) such a frame, a few instructions long, is shown like the others. */
    L.owned_by_generator = same ? same->owned_by_generator : -1;
    L.owned_by_cstack = same ? same->owned_by_cstack : -1;
    L.co_firsttraceable = same && same->co_code_adaptive == (int32_t)d.code_object.co_code_adaptive
                              ? same->co_firsttraceable : -1;
    L.ob_type = (int32_t)d.pyobject.ob_type;
    L.var_size = (int32_t)d.bytes_object.ob_size;
    L.bytes_sval = (int32_t)d.bytes_object.ob_sval;
    L.co_filename = (int32_t)d.code_object.filename;
    L.co_name = (int32_t)d.code_object.name;
    L.co_qualname = (int32_t)d.code_object.qualname;
    L.co_linetable = (int32_t)d.code_object.linetable;
    L.co_firstlineno = (int32_t)d.code_object.firstlineno;
    L.co_code_adaptive = (int32_t)d.code_object.co_code_adaptive;
    L.codeunit_size = 2;
    L.str_length = (int32_t)d.unicode_object.length;
    L.str_state = (int32_t)d.unicode_object.state;
    L.str_ascii_size = (int32_t)d.unicode_object.asciiobject_size;
    /* PyCompactUnicodeObject: the ASCII header, utf8_length and utf8 (3.12 and later). */
    L.str_compact_size = same ? same->str_compact_size : L.str_ascii_size + 16;
    L.str_kind_mask = base->str_kind_mask;
    L.str_kind_shift = base->str_kind_shift;
    L.str_compact_mask = base->str_compact_mask;
    L.str_ascii_mask = base->str_ascii_mask;
    L.str_ready_mask = base->str_ready_mask;

    struct py_spans sp;
    if (py_layout_spans(&L, &sp) < 0) {
        say(why, whycap, "CPython %u.%u: its structures are larger than this poolprof reads%s", maj, min, "");
        return PROF_ENOTSUP;
    }
    *out = L;
    return 0;
}

static void span_add(uint32_t *lo, uint32_t *hi, int32_t off, int32_t size)
{
    if (off < 0)
        return;
    if ((uint32_t)off < *lo)
        *lo = (uint32_t)off;
    if ((uint32_t)(off + size) > *hi)
        *hi = (uint32_t)(off + size);
}

int py_layout_spans(const struct py_layout *L, struct py_spans *sp)
{
    uint32_t lo, hi;
    memset(sp, 0, sizeof *sp);

    lo = UINT32_MAX, hi = 0;
    span_add(&lo, &hi, L->rt_interp_head, 8);
    span_add(&lo, &hi, L->rt_interp_main, 8);
    sp->rt_lo = lo, sp->rt_len = hi - lo;

    lo = UINT32_MAX, hi = 0;
    span_add(&lo, &hi, L->interp_next, 8);
    span_add(&lo, &hi, L->interp_threads_head, 8);
    sp->is_next = L->interp_next >= 0 && hi - lo <= PY_SPAN_READ_MAX;
    if (!sp->is_next) {   /* far apart: next, needed only without interpreters.main, is read on its own */
        lo = UINT32_MAX, hi = 0;
        span_add(&lo, &hi, L->interp_threads_head, 8);
    }
    sp->is_lo = lo, sp->is_len = hi - lo;

    lo = UINT32_MAX, hi = 0;
    span_add(&lo, &hi, L->gil_holder, 8);
    span_add(&lo, &hi, L->gil_locked, 4);
    span_add(&lo, &hi, L->gil_enabled, 4);
    sp->gil_lo = lo, sp->gil_len = hi - lo;

    lo = 0, hi = 0;
    span_add(&lo, &hi, L->ts_next, 8);
    span_add(&lo, &hi, L->ts_interp, 8);
    span_add(&lo, &hi, L->ts_cframe, 8);
    span_add(&lo, &hi, L->ts_current_frame, 8);
    span_add(&lo, &hi, L->ts_native_thread_id, L->ts_native_thread_id_size);
    span_add(&lo, &hi, L->ts_datastack_chunk, 8);
    span_add(&lo, &hi, L->ts_datastack_top, 8);
    sp->ts_len = hi;
    sp->code_len = (uint32_t)L->co_code_adaptive;

    if (L->rt_interp_head < 0 || L->interp_threads_head < 0 || L->ts_next < 0 || L->fr_code < 0 ||
        L->fr_previous < 0 || L->fr_instr < 0 || (L->ts_cframe < 0 && L->ts_current_frame < 0))
        return PROF_ENOTSUP;
    if (sp->rt_len > PY_SPAN_READ_MAX || sp->is_len > PY_SPAN_READ_MAX || sp->gil_len > PY_SPAN_READ_MAX ||
        sp->ts_len > PY_TSTATE_READ_MAX || (uint32_t)L->fr_size > PY_FRAME_READ_MAX ||
        (uint32_t)(L->fr_owner + 1) > (uint32_t)L->fr_size || sp->code_len > PY_CODE_READ_MAX ||
        (uint32_t)L->str_compact_size > PY_STR_HDR_MAX || (uint32_t)L->str_ascii_size > PY_STR_HDR_MAX ||
        (uint32_t)(L->bytes_sval) > PY_STR_HDR_MAX || L->codeunit_size <= 0)
        return PROF_ENOTSUP;
    return 0;
}
