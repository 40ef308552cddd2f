/* fit.c: the median and the Amdahl and USL least-squares fits behind `poolprof sweep` (pure: no I/O, no clocks). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fit.h"
#include "prof.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void prof_fit_sort(double *x, size_t n)
{
    if (n > 64) {
        qsort(x, n, sizeof *x, cmp_double);
        return;
    }
    /* Insertion: the few values of a set of runs, sorted thousands of times by a bootstrap. */
    for (size_t i = 1; i < n; i++) {
        double v = x[i];
        size_t j = i;
        for (; j > 0 && x[j - 1] > v; j--)
            x[j] = x[j - 1];
        x[j] = v;
    }
}

double prof_fit_median_inplace(double *x, size_t n)
{
    prof_fit_sort(x, n);
    return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

int prof_fit_median(const double *x, size_t n, double *out)
{
    if (!x || !out || n == 0)
        return PROF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]))
            return PROF_EINVAL;
    double *c = malloc(n * sizeof *c);
    if (!c)
        return PROF_ENOMEM;
    memcpy(c, x, n * sizeof *c);
    *out = prof_fit_median_inplace(c, n);
    free(c);
    return 0;
}

double prof_amdahl_speedup(double s, double n)
{
    return 1.0 / (s + (1.0 - s) / n);
}

double prof_usl_speedup(double sigma, double kappa, double n)
{
    double d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
    /* Only reachable with N < 1 (a baseline above some other count): no throughput to speak of. */
    return d > 0 ? n / d : NAN;
}

int prof_usl_peak(double sigma, double kappa, double *n_peak)
{
    if (!n_peak || !isfinite(sigma) || !isfinite(kappa) || sigma < 0 || kappa < 0)
        return PROF_EINVAL;
    if (kappa == 0 || sigma >= 1)
        return PROF_ERANGE;
    *n_peak = sqrt((1.0 - sigma) / kappa);
    return 0;
}

/* The speedups relative to the first point; PROF_EINVAL unless the data can be fitted at all. */
static int relative(const double *n, const double *t, size_t count, double *N, double *S)
{
    int distinct = 0;

    if (!n || !t || count < 2)
        return PROF_EINVAL;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(n[i]) || !isfinite(t[i]) || n[i] <= 0 || t[i] <= 0)
            return PROF_EINVAL;
        N[i] = n[i] / n[0];
        S[i] = t[0] / t[i];
        if (n[i] != n[0])
            distinct = 1;
    }
    return distinct ? 0 : PROF_EINVAL;
}

/* The fits' common start: counts and speedups relative to the first point, in one malloc'd
 * block (*N; free it), or PROF_EINVAL / PROF_ENOMEM. */
static int speedups(const double *n, const double *t, size_t count, double **N, double **S)
{
    if (count < 2)
        return PROF_EINVAL;
    if (!(*N = malloc(2 * count * sizeof **N)))
        return PROF_ENOMEM;
    *S = *N + count;
    int err = relative(n, t, count, *N, *S);
    if (err < 0)
        free(*N);
    return err < 0 ? err : 0;
}


static double amdahl_sse(double s, const double *N, const double *S, size_t count)
{
    double e = 0;
    for (size_t i = 0; i < count; i++) {
        double r = S[i] - prof_amdahl_speedup(s, N[i]);
        e += r * r;
    }
    return e;
}

int prof_fit_amdahl(const double *n, const double *t, size_t count, struct prof_amdahl *out)
{
    double *N, *S;
    int err = out ? speedups(n, t, count, &N, &S) : PROF_EINVAL;
    if (err < 0)
        return err;
    /* One parameter on a closed interval: a grid finds the basin (the error need
     * not be convex in s), golden-section search then pins the minimum down. */
    enum { GRID = 1000 };
    int best = 0;
    double best_e = INFINITY;
    for (int k = 0; k <= GRID; k++) {
        double e = amdahl_sse((double)k / GRID, N, S, count);
        if (e < best_e)
            best_e = e, best = k;
    }
    double lo = best > 0 ? (double)(best - 1) / GRID : 0, hi = best < GRID ? (double)(best + 1) / GRID : 1;
    const double g = (sqrt(5.0) - 1) / 2;
    double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
    double fa = amdahl_sse(a, N, S, count), fb = amdahl_sse(b, N, S, count);
    for (int it = 0; it < 200 && hi - lo > 1e-13; it++) {
        if (fa < fb) {
            hi = b, b = a, fb = fa;
            a = hi - g * (hi - lo);
            fa = amdahl_sse(a, N, S, count);
        } else {
            lo = a, a = b, fa = fb;
            b = lo + g * (hi - lo);
            fb = amdahl_sse(b, N, S, count);
        }
    }
    double s = (lo + hi) / 2, e = amdahl_sse(s, N, S, count);
    /* The grid point itself may still be better (an end of [0, 1], a kink). */
    if (best_e < e)
        s = (double)best / GRID, e = best_e;
    out->serial_fraction = s;
    out->rms_error = sqrt(e / (double)count);
    free(N);
    return 0;
}

