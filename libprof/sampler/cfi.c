/* cfi.c: decoding of .eh_frame call frame information (LSB "DWARF Extensions", DWARF 4 §6.4) for x86-64, from local copies of the target's tables. */
#include <string.h>

#include "cfi.h"
#include "prof.h"

#define RA_REG 16
#define STATE_DEPTH 8

enum { CFA_REG = 0, CFA_OTHER = 1 };       /* a CFA other than register + offset: not described */
enum { KIND_SAME = PROF_CFI_SAME, KIND_AT = PROF_CFI_AT, KIND_UNDEF = PROF_CFI_UNDEF, KIND_OTHER = 3 };

size_t prof_cfi_enc_size(unsigned char enc)
{
    if (enc == DW_EH_PE_omit)
        return 0;
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr:
    case DW_EH_PE_udata8:
    case DW_EH_PE_sdata8:
        return 8;
    case DW_EH_PE_udata4:
    case DW_EH_PE_sdata4:
        return 4;
    case DW_EH_PE_udata2:
    case DW_EH_PE_sdata2:
        return 2;
    }
    return SIZE_MAX;
}

int prof_cfi_uleb(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static int sleb(const unsigned char **p, const unsigned char *end, int64_t *v)
{
    uint64_t r = 0;
    unsigned shift = 0;
    while (*p < end && shift < 64) {
        unsigned char b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                r |= ~0ULL << shift;
            *v = (int64_t)r;
            return 0;
        }
    }
    return -1;
}

int prof_cfi_read_enc(const unsigned char **p, const unsigned char *end, unsigned char enc, uint64_t at, uint64_t *v)
{
    size_t n = prof_cfi_enc_size(enc);
    if (n == SIZE_MAX || n == 0 || (size_t)(end - *p) < n)
        return -1;
    uint64_t x = 0;
    switch (enc & 0x0f) {
    case DW_EH_PE_udata2: { uint16_t t; memcpy(&t, *p, 2); x = t; break; }
    case DW_EH_PE_sdata2: { int16_t t; memcpy(&t, *p, 2); x = (uint64_t)(int64_t)t; break; }
    case DW_EH_PE_udata4: { uint32_t t; memcpy(&t, *p, 4); x = t; break; }
    case DW_EH_PE_sdata4: { int32_t t; memcpy(&t, *p, 4); x = (uint64_t)(int64_t)t; break; }
    default: memcpy(&x, *p, 8); break;
    }
    *p += n;
    switch (enc & 0x70) {
    case 0x00: break;                  /* absptr */
    case DW_EH_PE_pcrel: x += at; break;
    default: return -1;                /* textrel/datarel/funcrel: not used for FDE locations on x86_64 */
    }
    *v = x;
    return 0;
}

/* What rule_at needs of a CIE. */
struct cie_info {
    uint64_t code_align;
    int64_t data_align;
    unsigned char fde_enc;
    int z;                             /* 'z': FDEs carry an augmentation length */
    int signal;                        /* 'S': a signal frame, unwound by libunwind */
    const unsigned char *ins, *end;    /* initial instructions */
};

static int cie_parse(const unsigned char *p, size_t len, struct cie_info *ci)
{
    uint32_t len32, id;
    if (len < 9)
        return PROF_EFORMAT;
    memcpy(&len32, p, 4);
    memcpy(&id, p + 4, 4);
    if (id != 0 || len32 == 0xffffffffu || len32 < 5 || len32 > len - 4)
        return PROF_EFORMAT;
    const unsigned char *q = p + 8, *end = p + 4 + len32;
    unsigned char version = *q++;
    if (version != 1 && version != 3)
        return PROF_ENOTSUP;
    const char *aug = (const char *)q;
    size_t al = strnlen(aug, (size_t)(end - q));
    if (q + al >= end)
        return PROF_EFORMAT;
    q += al + 1;
    uint64_t ra;
    if (prof_cfi_uleb(&q, end, &ci->code_align) < 0 || sleb(&q, end, &ci->data_align) < 0)
        return PROF_EFORMAT;
    if (version == 1) {
        if (q >= end)
            return PROF_EFORMAT;
        ra = *q++;
    } else if (prof_cfi_uleb(&q, end, &ra) < 0) {
        return PROF_EFORMAT;
    }
    if (ra != RA_REG)
        return PROF_ENOTSUP;
    ci->fde_enc = DW_EH_PE_absptr;
    ci->z = 0;
    ci->signal = 0;
    if (al > 0) {
        if (aug[0] != 'z')
            return PROF_ENOTSUP;       /* "eh" and other old forms */
        uint64_t zl;
        if (prof_cfi_uleb(&q, end, &zl) < 0 || zl > (uint64_t)(end - q))
            return PROF_EFORMAT;
        const unsigned char *zend = q + zl;
        ci->z = 1;
        for (size_t k = 1; k < al; k++) {
            switch (aug[k]) {
            case 'R':
                if (q >= zend)
                    return PROF_EFORMAT;
                ci->fde_enc = *q++;
                break;
            case 'L':
                if (q >= zend)
                    return PROF_EFORMAT;
                q++;
                break;
            case 'P': {
                if (q >= zend)
                    return PROF_EFORMAT;
                size_t ps = prof_cfi_enc_size(*q++);
                if (ps == SIZE_MAX || ps > (size_t)(zend - q))
                    return PROF_ENOTSUP;
                q += ps;
                break;
            }
            case 'S':
                ci->signal = 1;
                break;
            default:
                return PROF_ENOTSUP;
            }
        }
        q = zend;
    }
    ci->ins = q;
    ci->end = end;
    return 0;
}

