/* metrics.h: the report's per-thread and per-stage figures, one table: how each is recorded, summed, named in the JSON and described in the schema. */
#ifndef POOLPROF_METRICS_H
#define POOLPROF_METRICS_H

#include <stdint.h>

/*
 * X(field, unit, across_images, thread_key, stage_key, description)
 *
 *   field          the member of struct prof_counters (a thread's figures, and a stage's sums)
 *   unit           NS: nanoseconds, reported as seconds (a JSON number rounded to the
 *                  microsecond); COUNT and BYTES: a JSON integer
 *   across_images  how a thread's figure is kept when its process exec's and the shim records
 *                  a new image: TASK, cumulative for the kernel task (it survives exec; every
 *                  source reads the same counter, so the largest reading wins); IMAGE, counted
 *                  by the shim per image and summed over images (a launcher's images before
 *                  the program's are subtracted again)
 *   thread_key     its key in processes[].threads[], or NULL when not reported per thread
 *   stage_key      its key in a stage (overall, stages[]), "a.b" inside the object a, or NULL
 *   description    the schema's description of both
 *
 * A stage's figure is the sum of its threads' (or its markers') figures. Adding a figure is
 * one line here plus the reader that fills it (read_shim.c, read_monitor.c, or the sampler's
 * states in merge_sampler.c); the merge, the stages, the report's JSON and the schema
 * (schema_gen.c) follow from the table, and test_metrics checks that every line reaches both.
 */
