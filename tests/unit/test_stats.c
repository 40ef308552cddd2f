/* test_stats.c: the U test and the bootstrap interval behind `poolprof check`, on samples whose answer is known. */
#include <criterion/criterion.h>
#include <math.h>

#include "core/stats.h"
#include "prof.h"

static double mwu_p(const double *a, size_t na, const double *b, size_t nb, int *exact)
{
    struct prof_mwu m;
    cr_assert_eq(prof_stats_mwu(a, na, b, nb, &m), 0);
    if (exact)
        *exact = m.exact;
    return m.p;
}

Test(stats, complete_separation_has_the_exact_smallest_p)
{
    /* Of the C(10, 5) = 252 orders of 5 + 5 values, one puts every b above every a (and one below). */
    double a[] = {1.0, 1.1, 1.2, 1.3, 1.4}, b[] = {2.0, 2.1, 2.2, 2.3, 2.4};
    struct prof_mwu m;
    cr_assert_eq(prof_stats_mwu(a, 5, b, 5, &m), 0);
    cr_assert(m.exact);
    cr_assert_float_eq(m.u, 25.0, 1e-12);
    cr_assert_float_eq(m.p, 2.0 / 252, 1e-12);
    /* 3 + 3: 2 of C(6, 3) = 20 */
    cr_assert_float_eq(mwu_p(a, 3, b, 3, NULL), 0.1, 1e-12);
    /* the other way round: the same p, U mirrored */
    cr_assert_eq(prof_stats_mwu(b, 5, a, 5, &m), 0);
    cr_assert_float_eq(m.u, 0.0, 1e-12);
    cr_assert_float_eq(m.p, 2.0 / 252, 1e-12);
}

Test(stats, interleaved_samples_are_not_told_apart)
{
    double a[] = {1, 3, 5, 7, 9}, b[] = {2, 4, 6, 8, 10};
    struct prof_mwu m;
    cr_assert_eq(prof_stats_mwu(a, 5, b, 5, &m), 0);
    cr_assert_float_eq(m.u, 15.0, 1e-12); /* b_j above a_i in 5 + 4 + 3 + 2 + 1 pairs */
    /* U >= 15 in 87 of the 252 orders of 5 + 5 values (counted by enumerating them): two-sided 174 / 252 */
    cr_assert_float_eq(m.p, 174.0 / 252, 1e-12);
}

Test(stats, ties_use_the_normal_approximation_and_identical_samples_give_p_one)
{
    double a[] = {1, 2, 2, 3, 4}, b[] = {2, 3, 3, 4, 5};
    int exact = 1;
    double p = mwu_p(a, 5, b, 5, &exact);
    cr_assert_not(exact);
    cr_assert(p > 0.05 && p < 1, "p %g", p);
    double c[] = {7, 7, 7}, d[] = {7, 7, 7, 7};
    cr_assert_float_eq(mwu_p(c, 3, d, 4, NULL), 1.0, 1e-12);
}

Test(stats, the_approximation_agrees_with_the_exact_test_on_large_samples)
{
    /* 50 + 50 values without ties: exact; b shifted by 0.4 of their spread */
    double a[50], b[50];
    uint64_t s = 7;
    for (int i = 0; i < 50; i++) {
        a[i] = (double)(prof_stats_next(&s) >> 11) / 9007199254740992.0;
        b[i] = (double)(prof_stats_next(&s) >> 11) / 9007199254740992.0 + 0.4;
    }
    int exact = 0;
    double pe = mwu_p(a, 50, b, 50, &exact);
    cr_assert(exact);
    /* the same samples with one value duplicated in each (a tie each side: the approximation) */
    double a2[51], b2[51];
    for (int i = 0; i < 50; i++)
        a2[i] = a[i], b2[i] = b[i];
    a2[50] = a[0];
    b2[50] = b[0];
    double pa = mwu_p(a2, 51, b2, 51, &exact);
    cr_assert_not(exact);
    cr_assert(pe < 0.01 && pa < 0.01, "exact %g, approximate %g", pe, pa);
    cr_assert(fabs(log10(pe) - log10(pa)) < 0.5, "exact %g, approximate %g", pe, pa);
}

Test(stats, bad_input_is_refused)
{
    double a[] = {1, 2}, n[] = {1, NAN}, z[] = {1, 0};
    struct prof_mwu m;
    struct prof_ratio_ci ci;
    cr_assert_eq(prof_stats_mwu(a, 0, a, 2, &m), PROF_EINVAL);
    cr_assert_eq(prof_stats_mwu(a, 2, n, 2, &m), PROF_EINVAL);
    cr_assert_eq(prof_stats_ratio_ci(a, 2, z, 2, 100, 0.95, 1, &ci), PROF_EINVAL); /* a ratio needs > 0 */
    cr_assert_eq(prof_stats_ratio_ci(a, 2, a, 2, 100, 1.0, 1, &ci), PROF_EINVAL);
    cr_assert_eq(prof_stats_ratio_ci(a, 2, a, 2, 0, 0.95, 1, &ci), PROF_EINVAL);
}

