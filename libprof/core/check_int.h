/* check_int.h: what the files of the CI gate's comparison share: the figures a rule may name. */
#ifndef POOLPROF_CHECK_INT_H
#define POOLPROF_CHECK_INT_H

enum fig_type { F_SECONDS, F_COUNT, F_BYTES, F_SHARE, F_BOOL, F_VERDICT };

/*
 * A figure of a report stage a rule may name. floor: values below it count as it, so a figure
 * near zero on both sides (no lock was ever contended) is no 3x regression of noise; measured: the
 * flag that says the figure was measured at all (lock wait without the shim is 0, not measured).
 */
struct check_figure {
    const char *path;
    enum fig_type type;
    double floor;
    const char *measured;
};

/* The figure at path ("lock.wait_fraction"), or NULL. */
const struct check_figure *check_figure_find(const char *path);

#endif
