/* stats.c: the Mann-Whitney U test and the bootstrap interval of a ratio of medians behind `poolprof check` (pure: no I/O, no clocks). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fit.h"
#include "prof.h"
#include "stats.h"

#define MWU_EXACT_MAX 50

uint64_t prof_stats_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform index in [0, n). */
static size_t draw(uint64_t *state, size_t n)
{
    return (size_t)(((unsigned __int128)prof_stats_next(state) * n) >> 64);
}

static int sample_ok(const double *x, size_t n, int positive)
{
    if (!x || n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]) || (positive && !(isfinite(x[i]) && x[i] > 0)))
            return 0;
    return 1;
}

struct ranked {
    double v;
    int from_b;
};

static int cmp_ranked(const void *x, const void *y)
{
    double a = ((const struct ranked *)x)->v, b = ((const struct ranked *)y)->v;
    return (a > b) - (a < b);
}

/*
 * P(U <= u) and P(U >= u) under the null hypothesis, for sizes m (a) and n (b) without ties: the
 * number of orderings of the m + n values giving each U, counted by c(i, j) = c(i, j - 1) shifted
 * by i (the largest value is one of b's, above all i of a's) + c(i - 1, j) (it is one of a's).
 * One polynomial of degree m n per i, updated in place as j grows.
 */
static int mwu_exact(size_t m, size_t n, double u, double *le, double *ge)
{
    size_t deg = m * n;
    double *c = calloc((m + 1) * (deg + 1), sizeof *c);
    if (!c)
        return PROF_ENOMEM;
#define C(i, k) c[(i) * (deg + 1) + (k)]
    for (size_t i = 0; i <= m; i++)
        C(i, 0) = 1; /* j = 0: every ordering has U = 0 */
    for (size_t j = 1; j <= n; j++)
        for (size_t i = 0; i <= m; i++)
            for (size_t k = deg + 1; k-- > 0;)
                C(i, k) = (k >= i ? C(i, k - i) : 0) + (i > 0 ? C(i - 1, k) : 0);
    double total = 0, below = 0, above = 0;
    for (size_t k = 0; k <= deg; k++) {
        double w = C(m, k);
        total += w;
        if ((double)k <= u + 1e-9)
            below += w;
        if ((double)k >= u - 1e-9)
            above += w;
    }
#undef C
    free(c);
    *le = below / total;
    *ge = above / total;
    return 0;
}

int prof_stats_mwu(const double *a, size_t na, const double *b, size_t nb, struct prof_mwu *out)
{
    if (!out || !sample_ok(a, na, 0) || !sample_ok(b, nb, 0))
        return PROF_EINVAL;
    size_t n = na + nb;
    struct ranked *r = malloc(n * sizeof *r);
    if (!r)
        return PROF_ENOMEM;
    for (size_t i = 0; i < na; i++)
        r[i] = (struct ranked){a[i], 0};
    for (size_t i = 0; i < nb; i++)
        r[na + i] = (struct ranked){b[i], 1};
    qsort(r, n, sizeof *r, cmp_ranked);
    /* Ranks from 1, a run of ties sharing its mean rank; the tie term of the variance. */
    double rank_b = 0, ties = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && r[j + 1].v == r[i].v)
            j++;
        double mean = (double)(i + j + 2) / 2, t = (double)(j - i + 1);
        for (size_t k = i; k <= j; k++)
            if (r[k].from_b)
                rank_b += mean;
        ties += t * t * t - t;
        i = j + 1;
    }
    free(r);
    double u = rank_b - (double)nb * (double)(nb + 1) / 2;
    out->u = u;
    out->exact = ties == 0 && na <= MWU_EXACT_MAX && nb <= MWU_EXACT_MAX;
    if (out->exact) {
        double le, ge;
        int rc = mwu_exact(na, nb, u, &le, &ge);
        if (rc)
            return rc;
        double p = 2 * (le < ge ? le : ge);
        out->p = p > 1 ? 1 : p;
        return 0;
    }
    double m = (double)na, k = (double)nb, N = (double)n;
    double var = m * k / 12 * ((N + 1) - ties / (N * (N - 1)));
    if (var <= 0) {
        out->p = 1; /* every value the same: nothing tells the samples apart */
        return 0;
    }
    double d = fabs(u - m * k / 2) - 0.5;
    double z = d > 0 ? d / sqrt(var) : 0;
    double p = erfc(z / sqrt(2.0));
    out->p = p > 1 ? 1 : p;
    return 0;
}

/* The q-quantile of sorted x, linearly interpolated between order statistics. */
static double quantile(const double *x, size_t n, double q)
{
    double at = q * (double)(n - 1);
    size_t i = (size_t)at;
    if (i + 1 >= n)
        return x[n - 1];
    return x[i] + (at - (double)i) * (x[i + 1] - x[i]);
}

int prof_stats_ratio_ci(const double *a, size_t na, const double *b, size_t nb, unsigned resamples,
                        double level, uint64_t seed, struct prof_ratio_ci *out)
{
    if (!out || !sample_ok(a, na, 1) || !sample_ok(b, nb, 1) || resamples == 0 || !(level > 0 && level < 1))
        return PROF_EINVAL;
    double *sa = malloc(na * sizeof *sa), *sb = malloc(nb * sizeof *sb), *ratios = malloc(resamples * sizeof *ratios);
    if (!sa || !sb || !ratios) {
        free(sa);
        free(sb);
        free(ratios);
        return PROF_ENOMEM;
    }
    memcpy(sa, a, na * sizeof *sa);
    memcpy(sb, b, nb * sizeof *sb);
    out->ratio = prof_fit_median_inplace(sb, nb) / prof_fit_median_inplace(sa, na);
    uint64_t state = seed;
    for (unsigned r = 0; r < resamples; r++) {
        for (size_t i = 0; i < na; i++)
            sa[i] = a[draw(&state, na)];
        for (size_t i = 0; i < nb; i++)
            sb[i] = b[draw(&state, nb)];
        ratios[r] = prof_fit_median_inplace(sb, nb) / prof_fit_median_inplace(sa, na);
    }
    prof_fit_sort(ratios, resamples);
    out->lo = quantile(ratios, resamples, (1 - level) / 2);
    out->hi = quantile(ratios, resamples, (1 + level) / 2);
    free(sa);
    free(sb);
    free(ratios);
    return 0;
}

int prof_stats_compare(const double *base, size_t nbase, const double *cur, size_t ncur, double threshold,
                       uint64_t seed, struct prof_comparison *out)
{
    if (!out || !(threshold >= 0) || !isfinite(threshold))
        return PROF_EINVAL;
    int rc = prof_stats_mwu(base, nbase, cur, ncur, &out->mwu);
    if (!rc)
        rc = prof_stats_ratio_ci(base, nbase, cur, ncur, PROF_STATS_RESAMPLES, PROF_STATS_LEVEL, seed, &out->ci);
    if (rc)
        return rc;
    out->change = PROF_CHANGE_NONE;
    if (out->mwu.p < PROF_STATS_ALPHA && out->ci.lo > 1 + threshold)
        out->change = PROF_CHANGE_WORSE;
    else if (out->mwu.p < PROF_STATS_ALPHA && out->ci.hi < 1 - threshold)
        out->change = PROF_CHANGE_BETTER;
    return 0;
}
