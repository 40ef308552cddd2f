/* cfi.h: the x86-64 .eh_frame rules of one code address, for the unwinder's fast path: where the CFA, the return address and rbp are. */
#ifndef POOLPROF_CFI_H
#define POOLPROF_CFI_H

#include <stddef.h>
#include <stdint.h>

/*
 * What one step of a frame-by-frame unwind needs on x86-64, in 16 bytes: the CFA is a
 * register (rsp or rbp) plus an offset; the return address is saved at CFA + ra_off (or
 * undefined: the outermost frame); rbp keeps its value or is saved at CFA + rbp_off. Any
 * other rule that matters to these three (an expression, a register copy, a signal frame)
 * is not described: the caller unwinds such a frame another way (libunwind).
 */
enum { PROF_CFI_RSP = 7, PROF_CFI_RBP = 6 };               /* DWARF register numbers */
enum { PROF_CFI_SAME = 0, PROF_CFI_AT = 1, PROF_CFI_UNDEF = 2 };

struct prof_cfi_rule {
    uint8_t cfa_reg;            /* PROF_CFI_RSP or PROF_CFI_RBP */
    uint8_t ra;                 /* PROF_CFI_AT, or PROF_CFI_UNDEF: no caller */
    uint8_t rbp;                /* PROF_CFI_SAME or PROF_CFI_AT */
    int32_t cfa_off, ra_off, rbp_off;
};

/*
 * The rules in force at code address loc, from the FDE at fde (fde_va: its address in the
 * target) and its CIE at cie (cie_va), both whole (their length words included) in local
 * memory; cie_len and fde_len count every byte available from those pointers. Returns 0,
 * PROF_ERANGE when loc is outside the FDE's range, PROF_ENOTSUP for a rule this does not
 * describe, PROF_EFORMAT for malformed data.
 */
int prof_cfi_rule_at(const unsigned char *cie, size_t cie_len, uint64_t cie_va, const unsigned char *fde,
                     size_t fde_len, uint64_t fde_va, uint64_t loc, struct prof_cfi_rule *out);
/* The same, with the row's extent: the rules hold for every code address in [*lo, *hi),
 * which holds loc. */
int prof_cfi_rule_span(const unsigned char *cie, size_t cie_len, uint64_t cie_va, const unsigned char *fde,
                       size_t fde_len, uint64_t fde_va, uint64_t loc, struct prof_cfi_rule *out, uint64_t *lo,
                       uint64_t *hi);

/* Pointer encodings (LSB "DWARF Extensions"; libunwind's dwarf-eh.h is not installed). */
#define DW_EH_PE_absptr 0x00
#define DW_EH_PE_udata2 0x02
#define DW_EH_PE_udata4 0x03
#define DW_EH_PE_udata8 0x04
#define DW_EH_PE_sdata2 0x0a
#define DW_EH_PE_sdata4 0x0b
#define DW_EH_PE_sdata8 0x0c
#define DW_EH_PE_pcrel 0x10
#define DW_EH_PE_datarel 0x30
#define DW_EH_PE_omit 0xff

/* Bytes of a pointer in encoding enc: 0 for omit, SIZE_MAX if not one we read. */
size_t prof_cfi_enc_size(unsigned char enc);
/* Read an unsigned LEB128 at *p (advanced past it). 0, or -1 if it runs past end. */
int prof_cfi_uleb(const unsigned char **p, const unsigned char *end, uint64_t *v);
/* Decode a pointer at image position *p whose own target address is at (for pc-relative
 * encodings). Absolute and pc-relative only: what FDE locations use on x86-64. 0 or -1. */
int prof_cfi_read_enc(const unsigned char **p, const unsigned char *end, unsigned char enc, uint64_t at, uint64_t *v);
/* The pointer encoding a CIE at p gives its FDEs ('R' augmentation); DW_EH_PE_omit if unparsable. */
unsigned char prof_cfi_cie_fde_enc(const unsigned char *p, const unsigned char *end);

/* The CIE an FDE points to: its address in the target. 0 or PROF_EFORMAT. */
int prof_cfi_fde_cie(const unsigned char *fde, size_t fde_len, uint64_t fde_va, uint64_t *cie_va);

#endif
