/* fit.h: pure functions that turn a sweep's wall times into a median, an Amdahl fit and a Universal Scalability Law fit. */
#ifndef POOLPROF_FIT_H
#define POOLPROF_FIT_H

/*
 * No I/O, no clocks: `poolprof sweep` measures, these functions fit, and the
 * Criterion tests drive them with synthetic data whose answer is known.
 *
 * The fits take worker counts n[] and wall times t[] and work relative to the
 * first point: the speedup of point i is t[0] / t[i] at N = n[i] / n[0], so
 * the first point is the baseline (N = 1, speedup 1) whatever its count. They
 * need at least two distinct counts; any count or time that is not finite
 * and > 0 is PROF_EINVAL.
 */
#include <stddef.h>

/* Amdahl: S(N) = 1 / (s + (1 - s) / N). */
struct prof_amdahl {
    double serial_fraction; /* s, in [0, 1] */
    double rms_error;       /* root mean square of measured - fitted speedup, over every point */
};

/* USL: S(N) = N / (1 + sigma (N - 1) + kappa N (N - 1)). */
struct prof_usl {
    double sigma;     /* contention, >= 0 */
    double kappa;     /* coherency (crosstalk), >= 0 */
    double rms_error; /* as for Amdahl */
};

/* Median of n values (the mean of the middle two when n is even). x is not
 * changed. Returns 0, PROF_EINVAL (n = 0, NULL, a NaN) or PROF_ENOMEM. */
int prof_fit_median(const double *x, size_t n, double *out);
/* x sorted ascending in place (no NaN). */
void prof_fit_sort(double *x, size_t n);
/* The median of n > 0 values without NaN, x sorted in place to find it. */
double prof_fit_median_inplace(double *x, size_t n);

/* The serial fraction that minimizes the squared error of the speedups. 0 or PROF_EINVAL. */
int prof_fit_amdahl(const double *n, const double *t, size_t count, struct prof_amdahl *out);

/* sigma, kappa >= 0 minimizing the squared error of the speedups: a
 * non-negative least-squares start on the linear form
 * N/S - 1 = sigma (N - 1) + kappa N (N - 1), refined by projected
 * Gauss-Newton on the speedups themselves. 0 or PROF_EINVAL. */
int prof_fit_usl(const double *n, const double *t, size_t count, struct prof_usl *out);

/* The models' speedups at (relative) N. */
double prof_amdahl_speedup(double serial_fraction, double n);
double prof_usl_speedup(double sigma, double kappa, double n);

/* Where the USL speedup peaks, N* = sqrt((1 - sigma) / kappa), relative to the
 * baseline count. 0, or PROF_ERANGE when there is no peak (kappa = 0, or
 * sigma >= 1 and throughput never grows); PROF_EINVAL on a bad argument. */
int prof_usl_peak(double sigma, double kappa, double *n_peak);

#endif
