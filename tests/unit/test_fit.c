/* test_fit.c: the sweep's median, Amdahl and USL fits on synthetic wall times whose answer is known. */
#include <criterion/criterion.h>
#include <math.h>

#include "core/fit.h"
#include "prof.h"

#define LEN(a) (sizeof(a) / sizeof *(a))

/* Wall times of a 10 s job that follows Amdahl with serial fraction s. */
static void amdahl_times(double s, const double *n, double *t, size_t count)
{
    for (size_t i = 0; i < count; i++)
        t[i] = 10.0 * (s + (1 - s) / n[i]);
}

static void usl_times(double sigma, double kappa, const double *n, double *t, size_t count)
{
    for (size_t i = 0; i < count; i++)
        t[i] = 10.0 / prof_usl_speedup(sigma, kappa, n[i]);
}

/* A fixed pattern of relative errors in [-amp, amp]: noisy, but the same on every run. */
static void add_noise(double *t, size_t count, double amp)
{
    static const double pattern[] = {0.3, -1.0, 0.8, -0.4, 1.0, -0.7, 0.1, 0.6, -0.9, 0.5};
    for (size_t i = 0; i < count; i++)
        t[i] *= 1 + amp * pattern[i % LEN(pattern)];
}

Test(median, odd_even_unsorted)
{
    double odd[] = {3, 1, 2}, even[] = {4, 1, 3, 2}, one[] = {7.5}, m = 0;
    cr_assert_eq(prof_fit_median(odd, LEN(odd), &m), 0);
    cr_expect_float_eq(m, 2.0, 1e-12);
    cr_assert_eq(prof_fit_median(even, LEN(even), &m), 0);
    cr_expect_float_eq(m, 2.5, 1e-12);
    cr_assert_eq(prof_fit_median(one, 1, &m), 0);
    cr_expect_float_eq(m, 7.5, 1e-12);
    /* the input is left as it was */
    cr_expect(odd[0] == 3 && odd[1] == 1 && odd[2] == 2);
}

Test(median, degenerate)
{
    double m = 0, x[] = {1, NAN, 3};
    cr_expect_eq(prof_fit_median(x, 0, &m), PROF_EINVAL);
    cr_expect_eq(prof_fit_median(NULL, 3, &m), PROF_EINVAL);
    cr_expect_eq(prof_fit_median(x, 3, NULL), PROF_EINVAL);
    cr_expect_eq(prof_fit_median(x, 3, &m), PROF_EINVAL);
}

Test(amdahl, exact_data_recovers_serial_fraction)
{
    double n[] = {1, 2, 4, 8}, t[4];
    struct prof_amdahl a;
    amdahl_times(0.1, n, t, 4);
    cr_assert_eq(prof_fit_amdahl(n, t, 4, &a), 0);
    cr_expect_float_eq(a.serial_fraction, 0.1, 1e-3, "s = %g", a.serial_fraction);
    cr_expect_lt(a.rms_error, 1e-6);
}

Test(amdahl, ends_of_the_interval)
{
    double n[] = {1, 2, 4, 8}, t[4];
    struct prof_amdahl a;
    amdahl_times(0.0, n, t, 4);
    cr_assert_eq(prof_fit_amdahl(n, t, 4, &a), 0);
    cr_expect_float_eq(a.serial_fraction, 0.0, 1e-6);
    amdahl_times(1.0, n, t, 4);
    cr_assert_eq(prof_fit_amdahl(n, t, 4, &a), 0);
    cr_expect_float_eq(a.serial_fraction, 1.0, 1e-6);
    /* slower with more workers than Amdahl allows: clamped at s = 1 */
    double worse[] = {1, 1.5, 2, 3};
    cr_assert_eq(prof_fit_amdahl(n, worse, 4, &a), 0);
    cr_expect_float_eq(a.serial_fraction, 1.0, 1e-6);
}

Test(amdahl, relative_to_the_first_count)
{
    /* Amdahl rescales exactly: from a baseline of 2 workers, s' = s / (s + (1 - s) / 2). */
    double n[] = {2, 4, 8, 16}, t[4];
    struct prof_amdahl a;
    amdahl_times(0.1, n, t, 4);
    cr_assert_eq(prof_fit_amdahl(n, t, 4, &a), 0);
    cr_expect_float_eq(a.serial_fraction, 0.1 / (0.1 + 0.9 / 2), 1e-3, "s = %g", a.serial_fraction);
}

