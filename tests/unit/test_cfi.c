/* test_cfi.c: the .eh_frame rule decoder against hand-assembled CIEs and FDEs whose rules are known row by row. */
#include <criterion/criterion.h>
#include <string.h>

#include "cfi.h"
#include "prof.h"

/* A CIE then an FDE, laid out as in .eh_frame at address BASE; code at CODE. */
#define BASE 0x400000ULL
#define CODE 0x401000ULL

struct frame_bytes {
    unsigned char b[512];
    size_t n;
    size_t cie, fde; /* offsets of the two records */
};

static void put(struct frame_bytes *f, const void *p, size_t n)
{
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void put8(struct frame_bytes *f, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(f, &c, 1);
}

static void put32(struct frame_bytes *f, uint32_t v)
{
    put(f, &v, 4);
}

/* Patch a record's length word once its body is written (padded to 4 bytes with nops). */
static void close_record(struct frame_bytes *f, size_t at)
{
    while ((f->n - at) % 4)
        put8(f, 0);
    uint32_t len = (uint32_t)(f->n - at - 4);
    memcpy(f->b + at, &len, 4);
}

/*
 * The CIE GCC writes on x86-64 ("zR", code align 1, data align -8, return address column
 * 16, FDE pointers pc-relative sdata4; CFA = rsp + 8, return address at CFA - 8), with
 * augmentation aug, then an FDE for [CODE, CODE + 0x100) with the instructions given.
 */
static void build(struct frame_bytes *f, const char *aug, const unsigned char *ins, size_t nins)
{
    memset(f, 0, sizeof *f);
    f->cie = f->n;
    put32(f, 0);
    put32(f, 0);                          /* CIE id */
    put8(f, 1);                           /* version */
    put(f, aug, strlen(aug) + 1);
    put8(f, 1);                           /* code alignment */
    put8(f, 0x78);                        /* data alignment -8 (SLEB128) */
    put8(f, 16);                          /* return address column */
    put8(f, 1);                           /* augmentation data length */
    put8(f, DW_EH_PE_pcrel | DW_EH_PE_sdata4);
    static const unsigned char init[] = {0x0c, 7, 8, 0x90, 1}; /* def_cfa rsp+8; offset rip at cfa-8 */
    put(f, init, sizeof init);
    close_record(f, f->cie);

    f->fde = f->n;
    put32(f, 0);
    put32(f, (uint32_t)(f->fde + 4 - f->cie)); /* back to the CIE */
    int32_t begin = (int32_t)(CODE - (BASE + f->n));
    put(f, &begin, 4);
    put32(f, 0x100);
    put8(f, 0);                           /* augmentation data length */
    put(f, ins, nins);
    close_record(f, f->fde);
}

static int rule(const struct frame_bytes *f, uint64_t loc, struct prof_cfi_rule *r)
{
    return prof_cfi_rule_at(f->b + f->cie, f->n - f->cie, BASE + f->cie, f->b + f->fde, f->n - f->fde,
                            BASE + f->fde, loc, r);
}

static void expect(const struct frame_bytes *f, uint64_t loc, int cfa_reg, int cfa_off, int rbp, int rbp_off)
{
    struct prof_cfi_rule r;
    cr_assert_eq(rule(f, loc, &r), 0, "no rule at +%#llx", (unsigned long long)(loc - CODE));
    cr_expect_eq(r.cfa_reg, cfa_reg, "+%#llx: CFA register %d", (unsigned long long)(loc - CODE), r.cfa_reg);
    cr_expect_eq(r.cfa_off, cfa_off, "+%#llx: CFA offset %d", (unsigned long long)(loc - CODE), r.cfa_off);
    cr_expect_eq(r.ra, PROF_CFI_AT);
    cr_expect_eq(r.ra_off, -8);
    cr_expect_eq(r.rbp, rbp, "+%#llx: rbp rule %d", (unsigned long long)(loc - CODE), r.rbp);
    if (rbp == PROF_CFI_AT)
        cr_expect_eq(r.rbp_off, rbp_off);
}

/* push rbp; mov rbp, rsp; ... an early return under remember/restore_state; ... */
static const unsigned char prologue[] = {
    0x41,             /* +1 */
    0x0e, 16,         /* def_cfa_offset 16 */
    0x86, 2,          /* offset rbp at cfa-16 */
    0x43,             /* +4 */
    0x0d, 6,          /* def_cfa_register rbp */
    0x02, 0x20,       /* advance_loc1 +0x24 */
    0x0a,             /* remember_state */
    0x0c, 7, 8,       /* def_cfa rsp+8 (after leave) */
    0xc6,             /* restore rbp */
    0x41,             /* +0x25 */
    0x0b,             /* restore_state */
};

Test(cfi, rows_of_a_frame_pointer_prologue)
{
    struct frame_bytes f;
    build(&f, "zR", prologue, sizeof prologue);
    expect(&f, CODE, PROF_CFI_RSP, 8, PROF_CFI_SAME, 0);
    expect(&f, CODE + 1, PROF_CFI_RSP, 16, PROF_CFI_AT, -16);
    expect(&f, CODE + 3, PROF_CFI_RSP, 16, PROF_CFI_AT, -16);
    expect(&f, CODE + 4, PROF_CFI_RBP, 16, PROF_CFI_AT, -16);
    expect(&f, CODE + 0x23, PROF_CFI_RBP, 16, PROF_CFI_AT, -16);
    /* The early return's one instruction: the epilogue's rules... */
    expect(&f, CODE + 0x24, PROF_CFI_RSP, 8, PROF_CFI_SAME, 0);
    /* ...and after it the body's again, CFA included. */
    expect(&f, CODE + 0x25, PROF_CFI_RBP, 16, PROF_CFI_AT, -16);
    expect(&f, CODE + 0xff, PROF_CFI_RBP, 16, PROF_CFI_AT, -16);
}

/* The extent of the row holding loc, as prof_cfi_rule_span reports it. */
static void expect_span(const struct frame_bytes *f, uint64_t loc, uint64_t lo, uint64_t hi)
{
    struct prof_cfi_rule r;
    uint64_t a = 0, b = 0;
    cr_assert_eq(prof_cfi_rule_span(f->b + f->cie, f->n - f->cie, BASE + f->cie, f->b + f->fde, f->n - f->fde,
                                    BASE + f->fde, loc, &r, &a, &b),
                 0);
    cr_expect_eq(a, lo, "+%#llx: row from +%#llx, not +%#llx", (unsigned long long)(loc - CODE),
                 (unsigned long long)(a - CODE), (unsigned long long)(lo - CODE));
    cr_expect_eq(b, hi, "+%#llx: row to +%#llx, not +%#llx", (unsigned long long)(loc - CODE),
                 (unsigned long long)(b - CODE), (unsigned long long)(hi - CODE));
}

/* The unwinder reuses a rule for any address of its row: the rows must end where the next
 * advance starts one, and the last run to the FDE's end. */
Test(cfi, row_extents)
{
    struct frame_bytes f;
    build(&f, "zR", prologue, sizeof prologue);
    expect_span(&f, CODE, CODE, CODE + 1);
    expect_span(&f, CODE + 1, CODE + 1, CODE + 4);
    expect_span(&f, CODE + 3, CODE + 1, CODE + 4);
    expect_span(&f, CODE + 4, CODE + 4, CODE + 0x24);
    expect_span(&f, CODE + 0x23, CODE + 4, CODE + 0x24);
    expect_span(&f, CODE + 0x24, CODE + 0x24, CODE + 0x25);
    expect_span(&f, CODE + 0x25, CODE + 0x25, CODE + 0x100);
    expect_span(&f, CODE + 0xff, CODE + 0x25, CODE + 0x100);
}

Test(cfi, outside_the_range)
{
    struct frame_bytes f;
    build(&f, "zR", prologue, sizeof prologue);
    struct prof_cfi_rule r;
    cr_expect_eq(rule(&f, CODE - 1, &r), PROF_ERANGE);
    cr_expect_eq(rule(&f, CODE + 0x100, &r), PROF_ERANGE);
}

Test(cfi, what_it_does_not_describe)
{
    struct frame_bytes f;
    struct prof_cfi_rule r;
    /* A signal frame ('S'): libunwind's. */
    build(&f, "zRS", prologue, sizeof prologue);
    cr_expect_eq(rule(&f, CODE + 4, &r), PROF_ENOTSUP);

    /* A CFA computed by an expression (a PLT stub's), then a plain one again. */
    static const unsigned char expr[] = {0x0f, 2, 0x77, 8, /* def_cfa_expression: breg7 +8 */
                                         0x50,             /* +0x10 */
                                         0x0c, 7, 16};     /* def_cfa rsp+16 */
    build(&f, "zR", expr, sizeof expr);
    cr_expect_eq(rule(&f, CODE + 4, &r), PROF_ENOTSUP);
    expect(&f, CODE + 0x10, PROF_CFI_RSP, 16, PROF_CFI_SAME, 0);

    /* The return address copied to another register. */
    static const unsigned char reg[] = {0x41, 0x09, 16, 3}; /* +1; register rip in rbx */
    build(&f, "zR", reg, sizeof reg);
    expect(&f, CODE, PROF_CFI_RSP, 8, PROF_CFI_SAME, 0);
    cr_expect_eq(rule(&f, CODE + 1, &r), PROF_ENOTSUP);

    /* A rule for a register that does not matter here (rbx saved) changes nothing. */
    static const unsigned char rbx[] = {0x41, 0x0e, 16, 0x83, 2}; /* +1; cfa+16; offset rbx at cfa-16 */
    build(&f, "zR", rbx, sizeof rbx);
    expect(&f, CODE + 1, PROF_CFI_RSP, 16, PROF_CFI_SAME, 0);
}

Test(cfi, the_outermost_frame)
{
    static const unsigned char undef[] = {0x07, 16}; /* undefined rip: _start, clone3 */
    struct frame_bytes f;
    build(&f, "zR", undef, sizeof undef);
    struct prof_cfi_rule r;
    cr_assert_eq(rule(&f, CODE, &r), 0);
    cr_expect_eq(r.ra, PROF_CFI_UNDEF);
}

Test(cfi, malformed)
{
    struct frame_bytes f;
    build(&f, "zR", prologue, sizeof prologue);
    struct prof_cfi_rule r;
    /* The FDE cut short inside its instructions' record. */
    cr_expect_eq(prof_cfi_rule_at(f.b + f.cie, f.n - f.cie, BASE + f.cie, f.b + f.fde, 10, BASE + f.fde, CODE, &r),
                 PROF_EFORMAT);
    /* An FDE pointing at something else than its CIE. */
    cr_expect_eq(prof_cfi_rule_at(f.b + f.cie, f.n - f.cie, BASE + f.cie + 4, f.b + f.fde, f.n - f.fde, BASE + f.fde,
                                  CODE, &r),
                 PROF_EFORMAT);
    /* restore_state with nothing remembered. */
    static const unsigned char bad[] = {0x41, 0x0b};
    build(&f, "zR", bad, sizeof bad);
    cr_expect_eq(rule(&f, CODE + 1, &r), PROF_EFORMAT);
    uint64_t cie;
    cr_expect_eq(prof_cfi_fde_cie(f.b + f.fde, 4, BASE + f.fde, &cie), PROF_EFORMAT);
    cr_expect_eq(prof_cfi_fde_cie(f.b + f.fde, f.n - f.fde, BASE + f.fde, &cie), 0);
    cr_expect_eq(cie, BASE + f.cie);
}