unsigned char prof_cfi_cie_fde_enc(const unsigned char *p, const unsigned char *end)
{
    struct cie_info ci;
    if (end <= p || cie_parse(p, (size_t)(end - p), &ci) < 0)
        return DW_EH_PE_omit;
    return ci.fde_enc;
}

int prof_cfi_fde_cie(const unsigned char *fde, size_t fde_len, uint64_t fde_va, uint64_t *cie_va)
{
    uint32_t len32, ptr;
    if (fde_len < 8)
        return PROF_EFORMAT;
    memcpy(&len32, fde, 4);
    memcpy(&ptr, fde + 4, 4);
    if (len32 == 0xffffffffu || len32 < 4 || len32 > fde_len - 4 || ptr == 0 || ptr > fde_va + 4)
        return PROF_EFORMAT;
    *cie_va = fde_va + 4 - ptr;        /* the CIE pointer counts back from its own position */
    return 0;
}

/* One column of the rule table: how a register is recovered. */
struct col {
    uint8_t kind;
    int64_t off;
};

struct row {
    uint8_t cfa_kind;
    uint64_t cfa_reg;
    int64_t cfa_off;
    struct col ra, rbp;
};

static struct col *col_of(struct row *r, uint64_t reg)
{
    return reg == RA_REG ? &r->ra : reg == PROF_CFI_RBP ? &r->rbp : NULL;
}

/* Set a register's rule: rbp's and the return address's are kept, others do not matter to
 * a step, and a rule for rsp (which the CFA stands for) is not described. */
static int set_col(struct row *r, uint64_t reg, uint8_t kind, int64_t off)
{
    struct col *c = col_of(r, reg);
    if (c)
        *c = (struct col){kind, off};
    return reg == PROF_CFI_RSP ? PROF_ENOTSUP : 0;
}

/* A little-endian unsigned of n bytes at *p (advanced past it). 0 or -1. */
static int fixed(const unsigned char **p, const unsigned char *end, size_t n, uint64_t *v)
{
    if ((size_t)(end - *p) < n)
        return -1;
    *v = 0;
    memcpy(v, *p, n);
    *p += n;
    return 0;
}

/*
 * Run a CFA program from *loc until the location passes target (or the program ends). A
 * rule this does not model marks what it touches KIND_OTHER: it matters only if still in
 * force at target. 1: target reached (stop), 0: program ended, < 0: error.
 */