#define PROF_METRICS(X)                                                                                                \
    X(cpu_ns, NS, TASK, "cpu_seconds", "cpu_seconds",                                                                   \
      "On-CPU seconds (user + system): the larger of the shim's CLOCK_THREAD_CPUTIME_ID and /proc schedstat "          \
      "(for a marker stage: CPU while the stage was innermost, measured for long entries and bounded from above by "  \
      "self time less waits for short ones).")                                                                         \
    X(utime_ns, NS, TASK, "user_seconds", "user_seconds", "User-mode CPU seconds (getrusage RUSAGE_THREAD or /proc stat utime).") \
    X(stime_ns, NS, TASK, "system_seconds", "system_seconds", "Kernel-mode CPU seconds.")                               \
    X(runq_ns, NS, TASK, "runq_seconds", "runq_seconds",                                                                \
      "Seconds runnable but waiting for a CPU (schedstat run-queue wait): CPU oversubscription.")                      \
    X(vcsw, COUNT, TASK, "voluntary_ctx_switches", "ctx_switches.voluntary",                                            \
      "Voluntary context switches: the thread blocked (I/O, lock, sleep).")                                           \
    X(ivcsw, COUNT, TASK, "involuntary_ctx_switches", "ctx_switches.involuntary",                                       \
      "Involuntary context switches: the thread was preempted (CPU contention).")                                     \
    X(lock_wait_ns, NS, IMAGE, "lock_wait_seconds", "lock.wait_seconds",                                                \
      "Seconds blocked acquiring mutexes, rwlocks, spinlocks and semaphores another thread holds, the GIL apart "     \
      "(timed by the shim, else the sampler's lock state; 0 when not measured). Joins, hand-offs and condition "      \
      "waits are not lock waits.")                                                                                     \
    X(gil_wait_ns, NS, IMAGE, "gil_wait_seconds", "lock.gil_wait_seconds",                                              \
      "Seconds blocked waiting for a CPython GIL: its timed condition waits and the waits on the GIL's own mutexes "  \
      "(the one those waits release, and the forced switch's); 0 when not measured, null where the CPython is a "      \
      "free-threaded build running without its GIL.")                                                                  \
    X(lock_acquisitions, COUNT, IMAGE, "lock_acquisitions", NULL, "Lock acquisitions the shim counted.")                \
    X(lock_contended, COUNT, IMAGE, "lock_contended", NULL, "Of those, acquisitions that had to wait.")                 \
    X(io_wait_ns, NS, IMAGE, "io_wait_seconds", "io.wait_seconds",                                                      \
      "Wall seconds inside network and disk I/O calls (regular-file writes land in the page cache: their bytes "      \
      "count, their time is not measured). A poll/select on exactly one descriptor counts here.")                     \
    X(io_bytes, BYTES, IMAGE, "io_bytes", "io.bytes", "Bytes moved by network and disk I/O calls, both directions.")    \
    X(net_wait_ns, NS, IMAGE, "network_wait_seconds", "io.network_wait_seconds", "The network part of the I/O wait.")  \
    X(net_round_trips, COUNT, IMAGE, NULL, "io.network_round_trips",                                                    \
      "Receives that followed a send on the same network descriptor: requests answered (the rest of a long answer, "  \
      "or a request sent in pieces, counts once). The most waits the stage's requests could spread over: an I/O pool " \
      "is not sized beyond it.")                                                                                       \
    X(net_request_ns, NS, IMAGE, NULL, "io.network_request_seconds",                                                   \
      "Of those round trips, the seconds from each request's send to its answer's first receive, summed: the "        \
      "requests' time in flight. Over the wall time, how many requests the stage kept open at once (Little's law): "   \
      "an event loop that overlaps hundreds of requests keeps hundreds open on one thread.")                          \
    X(ipc_ns, NS, IMAGE, "ipc_seconds", "ipc.seconds",                                                                  \
      "Wall seconds inside IPC calls with other processes of the tree, both directions (a worker blocked reading its " \
      "next task counts). Serialization (pickling) CPU is not included: it is in cpu_seconds.")                        \
    X(ipc_bytes_sent, BYTES, IMAGE, "ipc_bytes_sent", "ipc.bytes_sent", "Bytes written to other processes of the tree.") \
    X(ipc_bytes_received, BYTES, IMAGE, "ipc_bytes_received", "ipc.bytes_received",                                     \
      "Bytes read from other processes of the tree.")                                                                  \
    X(ipc_sends, COUNT, IMAGE, NULL, "ipc.messages",                                                                    \
      "Send calls that carried the IPC bytes (write, send, sendmsg and the like on IPC descriptors). multiprocessing " \
      "writes a message of up to 16 KiB in one call, so for a pool of small tasks this counts task and result "       \
      "messages.")                                                                                                     \
    X(evloop_wait_ns, NS, IMAGE, "evloop_wait_seconds", "evloop_wait_seconds",                                          \
      "Seconds waiting in an event loop (epoll_wait, poll/select on 0 or several descriptors): asynchronous I/O "      \
      "waits, counted as waiting (not idle) by the verdict. 0 when not measured.")                                     \
    X(join_wait_ns, NS, IMAGE, "join_wait_seconds", "join_wait_seconds",                                                \
      "Seconds waiting for another thread or a child process to end (pthread_join and the like, a blocking "         \
      "wait/waitpid/waitid): idle, not a lock wait; a stage's thread_seconds leave it out. 0 when not measured.")      \
    X(handoff_wait_ns, NS, IMAGE, "handoff_wait_seconds", "handoff_wait_seconds",                                       \
      "Seconds blocked on a semaphore until a thread that had not taken it posted it (a queue's put, a condition's "  \
      "notify, a future's result), in a condition variable's wait (the GIL's apart), or in a timed wait that ran "    \
      "out (Event.wait(timeout)): waiting for work, a result or a tick, idle, not a lock wait; a stage's "            \
      "thread_seconds leave it out like joins. 0 when not measured.")                                                  \
    X(sleep_ns, NS, IMAGE, "sleep_seconds", "sleep_seconds",                                                            \
      "Wall seconds in sleep calls (nanosleep, clock_nanosleep, usleep, sleep; CPython's time.sleep is one): timed "  \
      "waits that end by themselves. 0 when not measured.")                                                           \
    X(sleeps, COUNT, IMAGE, "sleeps", "sleeps",                                                                         \
      "Sleep calls: each a separate wait, which workers could take side by side; one long sleep cannot be split.")    \
    X(disk_reads, COUNT, IMAGE, NULL, "io.disk_reads",                                                                  \
      "Timed reads of regular files and block devices: each a separate wait on the disk that workers could issue "    \
      "side by side (most return from the page cache at once).")                                                      \
    X(net_send_wait_ns, NS, IMAGE, "network_send_wait_seconds", "io.send_wait_seconds",                                 \
      "Of the network wait, the seconds in writes and sends (on sockets, and on pipes that lead out of the tree): a "  \
      "send returns once the reader has made room, so this is back-pressure from downstream, which more writers "     \
      "never shorten: the verdict spreads none of it over workers.")                                                  \
    X(ipc_send_wait_ns, NS, IMAGE, "ipc_send_wait_seconds", "ipc.send_wait_seconds",                                    \
      "Of ipc.seconds, the seconds in writes and sends to other processes of the tree: back-pressure from a reader "  \
      "in the tree.")                                                                                                  \
    X(startup_cpu_ns, NS, TASK, "startup_cpu_seconds", "startup_cpu_seconds",                                           \
      "Of cpu_seconds, the CPU the task had used when its program's main() began: exec, the dynamic loader, "          \
      "constructors. Every worker would pay it again and no pool divides it: the verdict does not count it as work. " \
      "0 for threads and forked processes.")

