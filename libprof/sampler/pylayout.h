/* pylayout.h: where one CPython version keeps what the reader reads, from tables generated from its headers or from the target's own _Py_DebugOffsets. */
#ifndef POOLPROF_PYLAYOUT_H
#define POOLPROF_PYLAYOUT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every offset is in bytes from the start of its structure; -1 means the version has no
 * such field (or the source of the layout does not say), and the reader does without it.
 * The initializers in pylayouts/py3XX.inc fill it field by field (pylayouts/gen.c).
 */
struct py_layout {
    uint32_t version;            /* PY_VERSION_HEX of the layout's minor version (its patch level 0) */
    int free_threaded;           /* Py_GIL_DISABLED build: the GIL may be absent */

    /* _PyRuntimeState: the interpreter list */
    int32_t rt_interp_head, rt_interp_main;
    /* The main interpreter's GIL (struct _gil_runtime_state): from _PyRuntime, or, with
     * gil_in_interp, from the main interpreter (as _Py_DebugOffsets give it). */
    int gil_in_interp;
    int32_t gil_holder, gil_locked, gil_enabled, gil_cond, gil_mutex;
    int32_t gil_cond_size, gil_mutex_size;
    int32_t gil_switch_mutex_from_mutex;

    /* PyInterpreterState, PyThreadState, _PyCFrame (before 3.13), _PyStackChunk */
    int32_t interp_next, interp_threads_head;
    int32_t ts_next, ts_interp, ts_cframe, cframe_current_frame, ts_current_frame;
    int32_t ts_native_thread_id, ts_native_thread_id_size;
    int32_t ts_datastack_chunk, ts_datastack_top, chunk_data;

    /* _PyInterpreterFrame (fr_size: where localsplus starts) and its owner values */
    int32_t fr_code, fr_instr, fr_previous, fr_owner, fr_size;
    int32_t owned_by_generator, owned_by_cstack;

    /* PyObject, PyVarObject, PyBytesObject, PyCodeObject */
    int32_t ob_type, var_size, bytes_sval;
    int32_t co_filename, co_name, co_qualname, co_linetable, co_firstlineno, co_firsttraceable,
        co_code_adaptive;
    int32_t codeunit_size;

    /* str (PyASCIIObject, PyCompactUnicodeObject) and the bits of its state word */
    int32_t str_length, str_ascii_size, str_compact_size, str_state;
    uint32_t str_kind_mask, str_kind_shift, str_compact_mask, str_ascii_mask, str_ready_mask;
};

/* The largest fixed parts the reader's buffers hold: a layout that needs more is refused. */
#define PY_TSTATE_READ_MAX 1024
#define PY_FRAME_READ_MAX 256
#define PY_CODE_READ_MAX 512
#define PY_STR_HDR_MAX 128
#define PY_SPAN_READ_MAX 256     /* the runtime's, an interpreter's and the GIL's fields, each */

/* The byte ranges the reader reads, derived once from a layout. */
struct py_spans {
    uint32_t rt_lo, rt_len;       /* _PyRuntime: interpreters.head / .main */
    uint32_t is_lo, is_len;       /* an interpreter: threads.head, and next where it is near */
    int is_next;                  /* next is in that span */
    uint32_t gil_lo, gil_len;     /* the GIL: last_holder, locked (and enabled) */
    uint32_t ts_len;              /* a thread state, from its start */
    uint32_t code_len;            /* a code object's header, up to its instructions */
};

#pragma GCC visibility push(hidden)

/* The layout generated from the headers of version's minor version (py3XX.inc), or NULL. */
const struct py_layout *py_layout_table(uint32_t version);
/* The newest table there is: what a later version is assumed to keep of its predecessor where
 * its _Py_DebugOffsets say nothing (the bits of a str's state word, the GIL's condition). */
const struct py_layout *py_layout_newest(void);

/*
 * The layout a _Py_DebugOffsets block gives (CPython 3.13 and later: the first field of
 * _PyRuntime), raw being its first len bytes. 0 and *out filled; PROF_EFORMAT when it is not
 * one (cookie), PROF_ENOTSUP when its version predates 3.13 or its offsets fall outside the
 * structures they describe or the reader's buffers (why: one line). Fields the block does
 * not carry come from the table of the same minor version where there is one; otherwise
 * they are left out (-1) or, where nothing else would do, assumed as in the newest table.
 */
int py_layout_from_debug_offsets(const void *raw, size_t len, struct py_layout *out, char *why, size_t whycap);
/* Bytes of a _Py_DebugOffsets block the parser reads (the 3.13 form). */
size_t py_layout_debug_offsets_size(void);

/* The spans a layout needs, 0; or PROF_ENOTSUP when one does not fit the reader's buffers. */
int py_layout_spans(const struct py_layout *L, struct py_spans *sp);

#pragma GCC visibility pop

#endif
