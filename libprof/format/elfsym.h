/* elfsym.h: an ELF file's symbols, read from the file on disk: addresses of named symbols, and names for addresses. */
#ifndef POOLPROF_ELFSYM_H
#define POOLPROF_ELFSYM_H

#include <stdint.h>

/*
 * Used by the sampler (find _PyRuntime in a CPython executable or libpython)
 * and by the merge (symbolise native frames recorded as module + file offset,
 * once per unique address, at report time). Reads .symtab when present (not
 * stripped), else .dynsym; functions (STT_FUNC/STT_GNU_IFUNC) for
 * symbolisation, any defined symbol for lookup by name.
 */
struct prof_elf;

/* Open path and find its symbol tables. Returns 0, PROF_ENOENT, PROF_ACCES, PROF_EFORMAT (not a
 * 64-bit ELF file of this machine), PROF_ENOMEM. */
int prof_elf_open(const char *path, struct prof_elf **out);
void prof_elf_close(struct prof_elf *e);

/* ET_DYN (PIE or shared object: addresses are relative to a load bias) = 1, ET_EXEC = 0. */
int prof_elf_is_dyn(const struct prof_elf *e);

/* Does the file name a library whose name starts with prefix among its DT_NEEDED entries
 * (read through the section headers; 0 without them)? 1 or 0. */
int prof_elf_needs(const struct prof_elf *e, const char *prefix);

/* Link-time address of the defined symbol `name`. 0 or PROF_ENOENT. */
int prof_elf_symbol_value(const struct prof_elf *e, const char *name, uint64_t *vaddr);

/* Link-time address for a file offset, through the PT_LOAD segment containing it.
 * 0 or PROF_ENOENT (offset outside every loaded segment). */
int prof_elf_offset_to_vaddr(const struct prof_elf *e, uint64_t file_off, uint64_t *vaddr);

/* The function containing link-time address vaddr: *name (owned by e, valid
 * until prof_elf_close) and *off = vaddr - symbol start. 0, PROF_ENOENT or
 * PROF_ENOMEM. The first call sorts the function symbols (lookups by name, the
 * sampler's only use, never pay for that), so e is not const. */
int prof_elf_symbolize(struct prof_elf *e, uint64_t vaddr, const char **name, uint64_t *off);

#endif