Test(amdahl, noisy_data)
{
    /* +-3% noise on the times: s = 0.2 is recovered within 0.02. */
    double n[] = {1, 2, 3, 4, 6, 8, 12, 16}, t[8];
    struct prof_amdahl a;
    amdahl_times(0.2, n, t, 8);
    add_noise(t, 8, 0.03);
    cr_assert_eq(prof_fit_amdahl(n, t, 8, &a), 0);
    cr_expect_float_eq(a.serial_fraction, 0.2, 0.02, "s = %g", a.serial_fraction);
    cr_expect_gt(a.rms_error, 0);
    cr_expect_lt(a.rms_error, 0.2);
}

Test(amdahl, degenerate)
{
    double n[] = {1, 2, 4}, t[] = {3, 2, 1.5};
    struct prof_amdahl a;
    cr_expect_eq(prof_fit_amdahl(n, t, 1, &a), PROF_EINVAL, "one point");
    cr_expect_eq(prof_fit_amdahl(n, t, 0, &a), PROF_EINVAL);
    cr_expect_eq(prof_fit_amdahl(NULL, t, 3, &a), PROF_EINVAL);
    cr_expect_eq(prof_fit_amdahl(n, t, 3, NULL), PROF_EINVAL);
    double same_n[] = {2, 2, 2};
    cr_expect_eq(prof_fit_amdahl(same_n, t, 3, &a), PROF_EINVAL, "one distinct count");
    double zero_t[] = {3, 0, 1.5}, neg_t[] = {3, 2, -1}, nan_t[] = {3, NAN, 1.5}, inf_t[] = {INFINITY, 2, 1};
    cr_expect_eq(prof_fit_amdahl(n, zero_t, 3, &a), PROF_EINVAL);
    cr_expect_eq(prof_fit_amdahl(n, neg_t, 3, &a), PROF_EINVAL);
    cr_expect_eq(prof_fit_amdahl(n, nan_t, 3, &a), PROF_EINVAL);
    cr_expect_eq(prof_fit_amdahl(n, inf_t, 3, &a), PROF_EINVAL);
    double zero_n[] = {0, 2, 4}, nan_n[] = {1, NAN, 4};
    cr_expect_eq(prof_fit_amdahl(zero_n, t, 3, &a), PROF_EINVAL);
    cr_expect_eq(prof_fit_amdahl(nan_n, t, 3, &a), PROF_EINVAL);
}

Test(usl, exact_data_recovers_sigma_and_kappa)
{
    double n[] = {1, 2, 4, 8, 16, 32}, t[6];
    struct prof_usl u;
    usl_times(0.05, 0.002, n, t, 6);
    cr_assert_eq(prof_fit_usl(n, t, 6, &u), 0);
    cr_expect_float_eq(u.sigma, 0.05, 1e-6, "sigma = %g", u.sigma);
    cr_expect_float_eq(u.kappa, 0.002, 1e-8, "kappa = %g", u.kappa);
    cr_expect_lt(u.rms_error, 1e-6);
}

Test(usl, exact_amdahl_is_usl_with_kappa_zero)
{
    /* Amdahl is USL with kappa = 0 and sigma = s. */
    double n[] = {1, 2, 4, 8}, t[4];
    struct prof_usl u;
    amdahl_times(0.1, n, t, 4);
    cr_assert_eq(prof_fit_usl(n, t, 4, &u), 0);
    cr_expect_float_eq(u.sigma, 0.1, 1e-6, "sigma = %g", u.sigma);
    cr_expect_float_eq(u.kappa, 0.0, 1e-8, "kappa = %g", u.kappa);
}

Test(usl, linear_scaling_is_zero_zero)
{
    double n[] = {1, 2, 4, 8}, t[] = {8, 4, 2, 1};
    struct prof_usl u;
    double peak;
    cr_assert_eq(prof_fit_usl(n, t, 4, &u), 0);
    cr_expect_float_eq(u.sigma, 0.0, 1e-9);
    cr_expect_float_eq(u.kappa, 0.0, 1e-9);
    cr_expect_eq(prof_usl_peak(u.sigma, u.kappa, &peak), PROF_ERANGE, "no peak without kappa");
}

Test(usl, superlinear_clamps_at_zero)
{
    /* Faster than linear (caches): the least-squares answer would be negative; the fit stays at 0. */
    double n[] = {1, 2, 4, 8}, t[] = {8, 3.8, 1.8, 0.85};
    struct prof_usl u;
    cr_assert_eq(prof_fit_usl(n, t, 4, &u), 0);
    cr_expect_geq(u.sigma, 0);
    cr_expect_geq(u.kappa, 0);
    cr_expect_lt(u.sigma + u.kappa, 1e-9);
}