static int run(const unsigned char *p, const unsigned char *end, const struct cie_info *ci, uint64_t at_base,
               const unsigned char *base, uint64_t *loc, uint64_t target, struct row *r, const struct row *init,
               struct row *stack, int *depth, uint64_t *next)
{
    while (p < end) {
        unsigned char op = *p++;
        uint64_t reg = op & 0x3f, u = 0, delta;
        int64_t s = 0;
        int rc = 0;
        switch (op & 0xc0) {
        case 0x40: /* advance_loc */
            delta = reg * ci->code_align;
            goto advance;
        case 0x80: /* offset */
            if (prof_cfi_uleb(&p, end, &u) < 0)
                return PROF_EFORMAT;
            rc = set_col(r, reg, KIND_AT, (int64_t)u * ci->data_align);
            break;
        case 0xc0: /* restore */
            if (col_of(r, reg))
                *col_of(r, reg) = *col_of((struct row *)init, reg);
            break;
        default:
            switch (op) {
            case 0x00: /* nop */
                break;
            case 0x01: { /* set_loc */
                uint64_t v;
                if (prof_cfi_read_enc(&p, end, ci->fde_enc, at_base + (uint64_t)(p - base), &v) < 0)
                    return PROF_EFORMAT;
                if (v > target) {
                    *next = v;
                    return 1;
                }
                *loc = v;
                break;
            }
            case 0x02: /* advance_loc1 */
            case 0x03: /* advance_loc2 */
            case 0x04: /* advance_loc4 */
                if (fixed(&p, end, op == 0x02 ? 1 : op == 0x03 ? 2 : 4, &delta) < 0)
                    return PROF_EFORMAT;
                delta *= ci->code_align;
                goto advance;
            case 0x05: /* offset_extended */
            case 0x2f: /* GNU_negative_offset_extended */
                if (prof_cfi_uleb(&p, end, &reg) < 0 || prof_cfi_uleb(&p, end, &u) < 0)
                    return PROF_EFORMAT;
                rc = set_col(r, reg, KIND_AT, (op == 0x2f ? -(int64_t)u : (int64_t)u) * ci->data_align);
                break;
            case 0x06: /* restore_extended */
                if (prof_cfi_uleb(&p, end, &reg) < 0)
                    return PROF_EFORMAT;
                if (col_of(r, reg))
                    *col_of(r, reg) = *col_of((struct row *)init, reg);
                break;
            case 0x07: /* undefined */
            case 0x08: /* same_value */
                if (prof_cfi_uleb(&p, end, &reg) < 0)
                    return PROF_EFORMAT;
                rc = set_col(r, reg, op == 0x07 ? (reg == RA_REG ? KIND_UNDEF : KIND_OTHER) : KIND_SAME, 0);
                break;
            case 0x09: /* register */
            case 0x14: /* val_offset */
            case 0x15: /* val_offset_sf */
                if (prof_cfi_uleb(&p, end, &reg) < 0 || (op == 0x15 ? sleb(&p, end, &s) : prof_cfi_uleb(&p, end, &u)) < 0)
                    return PROF_EFORMAT;
                rc = set_col(r, reg, KIND_OTHER, 0);
                break;
            case 0x10: /* expression */
            case 0x16: /* val_expression */
                if (prof_cfi_uleb(&p, end, &reg) < 0 || prof_cfi_uleb(&p, end, &u) < 0 || u > (uint64_t)(end - p))
                    return PROF_EFORMAT;
                p += u;
                rc = set_col(r, reg, KIND_OTHER, 0);
                break;
            case 0x11: /* offset_extended_sf */
                if (prof_cfi_uleb(&p, end, &reg) < 0 || sleb(&p, end, &s) < 0)
                    return PROF_EFORMAT;
                rc = set_col(r, reg, KIND_AT, s * ci->data_align);
                break;
            case 0x0a: /* remember_state */
                if (*depth == STATE_DEPTH)
                    return PROF_ENOTSUP;
                stack[(*depth)++] = *r;
                break;
            case 0x0b: /* restore_state: the CFA rule too, as GCC means it and libunwind does */
                if (*depth == 0)
                    return PROF_EFORMAT;
                *r = stack[--(*depth)];
                break;
            case 0x0c: /* def_cfa */
            case 0x12: /* def_cfa_sf */
                if (prof_cfi_uleb(&p, end, &reg) < 0 || (op == 0x12 ? sleb(&p, end, &s) : prof_cfi_uleb(&p, end, &u)) < 0)
                    return PROF_EFORMAT;
                r->cfa_kind = CFA_REG;
                r->cfa_reg = reg;
                r->cfa_off = op == 0x12 ? s * ci->data_align : (int64_t)u;
                break;
            case 0x0d: /* def_cfa_register */
                if (prof_cfi_uleb(&p, end, &reg) < 0)
                    return PROF_EFORMAT;
                r->cfa_reg = reg;
                break;
            case 0x0e: /* def_cfa_offset */
            case 0x13: /* def_cfa_offset_sf */
                if ((op == 0x13 ? sleb(&p, end, &s) : prof_cfi_uleb(&p, end, &u)) < 0)
                    return PROF_EFORMAT;
                r->cfa_off = op == 0x13 ? s * ci->data_align : (int64_t)u;
                break;
            case 0x0f: /* def_cfa_expression */
                if (prof_cfi_uleb(&p, end, &u) < 0 || u > (uint64_t)(end - p))
                    return PROF_EFORMAT;
                p += u;
                r->cfa_kind = CFA_OTHER;
                break;
            case 0x2e: /* GNU_args_size: what the caller pushed, not a rule */
                if (prof_cfi_uleb(&p, end, &u) < 0)
                    return PROF_EFORMAT;
                break;
            default:
                return PROF_ENOTSUP;
            }
        }
        if (rc < 0)
            return rc;
        continue;
    advance:
        /* A row starts at *loc + delta: the rules so far hold up to just before it. */
        if (*loc + delta > target) {
            *next = *loc + delta;
            return 1;
        }
        *loc += delta;
    }
    return 0;
}