Test(stats, the_interval_holds_the_ratio_and_is_reproducible)
{
    double a[] = {1.00, 1.02, 0.98, 1.01, 0.99}, b[] = {1.50, 1.53, 1.47, 1.52, 1.49};
    struct prof_ratio_ci x, y;
    cr_assert_eq(prof_stats_ratio_ci(a, 5, b, 5, 10000, 0.95, 42, &x), 0);
    cr_assert_float_eq(x.ratio, 1.50, 1e-12);
    cr_assert(x.lo <= x.ratio && x.ratio <= x.hi);
    /* every resampled median lies within each sample's range */
    cr_assert(x.lo >= 1.47 / 1.02 - 1e-12 && x.hi <= 1.53 / 0.98 + 1e-12, "[%g, %g]", x.lo, x.hi);
    cr_assert_eq(prof_stats_ratio_ci(a, 5, b, 5, 10000, 0.95, 42, &y), 0);
    cr_assert(x.lo == y.lo && x.hi == y.hi, "the same seed, the same interval");
}

/* One run's time: `scale` times lognormal noise of the given spread (Box-Muller on the shared generator). */
static double run_time(uint64_t *s, double scale, double sigma)
{
    double u1 = ((double)(prof_stats_next(s) >> 11) + 1) / 9007199254740993.0;
    double u2 = (double)(prof_stats_next(s) >> 11) / 9007199254740992.0;
    return scale * exp(sigma * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

/* Of `trials` seeded comparisons of 5 base runs against 5 current runs `shift` times slower
 * (run-to-run noise of spread `sigma`, the 10% wall threshold), how many ended as `want`. */
static int outcomes(int trials, double shift, double sigma, enum prof_change want)
{
    int n = 0;
    uint64_t s = 2026;
    for (int t = 0; t < trials; t++) {
        double a[5], b[5];
        for (int i = 0; i < 5; i++) {
            a[i] = run_time(&s, 1.0, sigma);
            b[i] = run_time(&s, shift, sigma);
        }
        struct prof_comparison c;
        cr_assert_eq(prof_stats_compare(a, 5, b, 5, 0.10, (uint64_t)t, &c), 0);
        n += c.change == want;
    }
    return n;
}

/*
 * The two figures, at 2% run-to-run noise (a quiet runner's spread for a CPU-bound job of a
 * second). With 5 runs a side the median of each is known to ~1.2 sigma / sqrt(5): at 3% noise a
 * 20% change clears a 10% threshold by 3.7 of its standard errors, and even an exact 95%
 * interval would clear it in only ~95% of trials, which is why the noise is stated here.
 */
Test(stats, equal_distributions_pass_at_least_99_percent_of_1000_trials)
{
    for (double sigma = 0.02; sigma < 0.081; sigma *= 2) {
        int fine = outcomes(1000, 1.0, sigma, PROF_CHANGE_NONE);
        cr_log_info("equal, %.0f%% noise: %d of 1000 passed", sigma * 100, fine);
        cr_assert_geq(fine, 990, "%d of 1000 passed at %.0f%% noise", fine, sigma * 100);
    }
}

Test(stats, a_true_20_percent_slowdown_fails_at_least_95_percent_of_1000_trials)
{
    int caught = outcomes(1000, 1.20, 0.02, PROF_CHANGE_WORSE);
    cr_log_info("20%% slower: %d of 1000 failed", caught);
    cr_assert_geq(caught, 950, "%d of 1000 failed", caught);
}

Test(stats, a_20_percent_speedup_is_an_improvement_never_a_regression)
{
    cr_assert_eq(outcomes(1000, 1 / 1.20, 0.02, PROF_CHANGE_WORSE), 0);
    int better = outcomes(1000, 1 / 1.20, 0.02, PROF_CHANGE_BETTER);
    cr_log_info("20%% faster: %d of 1000 improvements", better);
    cr_assert_geq(better, 950, "%d of 1000 seen as an improvement", better);
}

Test(stats, a_slowdown_within_the_threshold_is_not_a_regression)
{
    /* 5% slower with a 10% threshold: the interval cannot lie wholly above 1.10 often */
    int flagged = outcomes(1000, 1.05, 0.02, PROF_CHANGE_WORSE);
    cr_log_info("5%% slower: %d of 1000 failed", flagged);
    cr_assert_leq(flagged, 10, "%d of 1000 failed", flagged);
}