enum prof_metric_unit { PROF_METRIC_NS, PROF_METRIC_COUNT, PROF_METRIC_BYTES };
enum prof_metric_images { PROF_METRIC_TASK, PROF_METRIC_IMAGE };

/* A thread's figures, and a stage's sums of them. */
struct prof_counters {
#define PROF_METRIC_FIELD(field, unit, images, tkey, skey, desc) uint64_t field;
    PROF_METRICS(PROF_METRIC_FIELD)
#undef PROF_METRIC_FIELD
};

enum prof_metric_id {
#define PROF_METRIC_ID(field, unit, images, tkey, skey, desc) PROF_M_##field,
    PROF_METRICS(PROF_METRIC_ID)
#undef PROF_METRIC_ID
    PROF_METRIC_COUNT_
};

/* The table as data, for code that walks it (the JSON, the schema, the tests). */
struct prof_metric {
    const char *field;
    enum prof_metric_unit unit;
    enum prof_metric_images images;
    const char *thread_key;
    const char *stage_key;
    const char *description;
    uint64_t (*get)(const struct prof_counters *c);
};

#define PROF_METRIC_GETTER(field, unit, images, tkey, skey, desc)                            \
    static inline uint64_t prof_metric_get_##field(const struct prof_counters *c) { return c->field; }
PROF_METRICS(PROF_METRIC_GETTER)
#undef PROF_METRIC_GETTER

static const struct prof_metric prof_metrics[PROF_METRIC_COUNT_] = {
#define PROF_METRIC_ROW(field, unit, images, tkey, skey, desc) \
    {#field, PROF_METRIC_##unit, PROF_METRIC_##images, tkey, skey, desc, prof_metric_get_##field},
    PROF_METRICS(PROF_METRIC_ROW)
#undef PROF_METRIC_ROW
};

/* Is this figure null, not 0, where what it measures does not exist (the schema admits null for it)?
 * The GIL wait, in a free-threaded CPython running without its GIL (report.c). */
static inline int prof_metric_may_be_null(enum prof_metric_id id)
{
    return id == PROF_M_gil_wait_ns;
}

/* c += d, figure by figure (a stage summing its threads). */
static inline void prof_counters_add(struct prof_counters *c, const struct prof_counters *d)
{
#define PROF_METRIC_ADD(field, unit, images, tkey, skey, desc) c->field += d->field;
    PROF_METRICS(PROF_METRIC_ADD)
#undef PROF_METRIC_ADD
}

#endif
