/* slots.c: a slot index to its slot, in the record's fixed tables or in chunks of its extension area, and the shim's own per-thread-slot arrays that grow the same way. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"

/*
 * Chunk j of a kind, cut from the extension area on first use when `alloc`; NULL when it is
 * absent, or the area has no room for it (the slot is then dropped: ext_refused counts it).
 * No lock (the shim interposes pthread_mutex_lock): ext_used moves by CAS and never passes
 * ext_bytes, then the directory entry is claimed by CAS; a loser takes the winner's chunk and
 * its own stays unused, which costs address space in the file, never a disk block.
 */
static void *ext_chunk(struct prof_shm_header *h, uint64_t *dir, unsigned j, uint64_t bytes, int alloc)
{
    if (j >= PROF_SHM_EXT_CHUNKS)
        return NULL;
    uint64_t off = __atomic_load_n(&dir[j], __ATOMIC_ACQUIRE);
    if (SHIM_LIKELY(off))
        return (char *)h + off;
    /* Only the image that owns the record grows it: a vfork or raw-clone child shares the
     * mapping, and a record is trimmed to ext_used once its own image has ended. */
    if (!alloc || h != __atomic_load_n(&shim_hdr, __ATOMIC_ACQUIRE) || !shim_owner())
        return NULL;
    uint64_t need = (bytes + PROF_SHM_EXT_ALIGN - 1) & ~(uint64_t)(PROF_SHM_EXT_ALIGN - 1);
    uint64_t used = __atomic_load_n(&h->ext_used, __ATOMIC_RELAXED);
    do {
        if (need > h->ext_bytes || used > h->ext_bytes - need) {
            __atomic_fetch_add(&h->ext_refused, 1, __ATOMIC_RELAXED);
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(&h->ext_used, &used, used + need, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    uint64_t mine = sizeof *h + used, cur = 0;
    if (!__atomic_compare_exchange_n(&dir[j], &cur, mine, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return (char *)h + cur;
    return (char *)h + mine;
}

struct prof_shm_thread *shim_thread_at(struct prof_shm_header *h, size_t idx, int alloc)
{
    if (SHIM_LIKELY(idx < PROF_SHM_MAX_THREADS))
        return &h->threads[idx];
    uint64_t off;
    unsigned j = prof_shm_chunk(idx, PROF_SHM_MAX_THREADS, &off);
    struct prof_shm_thread *c =
        ext_chunk(h, h->thread_chunks, j, ((uint64_t)PROF_SHM_MAX_THREADS << j) * sizeof *c, alloc);
    return c ? c + off : NULL;
}

struct prof_shm_child *shim_child_at(struct prof_shm_header *h, size_t idx, int alloc)
{
    if (SHIM_LIKELY(idx < PROF_SHM_MAX_CHILDREN))
        return &h->children[idx];
    uint64_t off;
    unsigned j = prof_shm_chunk(idx, PROF_SHM_MAX_CHILDREN, &off);
    struct prof_shm_child *c =
        ext_chunk(h, h->child_chunks, j, ((uint64_t)PROF_SHM_MAX_CHILDREN << j) * sizeof *c, alloc);
    return c ? c + off : NULL;
}

int shim_thread_index(const struct prof_shm_header *h, const struct prof_shm_thread *t, size_t *idx)
{
    uintptr_t a = (uintptr_t)t, base = (uintptr_t)h->threads;
    if (SHIM_LIKELY(a >= base && a < base + sizeof h->threads)) {
        *idx = (a - base) / sizeof *t;
        return 0;
    }
    for (unsigned j = 0; j < PROF_SHM_EXT_CHUNKS; j++) {
        uint64_t off = __atomic_load_n(&h->thread_chunks[j], __ATOMIC_ACQUIRE);
        if (!off)
            continue;
        uintptr_t c = (uintptr_t)h + off;
        size_t n = (size_t)PROF_SHM_MAX_THREADS << j;
        if (a >= c && a < c + n * sizeof *t) {
            *idx = n + (a - c) / sizeof *t;
            return 0;
        }
    }
    return -1;
}

void *shim_parr_at(struct shim_parr *a, size_t idx, int alloc)
{
    if (SHIM_LIKELY(idx < PROF_SHM_MAX_THREADS))
        return (char *)a->fixed + idx * a->elem;
    uint64_t off;
    unsigned j = prof_shm_chunk(idx, PROF_SHM_MAX_THREADS, &off);
    if (j >= PROF_SHM_EXT_CHUNKS)
        return NULL;
    char *c = __atomic_load_n(&a->chunk[j], __ATOMIC_ACQUIRE);
    if (!c) {
        if (!alloc)
            return NULL;
        /* Anonymous, untouched until used: a slot costs memory only once its thread writes it. */
        size_t bytes = ((size_t)PROF_SHM_MAX_THREADS << j) * a->elem;
        int saved = errno;
        void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        errno = saved;
        if (m == MAP_FAILED)
            return NULL;
        char *cur = NULL;
        if (__atomic_compare_exchange_n(&a->chunk[j], &cur, (char *)m, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            c = m;
        } else {
            munmap(m, bytes);
            c = cur;
        }
    }
    return c + off * a->elem;
}

/* A forked child's record starts empty: its slot indices start over, so what they held goes. */
static void shim_parr_fork_child(struct shim_parr *a, int clear_fixed)
{
    if (clear_fixed)
        memset(a->fixed, 0, PROF_SHM_MAX_THREADS * a->elem);
    for (unsigned j = 0; j < PROF_SHM_EXT_CHUNKS; j++) {
        if (a->chunk[j])
            munmap(a->chunk[j], ((size_t)PROF_SHM_MAX_THREADS << j) * a->elem);
        a->chunk[j] = NULL;
    }
}

void shim_slots_fork_child(void)
{
    shim_parr_fork_child(&shim_slot_final, 1);
    /* Their fixed entries are rewritten before use (start routine, stage_thread_start). */
    shim_parr_fork_child(&shim_tramp, 0);
    shim_parr_fork_child(&shim_stage_parr, 0);
}

int shim_thread_slot_ready(size_t idx)
{
    if (!shim_parr_at(&shim_tramp, idx, 1) || !shim_parr_at(&shim_slot_final, idx, 1) ||
        !shim_parr_at(&shim_stage_parr, idx, 1))
        return -1;
    return 0;
}