int prof_cfi_rule_at(const unsigned char *cie, size_t cie_len, uint64_t cie_va, const unsigned char *fde,
                     size_t fde_len, uint64_t fde_va, uint64_t loc, struct prof_cfi_rule *out)
{
    uint64_t lo, hi;
    return prof_cfi_rule_span(cie, cie_len, cie_va, fde, fde_len, fde_va, loc, out, &lo, &hi);
}

int prof_cfi_rule_span(const unsigned char *cie, size_t cie_len, uint64_t cie_va, const unsigned char *fde,
                       size_t fde_len, uint64_t fde_va, uint64_t loc, struct prof_cfi_rule *out, uint64_t *lo,
                       uint64_t *hi)
{
    struct cie_info ci;
    int rc = cie_parse(cie, cie_len, &ci);
    if (rc < 0)
        return rc;
    if (ci.signal)
        return PROF_ENOTSUP;
    uint64_t cva;
    if ((rc = prof_cfi_fde_cie(fde, fde_len, fde_va, &cva)) < 0)
        return rc;
    if (cva != cie_va)
        return PROF_EFORMAT;
    uint32_t len32;
    memcpy(&len32, fde, 4);
    const unsigned char *q = fde + 8, *end = fde + 4 + len32;
    uint64_t begin, range;
    if (prof_cfi_read_enc(&q, end, ci.fde_enc, fde_va + 8, &begin) < 0 ||
        prof_cfi_read_enc(&q, end, ci.fde_enc & 0x0f, 0, &range) < 0)
        return PROF_EFORMAT;
    if (loc < begin || loc - begin >= range)
        return PROF_ERANGE;
    if (ci.z) {
        uint64_t zl;
        if (prof_cfi_uleb(&q, end, &zl) < 0 || zl > (uint64_t)(end - q))
            return PROF_EFORMAT;
        q += zl;
    }
    /* x86-64 before the CIE's program: rbp and the return address unknown until it says. */
    struct row r = {.cfa_kind = CFA_OTHER, .ra = {KIND_OTHER, 0}, .rbp = {KIND_SAME, 0}};
    struct row stack[STATE_DEPTH];
    int depth = 0;
    uint64_t at = begin, next = begin + range;
    rc = run(ci.ins, ci.end, &ci, cie_va, cie, &at, UINT64_MAX, &r, &r, stack, &depth, &next);
    if (rc < 0)
        return rc;
    struct row init = r;
    at = begin;
    depth = 0;
    next = begin + range; /* the last row runs to the FDE's end */
    rc = run(q, end, &ci, fde_va, fde, &at, loc, &r, &init, stack, &depth, &next);
    if (rc < 0)
        return rc;
    if (r.cfa_kind != CFA_REG || (r.cfa_reg != PROF_CFI_RSP && r.cfa_reg != PROF_CFI_RBP) ||
        (r.ra.kind != KIND_AT && r.ra.kind != KIND_UNDEF) || (r.rbp.kind != KIND_SAME && r.rbp.kind != KIND_AT) ||
        r.cfa_off < INT32_MIN || r.cfa_off > INT32_MAX || r.ra.off < INT32_MIN || r.ra.off > INT32_MAX ||
        r.rbp.off < INT32_MIN || r.rbp.off > INT32_MAX)
        return PROF_ENOTSUP;
    *out = (struct prof_cfi_rule){(uint8_t)r.cfa_reg, r.ra.kind, r.rbp.kind, (int32_t)r.cfa_off, (int32_t)r.ra.off,
                                  (int32_t)r.rbp.off};
    /* A set_loc may go backwards in a malformed FDE: then the row is loc alone. */
    *lo = at <= loc ? at : loc;
    *hi = next > loc && next <= begin + range ? next : loc + 1;
    return 0;
}