static double usl_sse(double sigma, double kappa, const double *N, const double *S, size_t count)
{
    double e = 0;
    for (size_t i = 0; i < count; i++) {
        double u = prof_usl_speedup(sigma, kappa, N[i]);
        if (!isfinite(u))
            return INFINITY;
        e += (S[i] - u) * (S[i] - u);
    }
    return e;
}

/*
 * Non-negative least squares on y = sigma x1 + kappa x2 with two unknowns: the
 * optimum is the unconstrained solution when it is feasible, else lies on a
 * face (one unknown at 0). Every feasible candidate is scored by the error of
 * the speedups, the objective that matters.
 */
static void usl_start(const double *N, const double *S, size_t count, double *sigma, double *kappa)
{
    double a11 = 0, a12 = 0, a22 = 0, b1 = 0, b2 = 0;
    for (size_t i = 0; i < count; i++) {
        double x1 = N[i] - 1, x2 = N[i] * (N[i] - 1), y = N[i] / S[i] - 1;
        a11 += x1 * x1, a12 += x1 * x2, a22 += x2 * x2;
        b1 += x1 * y, b2 += x2 * y;
    }
    double cand[4][2] = {{0, 0}, {a11 > 0 ? fmax(0, b1 / a11) : 0, 0}, {0, a22 > 0 ? fmax(0, b2 / a22) : 0}, {-1, -1}};
    double det = a11 * a22 - a12 * a12;
    if (det > 1e-12 * a11 * a22) {
        cand[3][0] = (b1 * a22 - b2 * a12) / det;
        cand[3][1] = (a11 * b2 - a12 * b1) / det;
    }
    double best_e = INFINITY;
    *sigma = *kappa = 0;
    for (int c = 0; c < 4; c++) {
        if (cand[c][0] < 0 || cand[c][1] < 0)
            continue;
        double e = usl_sse(cand[c][0], cand[c][1], N, S, count);
        if (e < best_e)
            best_e = e, *sigma = cand[c][0], *kappa = cand[c][1];
    }
}

/* Levenberg-Marquardt on the speedups, projected onto sigma, kappa >= 0. */
static void usl_refine(const double *N, const double *S, size_t count, double *sigma, double *kappa)
{
    double p[2] = {*sigma, *kappa}, e = usl_sse(p[0], p[1], N, S, count), lambda = 1e-3;

    for (int it = 0; it < 500 && e > 0 && lambda < 1e12; it++) {
        /* G^T G and G^T r, G the derivatives of the model speedup. */
        double h11 = 0, h12 = 0, h22 = 0, g1 = 0, g2 = 0;
        for (size_t i = 0; i < count; i++) {
            double d = 1 + p[0] * (N[i] - 1) + p[1] * N[i] * (N[i] - 1);
            double u = N[i] / d, r = S[i] - u;
            double ds = -N[i] * (N[i] - 1) / (d * d), dk = ds * N[i];
            h11 += ds * ds, h12 += ds * dk, h22 += dk * dk;
            g1 += ds * r, g2 += dk * r;
        }
        double m11 = h11 * (1 + lambda), m22 = h22 * (1 + lambda), det = m11 * m22 - h12 * h12;
        double step[2] = {0, 0};
        if (det > 0) {
            step[0] = (g1 * m22 - g2 * h12) / det;
            step[1] = (m11 * g2 - h12 * g1) / det;
        }
        /* A parameter held at its bound is taken out, and the other solved alone. */
        if (p[0] == 0 && step[0] < 0)
            step[0] = 0, step[1] = m22 > 0 ? g2 / m22 : 0;
        else if (p[1] == 0 && step[1] < 0)
            step[1] = 0, step[0] = m11 > 0 ? g1 / m11 : 0;
        double q[2] = {fmax(0, p[0] + step[0]), fmax(0, p[1] + step[1])};
        double eq = usl_sse(q[0], q[1], N, S, count);
        if (eq < e) {
            int small = e - eq <= 1e-15 * e;
            p[0] = q[0], p[1] = q[1], e = eq;
            lambda = fmax(lambda / 10, 1e-12);
            if (small)
                break;
        } else {
            lambda *= 10;
        }
    }
    *sigma = p[0], *kappa = p[1];
}

int prof_fit_usl(const double *n, const double *t, size_t count, struct prof_usl *out)
{
    double *N, *S;
    int err = out ? speedups(n, t, count, &N, &S) : PROF_EINVAL;
    if (err < 0)
        return err;
    double sigma, kappa;
    usl_start(N, S, count, &sigma, &kappa);
    usl_refine(N, S, count, &sigma, &kappa);
    out->sigma = sigma;
    out->kappa = kappa;
    out->rms_error = sqrt(usl_sse(sigma, kappa, N, S, count) / (double)count);
    free(N);
    return 0;
}
