/* stats.h: pure functions behind `poolprof check`'s comparison of two sets of runs: the Mann-Whitney U test and a bootstrap interval of the ratio of medians. */
#ifndef POOLPROF_STATS_H
#define POOLPROF_STATS_H

/*
 * No I/O, no clocks, no global state: the check measures, these functions compare, and the
 * Criterion tests drive them with synthetic samples whose answer is known. Every random draw
 * comes from a generator seeded by the caller, so a comparison is reproducible.
 */
#include <stddef.h>
#include <stdint.h>

/* The Mann-Whitney U test of two independent samples (a: base, b: current). */
struct prof_mwu {
    double u;       /* U of b: the pairs (a_i, b_j) with b_j > a_i, ties counting one half */
    double p;       /* two-sided p-value that both come from one distribution */
    int exact;      /* 1: p from the exact distribution of U (no ties, both sizes <= 50) */
};

/*
 * The test: exact where there are no ties and both samples have at most 50 values (the number
 * of rank orders of each U, counted), else the normal approximation with the tie correction of
 * the variance and a continuity correction. 0, or PROF_EINVAL (an empty sample, NULL, a NaN),
 * PROF_ENOMEM.
 */
int prof_stats_mwu(const double *a, size_t na, const double *b, size_t nb, struct prof_mwu *out);

/* A percentile bootstrap interval of median(b) / median(a). */
struct prof_ratio_ci {
    double ratio;   /* median(b) / median(a) of the samples themselves */
    double lo, hi;  /* the interval's bounds */
};

/*
 * `resamples` draws of each sample with replacement (both resampled, independently), the ratio
 * of their medians each time, and the (1 - level) / 2 and (1 + level) / 2 quantiles of those
 * ratios. level in (0, 1); every value finite and > 0. 0, or PROF_EINVAL, PROF_ENOMEM.
 */
int prof_stats_ratio_ci(const double *a, size_t na, const double *b, size_t nb, unsigned resamples,
                        double level, uint64_t seed, struct prof_ratio_ci *out);

/* What a comparison of a timing figure concludes. */
enum prof_change {
    PROF_CHANGE_NONE = 0, /* no change both tests agree on */
    PROF_CHANGE_WORSE,    /* larger: p < alpha and the whole interval above 1 + threshold */
    PROF_CHANGE_BETTER,   /* smaller: p < alpha and the whole interval below 1 - threshold */
};

struct prof_comparison {
    struct prof_mwu mwu;
    struct prof_ratio_ci ci;
    enum prof_change change;
};

#define PROF_STATS_ALPHA 0.01      /* the U test's two-sided p must be below this */
#define PROF_STATS_LEVEL 0.95      /* the bootstrap interval's coverage */
#define PROF_STATS_RESAMPLES 10000 /* its draws */

/*
 * Base against current runs of one timing figure (larger is worse): a change only when the U
 * test says the samples differ (p < PROF_STATS_ALPHA) and the 95% bootstrap interval of
 * median(cur) / median(base) lies wholly beyond 1 +- threshold. Noise fails one or the other; a
 * real change of more than the threshold passes both. 0, or PROF_EINVAL, PROF_ENOMEM.
 */
int prof_stats_compare(const double *base, size_t nbase, const double *cur, size_t ncur, double threshold,
                       uint64_t seed, struct prof_comparison *out);

/* The generator both use and the tests share: splitmix64, a uniform 64-bit value. */
uint64_t prof_stats_next(uint64_t *state);

#endif