Test(usl, noisy_data)
{
    /* +-2% noise on the times: sigma within 0.02 and kappa within 0.001 of 0.05 and 0.002. */
    double n[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32}, t[10];
    struct prof_usl u;
    usl_times(0.05, 0.002, n, t, 10);
    add_noise(t, 10, 0.02);
    cr_assert_eq(prof_fit_usl(n, t, 10, &u), 0);
    cr_expect_float_eq(u.sigma, 0.05, 0.02, "sigma = %g", u.sigma);
    cr_expect_float_eq(u.kappa, 0.002, 0.001, "kappa = %g", u.kappa);
    cr_expect_gt(u.rms_error, 0);
}

Test(usl, fit_is_at_least_as_good_as_its_start)
{
    /* The refined fit is no worse, on the speedups, than the true parameters of noisy data. */
    double n[] = {1, 2, 4, 8, 16}, t[5], N[5], S[5];
    struct prof_usl u;
    usl_times(0.1, 0.01, n, t, 5);
    add_noise(t, 5, 0.05);
    cr_assert_eq(prof_fit_usl(n, t, 5, &u), 0);
    double e_true = 0;
    for (int i = 0; i < 5; i++) {
        N[i] = n[i], S[i] = t[0] / t[i];
        double r = S[i] - prof_usl_speedup(0.1, 0.01, N[i]);
        e_true += r * r;
    }
    cr_expect_leq(u.rms_error, sqrt(e_true / 5) + 1e-12);
}

Test(usl, two_points_are_underdetermined_but_fit)
{
    double n[] = {1, 2}, t[] = {10, 6};
    struct prof_usl u;
    cr_assert_eq(prof_fit_usl(n, t, 2, &u), 0);
    cr_expect_lt(u.rms_error, 1e-6);
    cr_expect_float_eq(prof_usl_speedup(u.sigma, u.kappa, 2), 10.0 / 6, 1e-6);
}

Test(usl, degenerate)
{
    double n[] = {1, 2, 4}, t[] = {3, 2, 1.5};
    struct prof_usl u;
    cr_expect_eq(prof_fit_usl(n, t, 1, &u), PROF_EINVAL, "one point");
    cr_expect_eq(prof_fit_usl(NULL, t, 3, &u), PROF_EINVAL);
    cr_expect_eq(prof_fit_usl(n, t, 3, NULL), PROF_EINVAL);
    double same_n[] = {4, 4, 4};
    cr_expect_eq(prof_fit_usl(same_n, t, 3, &u), PROF_EINVAL);
    double zero_t[] = {3, 0, 1.5}, neg_t[] = {-3, 2, 1}, nan_t[] = {3, 2, NAN};
    cr_expect_eq(prof_fit_usl(n, zero_t, 3, &u), PROF_EINVAL);
    cr_expect_eq(prof_fit_usl(n, neg_t, 3, &u), PROF_EINVAL);
    cr_expect_eq(prof_fit_usl(n, nan_t, 3, &u), PROF_EINVAL);
    double neg_n[] = {1, -2, 4};
    cr_expect_eq(prof_fit_usl(neg_n, t, 3, &u), PROF_EINVAL);
}

Test(usl, peak)
{
    double p = 0;
    cr_assert_eq(prof_usl_peak(0.02, 0.0004, &p), 0);
    cr_expect_float_eq(p, sqrt(0.98 / 0.0004), 1e-9);
    /* the speedup really is highest there */
    double s = prof_usl_speedup(0.02, 0.0004, p);
    cr_expect_gt(s, prof_usl_speedup(0.02, 0.0004, p * 0.9));
    cr_expect_gt(s, prof_usl_speedup(0.02, 0.0004, p * 1.1));
    cr_expect_eq(prof_usl_peak(0.02, 0, &p), PROF_ERANGE);
    cr_expect_eq(prof_usl_peak(1.0, 0.01, &p), PROF_ERANGE);
    cr_expect_eq(prof_usl_peak(NAN, 0.01, &p), PROF_EINVAL);
    cr_expect_eq(prof_usl_peak(0.1, -0.01, &p), PROF_EINVAL);
    cr_expect_eq(prof_usl_peak(0.1, 0.01, NULL), PROF_EINVAL);
}

Test(models, speedups)
{
    cr_expect_float_eq(prof_amdahl_speedup(0.1, 1), 1.0, 1e-12);
    cr_expect_float_eq(prof_amdahl_speedup(0.1, 4), 1 / (0.1 + 0.9 / 4), 1e-12);
    cr_expect_float_eq(prof_usl_speedup(0, 0, 8), 8.0, 1e-12);
    cr_expect_float_eq(prof_usl_speedup(0.05, 0.002, 1), 1.0, 1e-12);
}
