/* predict.c: the prediction: a cost model of the stage's work, each model's candidate at its own worker count, the choice, the scaling curve, the chunksize, and the reasons for the pick. */

/*
 * Pure functions like the rest of the advice (advise.c): the measured figures
 * in, predicted seconds and speedups out, every speedup over the same model's
 * time for the configuration that was measured.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/advise_int.h"

/* The copy alone, both ends of the pipe (the same benchmark: 0.2-1.7 ns/byte), added to a sampled serialization time. */
#define COPY_NS_PER_BYTE 0.5
/*
 * What a CPython process pool pays per task beyond moving its bytes (the task's message out
 * and its result's back, each pickled, written, woken for, read and unpickled in the
 * dispatcher's feeder and result threads, which take turns on its GIL) differs sevenfold
 * between pools on this machine: 12.5 us per task for multiprocessing.Pool.imap, 87 us for
 * ProcessPoolExecutor.map (bench/ipc_cost.py --messages). So it is not assumed: a pool
 * stage's dispatcher CPU, less its share of the serialization, is taken as that cost, and
 * it is serial: the dispatcher paces the pool at one round trip per its cost at best.
 * Fewer round trips than this carry no per-message advice (the cost is noise). */
#define MSG_ROUND_TRIPS_MIN 200
/* Batch until the dispatcher's share of each chunk's time is at most this. */
#define MSG_SHARE_TARGET 0.05
/* A pool map keeps at least this many chunks per worker (multiprocessing's own map uses 4), so the load stays balanced. */
#define CHUNKS_PER_WORKER 4
/* An event loop that blocked this share of thread time is the program's own: async is then cheap. */
#define EVLOOP_SHARE_MIN 0.10
/* A process pool's own IPC can never be more than this share of the CPU it measured. */
#define IPC_MAX_CPU_SHARE 0.9
/* Forked workers' faults are worth a sentence from this share of the process pool's predicted time. */
#define FORK_FAULT_CITE_SHARE 0.01

static int cost_rank(enum prof_model m, int evloop)
{
    /* Cheapest first: what it takes to adopt and to run (threads share memory, processes copy). */
    switch (m) {
    case PROF_MODEL_SEQUENTIAL:
        return 0;
    case PROF_MODEL_THREADS:
        return evloop ? 2 : 1;
    case PROF_MODEL_ASYNC:
        return evloop ? 1 : 2;
    case PROF_MODEL_PROCESSES:
        return 3;
    case PROF_MODEL_HYBRID:
        return 4;
    }
    return 5;
}

/*
 * Predicted seconds for the stage's work on `model` with n workers and u
 * usable CPUs: Amdahl for the CPU part (the serial share runs one worker at a
 * time), the waits overlapping across workers, and for processes the IPC, half
 * of it serial in the dispatcher. The slowest of the CPU bound, the overlap
 * bound and the longest wait (no pool finishes a wait sooner than it takes) is
 * the time; what no pool shortens (the start-up before main, back-pressure,
 * waits for input) comes on top, as long as it was for each of today's workers.
 */
static double predict_seconds(const struct prof_work *k, int u, enum prof_model model, int n)
{
    /* The program around a pool (own_s) runs in one thread whatever the model; the rest spreads. */
    double own = fmin(k->own_s, k->cpu_s), c = k->cpu_s - own, w = k->wait_s, half = k->ipc_s / 2, lw = k->longest_s;
    double fixed = (k->fixed_s + k->startup_s) / (k->current_workers > 1 ? k->current_workers : 1) + own;
    /* The dispatcher's per-message work overlaps the workers' but cannot go faster than itself;
     * the workers' own per-message loop is spread over them like the work. */
    int chunk = k->chunk > 1 ? k->chunk : 1;
    double msg = k->msg_s / chunk, wmsg = k->worker_msg_s / chunk;
    if (n < 1)
        n = 1;
    int p = n < u ? n : u;
    switch (model) {
    case PROF_MODEL_SEQUENTIAL:
        break;
    case PROF_MODEL_THREADS:
        return fixed + fmax(lw, fmax(c * k->serial_threads + c * (1 - k->serial_threads) / p, (c + w) / n));
    case PROF_MODEL_ASYNC: {
        /* One thread per loop runs every task's CPU part; only the waits overlap. A stage whose
         * processes each run their own loop (a client and the server it started) spreads its CPU
         * over them as it did today. */
        int loops = k->loops > 1 ? (k->loops < u ? k->loops : u) : 1;
        return fixed + fmax(lw, fmax(c / loops, (c + w) / n));
    }
    case PROF_MODEL_PROCESSES:
        /* Each forked worker beyond today's pays its faults after the fork, like its start-up: before
         * its work, side by side with the others' on the CPUs there are. */
        return fixed + half + k->worker_fault_s * (n > k->forked_now ? n - k->forked_now : 0) / p +
               fmax(lw, fmax(msg, fmax(c * k->serial_processes + (c * (1 - k->serial_processes) + half + wmsg) / p,
                                       (c + w + half + wmsg) / n)));
    case PROF_MODEL_HYBRID:
        /* The CPU part on one process per usable CPU, the waits on n threads. */
        return fixed + half + k->worker_fault_s * (u > k->forked_now ? u - k->forked_now : 0) / u +
               fmax(lw, fmax(msg, fmax(c * k->serial_processes + (c * (1 - k->serial_processes) + half + wmsg) / u,
                                       (c + w + half + wmsg) / n)));
    }
    /* Sequential runs the tasks inline: their own CPU, no pool around them. */
    return fixed + c + w;
}

/*
 * Waits that are work (I/O, sleeps: they overlap across workers) are what is left of thread
 * time once CPU, the run queue, lock and GIL waits and pool idling are taken out. Where the
 * sampler classified every thread's off-CPU time by cause, no more than it saw blocked on such
 * things: the remainder is time the figures do not explain, not work to overlap. (On a busy
 * host a global-lock stage's threads were off CPU 0.1-0.36 s longer than the shim timed them
 * in the lock, the sampler seeing them at the lock's futex the whole time, and that
 * remainder, read as I/O, made threads look 12-25% faster than one thread.)
 */
double adv_work_waits(const struct prof_stage_figures *f, double residual)
{
    return f->waits_sampled ? fmin(residual, adv_nonneg(f->sampled_wait_s)) : residual;
}

/* Off-CPU time that is neither the machine's (run queue, stolen) nor the locks', less `idle` (a pool's own). */
double adv_off_cpu_rest(const struct prof_stage_figures *f, double lockgil, double idle)
{
    return adv_nonneg(f->thread_s - f->cpu_s - f->runq_s - f->steal_s - lockgil - idle);
}

/* The separate waits of the voluntary context switches' bound: every wait that ended is one switch. */
static void waits_by_switches(const struct prof_stage_figures *f, double rest, int pool, struct adv_waits *w)
{
    /* The sampler's pipe waits are the tree's own, unless the stage is a pool (then they are its idling, not in rest). */
    double ipc = pool ? 0 : fmin(adv_nonneg(f->ipc_s), rest);
    double cand = f->waits_sampled ? fmin(rest - ipc, adv_nonneg(f->sampled_wait_s - ipc)) : rest - ipc;
    if (f->switches > 0 && cand > 0) {
        w->indep = cand;
        w->longest = cand / (double)f->switches;
        w->episodes = (double)f->switches;
    }
    w->fixed = adv_nonneg(rest - w->indep);
    w->ipc = fmin(ipc, w->fixed);
    w->untimed = adv_nonneg(w->fixed - w->ipc);
}

/*
 * Which off-CPU time overlaps across workers (issue 25). Only separate, repeated waits do:
 * requests answered (a receive after a send on a network descriptor; a program's own event loop
 * waits on such requests too), reads of files, sleeps. N of them overlap at most N-fold, and no
 * pool finishes them sooner than one of the longest kind takes: its mean wait, so one sleep of
 * 5 s stays 5 s whatever the pool. The rest of the off-CPU time is fixed: sends that waited for
 * a reader (back-pressure: more writers never make a reader faster), receives that followed no
 * request of the stage's (waiting for input: for upstream, or for work), the tree's pipes, and
 * what no wrapped call timed (page faults, calls the shim does not see). Where the shim did not
 * count (attach, static binaries, --no-preload), the voluntary context switches bound how many
 * waits ended; where nothing counted, the waits are all taken to overlap, as before.
 */
void adv_waits(const struct prof_stage_figures *f, double lockgil, double pool_idle, int pool, struct adv_waits *w)
{
    memset(w, 0, sizeof *w);
    double rest = adv_off_cpu_rest(f, lockgil, pool_idle);
    /* A stage that is no pool has its writers' IPC waits in rest (back-pressure: a writer waiting
     * for its reader); its readers' waits for a writer are idle, in pool_idle (advise.c). */
    double ipc = f->ipc_measured && !pool ? fmin(adv_nonneg(f->ipc_send_wait_s), rest) : 0;
    if (f->waits_counted == PROF_WAITS_UNKNOWN) {
        w->indep = adv_work_waits(f, adv_nonneg(rest - ipc));
        return;
    }
    if (f->waits_counted == PROF_WAITS_SWITCHES) {
        waits_by_switches(f, rest, pool, w);
        return;
    }
    double net_recv = adv_nonneg(adv_nonneg(f->net_wait_s) - adv_nonneg(f->net_send_wait_s)) + (pool ? 0 : f->evloop_wait_s);
    struct {
        double t;
        uint64_t n;
    } kind[] = {
        {net_recv, f->net_round_trips},
        {adv_nonneg(f->io_wait_s - f->net_wait_s), f->disk_reads},
        {f->sleep_s, f->sleeps},
    };
    for (size_t i = 0; i < sizeof kind / sizeof kind[0]; i++) {
        if (kind[i].t <= 0)
            continue;
        if (kind[i].n == 0) {
            w->unrequested += kind[i].t;
            continue;
        }
        w->indep += kind[i].t;
        w->longest = fmax(w->longest, kind[i].t / (double)kind[i].n);
    }
    /* A timed call's clock runs on while its woken thread waits for a CPU, which rest leaves out. */
    double room = adv_nonneg(rest - ipc);
    if (w->indep > room) {
        w->longest *= room / w->indep;
        w->indep = room;
    }
    /* The waits the threads blocked in, as opposed to the requests' time in flight below. */
    double blocked = w->indep;
    if (adv_loop_inflight(f) > 0 && f->net_request_s > net_recv) {
        /* A loop that overlaps its requests blocks for a sliver of their time in flight, which is
         * what overlaps (and was overlapped): each request is one wait of its own latency. */
        w->indep += f->net_request_s - fmin(net_recv, room);
        w->longest = fmax(w->longest, f->net_request_s / (double)f->net_round_trips);
    }
    w->episodes = w->longest > 0 ? w->indep / w->longest : 0;
    w->fixed = adv_nonneg(rest - blocked);
    w->backpressure = fmin(adv_nonneg(f->net_send_wait_s) + (pool ? 0 : adv_nonneg(f->ipc_send_wait_s)), w->fixed);
    w->ipc = fmin(adv_nonneg(ipc - (pool ? 0 : adv_nonneg(f->ipc_send_wait_s))), adv_nonneg(w->fixed - w->backpressure));
    w->unrequested = fmin(w->unrequested, adv_nonneg(w->fixed - w->backpressure - w->ipc));
    w->untimed = adv_nonneg(w->fixed - w->backpressure - w->ipc - w->unrequested);
}

/*
 * Requests the stage kept open at once when its event loop overlaps them (issue 25, class 4), else
 * 0: the requests' time in flight over the wall time (Little's law), where the stage waits in an
 * event loop and that many exceed its threads, so no thread held one blocking request at a time.
 * Such a loop already runs async at that concurrency: its blocked time is short because its waits
 * overlap, not because it has few.
 */
double adv_loop_inflight(const struct prof_stage_figures *f)
{
    if (f->evloop_wait_s <= 0 || f->net_round_trips == 0 || f->wall_s <= TINY_S || f->net_request_s <= 0 ||
        f->current_model == PROF_MODEL_PROCESSES)
        return 0;
    double inflight = f->net_request_s / f->wall_s;
    return inflight >= 2.0 && inflight > (double)(f->nthreads > 1 ? f->nthreads : 1) ? inflight : 0;
}

/* How the stage runs today, when the merge did not say: several processes, several threads, or one. */
void adv_current_config(const struct prof_stage_figures *f, struct prof_work *k)
{
    k->current_model = f->current_model;
    k->current_workers = f->current_workers;
    double inflight = adv_loop_inflight(f);
    if (inflight > 0) {
        /* An event loop that overlaps its requests: async, at the concurrency it achieved. */
        k->current_model = PROF_MODEL_ASYNC;
        k->current_workers = (int)fmin(ceil(inflight), 1e6);
        k->loops = f->nprocesses > 1 ? f->nprocesses : 1;
        return;
    }
    if (k->current_workers > 0)
        return;
    if (f->nprocesses >= 2) {
        k->current_model = PROF_MODEL_PROCESSES;
        k->current_workers = f->nprocesses - 1; /* the dispatcher is not a worker */
    } else if (f->nthreads >= 2) {
        k->current_model = PROF_MODEL_THREADS;
        k->current_workers = f->nthreads;
    } else {
        k->current_model = PROF_MODEL_SEQUENTIAL;
        k->current_workers = 1;
    }
}

/*
 * A chatty CPython pool whose stacks the sampler read (issue 25): the work is what the tasks
 * themselves cost in the workers, plus the program around the pool in the dispatcher (its own
 * thread in every model). The rest is the pool's: the dispatcher's machinery (feeding tasks,
 * collecting results: serial, per message), the workers' own loop (receiving, unpickling,
 * pickling results, sending: in parallel, per message), the bytes' share of both. Nothing caps
 * the overhead at a share of the work, as the estimate without stacks must: a pool of near-free
 * tasks spends many times their CPU on itself (40000 Luhn checks: 0.02 s of tasks sampled in
 * 0.47 s of worker CPU), and inline the tasks cost only their own.
 */
static void pool_split_work(const struct prof_stage_figures *f, double work, struct prof_work *k)
{
    double dpool = fmin(f->dispatcher_pool_cpu_s, f->dispatcher_cpu_s);
    double wpool = adv_nonneg(f->worker_cpu_s - f->task_cpu_s);
    k->task_measured = 1;
    k->cpu_s = adv_nonneg(work - dpool - wpool);
    k->own_s = fmin(k->cpu_s, adv_nonneg(f->dispatcher_cpu_s - dpool - k->startup_s));
    k->ipc_s = fmin(k->ipc_s, dpool + wpool);
    k->msg_s = adv_nonneg(dpool - k->ipc_s / 2);
    k->worker_msg_s = adv_nonneg(wpool - k->ipc_s / 2);
}

/* From the measured figures to the work the prediction runs on. */
static void derive_work(const struct prof_stage_figures *f, const struct split *s, enum prof_class cls,
                        struct prof_work *k)
{
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    memset(k, 0, sizeof *k);
    adv_current_config(f, k);
    int procs_now = k->current_model == PROF_MODEL_PROCESSES;

    /* IPC: when the stage exchanged data with other processes of the tree and the sampler saw its
     * serialization, that CPU is the cost a process pool pays, and not work a thread would do;
     * otherwise the cost is estimated from the bytes. The start-up before main is no one's work. */
    double bytes = (double)f->ipc_bytes;
    k->startup_s = fmin(adv_nonneg(f->startup_cpu_s), f->cpu_s);
    double work = f->cpu_s - k->startup_s;
    /*
     * The faults today's forked children took after the fork (issue 30) stay in the work: a minor
     * fault is a copy on write (the fork's price) or a first touch (the task's own: a worker that
     * unpickles a 2.6 MiB frame per task faults in every page of it), and the counters cannot tell
     * them apart. Taken out as the fork's price, they once left py_frame_stats's tasks no CPU at all
     * (its children's kernel time, over their faults, also held their pipe reads) and predicted
     * running them inline 2125x faster. So each worker a process pool starts beyond today's pays
     * what one of today's took (predict_seconds); today's are in the measured work already.
     */
    k->worker_fault_s = s->ctr.worker_fault_s;
    k->forked_now = f->fork_faults_measured ? f->fork_children : 0;
    k->cpu_s = work;
    /* A CPython pool of many messages: its serializer frames also run per message (a pickler set
     * up, a buffer made, for 40 bytes), and that part is the per-message cost below, not bytes'. */
    int chatty = procs_now && f->python && f->pool_dispatcher && f->ipc_messages / 2 >= MSG_ROUND_TRIPS_MIN;
    if (bytes > 0 && f->serialize_measured) {
        double ser = chatty ? fmin(f->serialize_s, bytes * IPC_NS_PER_BYTE * 1e-9) : f->serialize_s;
        k->ipc_s = ser + bytes * COPY_NS_PER_BYTE * 1e-9;
        if (k->ipc_s > IPC_MAX_CPU_SHARE * work)
            k->ipc_s = IPC_MAX_CPU_SHARE * work;
        k->cpu_s = work - k->ipc_s;
    } else {
        k->ipc_s = bytes * IPC_NS_PER_BYTE * 1e-9;
        k->ipc_estimated = 1;
        if (procs_now) {
            /* The pool's own pickling ran on these CPUs. */
            if (k->ipc_s > IPC_MAX_CPU_SHARE * work)
                k->ipc_s = IPC_MAX_CPU_SHARE * work;
            k->cpu_s = work - k->ipc_s;
        }
    }
    /*
     * A CPython process pool's fixed cost per task: multiprocessing writes a message of up to
     * 16 KiB in one call, so the sends count task and result messages; two per task. Its CPU
     * ran on these CPUs and is not the work's.
     */
    k->chunk = 1;
    if (chatty) {
        k->round_trips = f->ipc_messages / 2;
        k->msg_s = adv_nonneg(f->dispatcher_cpu_s - k->ipc_s / 2);
        k->cpu_s = fmax(k->cpu_s - k->msg_s, (1 - IPC_MAX_CPU_SHARE) * work);
        if (f->pool_split_measured)
            pool_split_work(f, work, k);
    }
    /* Waits that are work: separate waits, not the CPU queue, not locks or the GIL (contention,
     * or idle pool threads parked on condvars), not IPC (a worker blocked on its next task), and
     * not a pool dispatcher's event loop (multiprocessing's manager thread polling its workers):
     * the split's (adv_waits). What no pool shortens stays as it was. */
    k->wait_s = s->waits.indep;
    k->longest_s = s->waits.longest;
    k->episodes = s->waits.episodes;
    k->fixed_s = s->waits.fixed;
    k->waits_counted = f->waits_counted;

    /* A global lock: its hold time over the CPU the work needs, else (hold unknown) the waiting
     * that n threads taking turns on one lock show: each waits (n-1)/n of its time. */
    double lock = 0;
    const char *lock_src = NULL;
    int n0 = k->current_workers;
    if (f->hottest_lock_hold_fraction > 0 && f->cpu_s > TINY_S) {
        lock = fmin(1.0, f->hottest_lock_hold_fraction * f->wall_s / f->cpu_s);
        lock_src = "hold time of the hottest lock over CPU time";
    } else if (cls == PROF_CLASS_CPU && f->lock_wait_s / th > SERIAL_WAIT_ABOVE && n0 >= 2) {
        lock = fmin(1.0, f->lock_wait_s / th * n0 / (n0 - 1));
        lock_src = "lock wait of threads taking turns";
    }
    /* Without a GIL (free-threaded CPython) the threads' serial share is the lock's alone. */
    double gil = 0;
    const char *gil_src = NULL;
    if (adv_gil(f)) {
        int p = n0 < s->u ? n0 : s->u;
        if (k->task_measured) {
            /* The share sampled over a chatty pool counts its own pipe reads and writes, which
             * release the GIL: 0.44-0.59 over pools whose tasks are pure bytecode, whose thread
             * pools then ran 25% slower than inline. The tasks' code is what threads would run:
             * at most every GIL-holding tick of the workers was theirs, so their share is at most
             * the workers' held ticks over the tasks' CPU (numpy frames, which release it, read
             * 0.2-0.4 where threads x 2 measured best; the dispatcher, reading and pickling the
             * frames, holds it and is left out). */
            gil = 1.0;
            gil_src = "assumed: the pool's tasks run CPython bytecode, which holds the GIL";
            if (f->task_gil_measured) {
                gil = f->task_gil_held_share;
                gil_src = "GIL holder sampled per tick in the code the pool's tasks ran";
            } else if (f->worker_gil_measured && f->task_cpu_s > TINY_S && f->worker_cpu_s > TINY_S) {
                double bound = f->worker_gil_held_share * f->worker_cpu_s / f->task_cpu_s;
                if (bound < 1.0) {
                    gil = bound;
                    gil_src = "GIL holder sampled per tick, all of its held ticks charged to the pool's tasks";
                }
            }
        } else if (f->gil_held_measured) {
            gil = f->gil_held_share;
            gil_src = "GIL holder sampled per tick";
        } else if (k->current_model == PROF_MODEL_THREADS && p >= 2 && cls == PROF_CLASS_CPU && f->cpu_s > TINY_S &&
                   f->wall_s * p > f->cpu_s * 1.05) {
            /* No sampler: the parallelism the threads achieved bounds the serial share
             * (Amdahl solved for s from wall = cpu x (s + (1 - s) / p)). */
            gil = fmin(1.0, adv_nonneg((f->wall_s / f->cpu_s - 1.0 / p) / (1.0 - 1.0 / p)));
            gil_src = "parallelism the threads achieved";
        } else {
            gil = 1.0;
            gil_src = "assumed: CPython bytecode holds the GIL";
        }
    }
    k->serial_threads = fmax(gil, lock);
    k->serial_source = gil >= lock ? gil_src : lock_src;
    if (!k->serial_source)
        k->serial_source =
            f->python && f->gil_absent ? "no GIL (free-threaded CPython) and no lock held" : "no lock or GIL measured";
    /* Processes each have their own interpreter, but a lock's state would still be shared. */
    k->serial_processes = lock;
}

static void add_candidate(struct prof_verdict *v, const struct prof_work *k, int u, enum prof_model model, int n)
{
    if (v->ncandidates >= PROF_MAX_CANDIDATES)
        return;
    struct prof_candidate *c = &v->candidates[v->ncandidates++];
    c->model = model;
    c->workers = n < 1 ? 1 : n;
    c->chunksize = k->chunk > 1 ? k->chunk : 0;
    c->seconds = predict_seconds(k, u, model, c->workers);
    c->speedup = c->seconds > TINY_S ? k->current_s / c->seconds : 1.0;
}

/*
 * A candidate's cost to adopt: its model's rank, and batching the tasks of a pool is one
 * more code change on top of the pool. Batching's gain is measured less surely than a
 * model's: a pool's dispatcher also spends CPU per task (iterating the input, collecting
 * each result) that no chunksize removes, and one already batched at 40 read 0.19 s of
 * such CPU in 0.35 s; it must buy more than CHEAPER_WITHIN like any other change.
 */
static int cand_cost(const struct prof_candidate *c, int evloop, enum prof_model uses)
{
    /* The model the program already runs, more of it, costs the least change short of none:
     * children run one at a time want more at once, not a rewrite into threads. */
    if (c->model == uses && uses != PROF_MODEL_SEQUENTIAL)
        return 1 + (c->chunksize > 1);
    return 2 * cost_rank(c->model, evloop) + (c->chunksize > 1);
}

/* The best prediction, then the cheapest candidate within 10% of it; the runner-up is the best of the rest. */
static int choose(struct prof_verdict *v, int evloop, enum prof_model uses, int *best_out)
{
    int best = 0;
    for (int i = 1; i < v->ncandidates; i++)
        if (v->candidates[i].speedup > v->candidates[best].speedup)
            best = i;
    int pick = best;
    for (int i = 0; i < v->ncandidates; i++)
        if (v->candidates[i].speedup * CHEAPER_WITHIN >= v->candidates[best].speedup &&
            cand_cost(&v->candidates[i], evloop, uses) < cand_cost(&v->candidates[pick], evloop, uses))
            pick = i;
    v->runner_up = -1;
    for (int i = 0; i < v->ncandidates; i++)
        if (i != pick && v->candidates[i].model != v->candidates[pick].model &&
            (v->runner_up < 0 || v->candidates[i].speedup > v->candidates[v->runner_up].speedup))
            v->runner_up = i;
    *best_out = best;
    return pick;
}

void adv_scaling_curve(struct prof_verdict *v, const struct prof_work *k, int u)
{
    enum prof_model m = k->current_model;
    if (m == PROF_MODEL_SEQUENTIAL)
        m = PROF_MODEL_THREADS; /* one worker today: what more threads of the same code would do */
    int ns[PROF_MAX_SCALING], n = 0;
    for (int w = 1; w <= 256 && n < PROF_MAX_SCALING - 2; w *= 2)
        ns[n++] = w;
    ns[n++] = v->workers;
    ns[n++] = k->current_workers;
    v->nscaling = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < v->nscaling; j++)
            dup |= v->scaling[j].workers == ns[i];
        if (dup || ns[i] < 1)
            continue;
        double t = predict_seconds(k, u, m, ns[i]);
        v->scaling[v->nscaling].workers = ns[i];
        v->scaling[v->nscaling].speedup = t > TINY_S ? k->current_s / t : 1.0;
        v->nscaling++;
    }
    /* In worker order, for the reader and for sweep. */
    for (int i = 1; i < v->nscaling; i++)
        for (int j = i; j > 0 && v->scaling[j].workers < v->scaling[j - 1].workers; j--) {
            __typeof__(v->scaling[0]) tmp = v->scaling[j];
            v->scaling[j] = v->scaling[j - 1];
            v->scaling[j - 1] = tmp;
        }
}

static const char *cand_name(char *buf, size_t n, const struct prof_candidate *c)
{
    if (c->chunksize > 1)
        snprintf(buf, n, "%s x %d with chunksize %d", prof_model_name(c->model), c->workers, c->chunksize);
    else
        snprintf(buf, n, "%s x %d", prof_model_name(c->model), c->workers);
    return buf;
}

/* Is the pool paced by its dispatcher: its per-message cost at least the seeds' 15% of the pool's time? */
static int dispatcher_paced(const struct prof_work *k)
{
    return k->msg_s > 0 && k->current_s > TINY_S && k->msg_s >= SEED_IPC_ABOVE * k->current_s;
}

/*
 * Tasks per message for a process pool whose dispatcher paces it: enough that its fixed cost
 * per message is at most MSG_SHARE_TARGET of a chunk's work on one worker, but never so many
 * that a worker gets fewer than CHUNKS_PER_WORKER chunks. 0 when batching is not the answer
 * (the fixed cost is a small share of the pool's time, or too few tasks to batch).
 */
static int chunk_for(const struct prof_work *k, int p)
{
    if (!dispatcher_paced(k) || p < 1)
        return 0;
    double need = k->msg_s * p / (MSG_SHARE_TARGET * fmax(k->cpu_s - k->own_s, TINY_S));
    double cap = (double)k->round_trips / ((double)p * CHUNKS_PER_WORKER);
    double c = ceil(fmin(need, cap));
    return c >= 2 ? (int)fmin(c, 1 << 20) : 0;
}

/* What a pool's tasks cost against what the pool spent on each, per task, and the inline time (issue 25). */
static void pool_overhead_reason(struct prof_verdict *v, const struct prof_candidate *c)
{
    const struct prof_work *k = &v->work;
    double n = (double)k->round_trips, task = k->cpu_s - k->own_s;
    double pool = k->msg_s + k->worker_msg_s + k->ipc_s;
    const struct prof_candidate *seq = &v->candidates[0]; /* sequential is always the first */
    if (c->model == PROF_MODEL_SEQUENTIAL)
        adv_add_reason(v, "inline: the tasks cost %.1f us each (the workers' CPU in the code the pool called, sampled), and the pool spent %.1f us on each besides (its dispatcher %.1f, its workers' own loop %.1f, moving the bytes %.1f), more than parallelism saves; run inline, the stage is predicted %.2f s, %.2fx over the measured run",
                       task / n * 1e6, pool / n * 1e6, k->msg_s / n * 1e6, k->worker_msg_s / n * 1e6, k->ipc_s / n * 1e6,
                       seq->seconds, seq->speedup);
    else
        adv_add_reason(v, "the tasks cost %.1f us each (sampled in the workers), the pool %.1f us on each besides: run inline, the stage is predicted %.2f s, %.2fx",
                       task / n * 1e6, pool / n * 1e6, seq->seconds, seq->speedup);
}

/* The sentences that say why the prediction picked what it picked, with the figures that decided it. */
static void prediction_reasons(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s,
                               int pick, int best)
{
    const struct prof_work *k = &v->work;
    const struct prof_candidate *c = &v->candidates[pick];
    char a[48], b[48];
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    double tcap = 0; /* the most threads can give: Amdahl's limit */
    for (int i = 0; i < v->ncandidates; i++)
        if (v->candidates[i].model == PROF_MODEL_THREADS)
            tcap = v->candidates[i].speedup;

    if (pick != best) {
        const char *why = c->model == v->candidates[best].model ? "the smaller change wins"
                          : c->model == k->current_model && c->model != PROF_MODEL_SEQUENTIAL
                              ? "the model the program already runs wins"
                          : f->pipeline && c->model == PROF_MODEL_PROCESSES
                              ? "processes win: the work runs in a pipeline of programs, each one thread, whose parallel form is more pipelines side by side"
                              : "the cheaper model wins";
        adv_add_reason(v, "%s predicted %.2fx over the measured run, within 10%% of the best, %s at %.2fx: %s",
                       cand_name(a, sizeof a, c), c->speedup, cand_name(b, sizeof b, &v->candidates[best]),
                       v->candidates[best].speedup, why);
    }
    else if (v->runner_up >= 0)
        adv_add_reason(v, "%s predicted %.2fx over the measured run; runner-up %s at %.2fx", cand_name(a, sizeof a, c),
                       c->speedup, cand_name(b, sizeof b, &v->candidates[v->runner_up]),
                       v->candidates[v->runner_up].speedup);
    else
        adv_add_reason(v, "%s predicted %.2fx over the measured run", cand_name(a, sizeof a, c), c->speedup);

    if (k->task_measured && k->round_trips > 0)
        pool_overhead_reason(v, c);
    if (k->serial_threads >= 0.5 && c->model != PROF_MODEL_THREADS) {
        if (adv_gil(f) && k->serial_threads > k->serial_processes) {
            if (f->gil_wait_s / th > SERIAL_WAIT_ABOVE)
                adv_add_reason(v, "%d threads spent %d%% of their time waiting for the GIL; the work holds it %d%% of its CPU time (%s), so threads cannot exceed %.2fx",
                               k->current_workers, adv_pct(f->gil_wait_s / th), adv_pct(k->serial_threads), k->serial_source, tcap);
            else
                adv_add_reason(v, "the work holds the GIL %d%% of its CPU time (%s), so threads cannot exceed %.2fx; processes each have their own interpreter",
                               adv_pct(k->serial_threads), k->serial_source, tcap);
        } else if (k->serial_processes >= 0.5) {
            /* A lock's state would be shared by processes too: the prediction keeps it serial. */
            struct prof_work split = *k;
            split.serial_processes = 0;
            int u = s->c;
            double t = predict_seconds(&split, u, PROF_MODEL_PROCESSES, u);
            adv_add_reason(v, "the work holds one lock %d%% of its CPU time (%s): neither threads nor processes that share its state can exceed %.2fx; if that state can be split per worker, processes x %d would reach %.2fx",
                           adv_pct(k->serial_processes), k->serial_source, tcap, u,
                           t > TINY_S ? k->current_s / t : 1.0);
        }
    }
    if (k->current_model == PROF_MODEL_PROCESSES && k->ipc_s > 0.1 * (k->cpu_s + k->ipc_s)) {
        double pbest = 0;
        int pn = 0;
        for (int i = 0; i < v->ncandidates; i++)
            if (v->candidates[i].model == PROF_MODEL_PROCESSES) {
                pbest = v->candidates[i].speedup;
                pn = v->candidates[i].workers;
            }
        char how[96];
        if (k->ipc_estimated)
            snprintf(how, sizeof how, "estimated from %.1f MB at %.1f ns/byte", (double)f->ipc_bytes / 1e6,
                     IPC_NS_PER_BYTE);
        else
            snprintf(how, sizeof how, "%.3f s of serialization sampled, plus the copy", f->serialize_s);
        adv_add_reason(v, "moving the data between processes costs %.3f s (%s), %d%% of the CPU the pool spent: processes x %d predict %.2fx",
                       k->ipc_s, how, adv_pct(k->ipc_s / (k->cpu_s + k->ipc_s)), pn, pbest);
    }
    if (dispatcher_paced(k)) {
        int cp = -1;
        for (int i = 0; i < v->ncandidates; i++)
            if (v->candidates[i].chunksize > 1)
                cp = i;
        int p = k->current_workers > 0 ? k->current_workers : 1;
        adv_add_reason(v, "the pool moved %llu tasks, a message out and one back per task (%llu sends): its dispatcher spent %.0f us of CPU per task against %.1f us of work per task spread over %d workers, so the dispatcher paces the pool (%.2f s of the predicted %.2f s)",
                       (unsigned long long)k->round_trips, (unsigned long long)f->ipc_messages,
                       k->msg_s / (double)k->round_trips * 1e6, (k->cpu_s - k->own_s) / (double)k->round_trips * 1e6, p, k->msg_s,
                       k->current_s);
        if (cp >= 0 && v->candidates[cp].chunksize == v->chunksize)
            adv_add_reason(v, "batch the tasks: chunksize=%d in map/imap (or submit lists of %d) keeps the dispatcher under %d%% of each chunk's time and leaves %d chunks per worker: processes x %d predicted %.2fx",
                           v->chunksize, v->chunksize, adv_pct(MSG_SHARE_TARGET),
                           (int)((double)k->round_trips / v->chunksize / (v->workers > 0 ? v->workers : 1)),
                           v->workers, v->candidates[cp].speedup);
        else if (cp >= 0)
            adv_add_reason(v, "even batched (chunksize=%d) processes x %d predict only %.2fx", v->candidates[cp].chunksize,
                           v->candidates[cp].workers, v->candidates[cp].speedup);
        else
            adv_add_reason(v, "too few tasks to batch: %llu tasks leave fewer than %d chunks of 2 per worker", (unsigned long long)k->round_trips,
                           CHUNKS_PER_WORKER);
    }
}

/* The pick if no forked worker paid for its faults: the same candidates, the charge taken off. */
static int pick_without_faults(const struct prof_verdict *v, int u, int evloop, enum prof_model uses)
{
    struct prof_verdict w = *v;
    struct prof_work *k = &w.work;
    k->worker_fault_s = 0;
    double cur = predict_seconds(k, u, k->current_model, k->current_workers);
    if (cur > TINY_S)
        k->current_s = cur;
    for (int i = 0; i < w.ncandidates; i++) {
        struct prof_candidate *c = &w.candidates[i];
        struct prof_work kc = *k;
        kc.chunk = c->chunksize > 1 ? c->chunksize : 1;
        c->seconds = predict_seconds(&kc, u, c->model, c->workers);
        c->speedup = c->seconds > TINY_S ? k->current_s / c->seconds : 1.0;
    }
    int best;
    return choose(&w, evloop, uses, &best);
}

/*
 * What forked workers pay for their faults after the fork (issue 30), said where it matters: where
 * it changed the pick, or where it is at least FORK_FAULT_CITE_SHARE of the process pool's predicted
 * time. "Copied on write or first touched": a minor fault is either, and only the first is the fork's.
 */
static void fork_fault_reason(struct prof_verdict *v, const struct split *s, int pick, int evloop, enum prof_model uses)
{
    const struct adv_counters *c = &s->ctr;
    if (c->worker_fault_s <= 0)
        return;
    /* The candidate that pays: the pick when it forks, else the best process pool, else hybrid. */
    int pc = -1;
    for (int i = 0; i < v->ncandidates; i++) {
        enum prof_model m = v->candidates[i].model;
        if (m != PROF_MODEL_PROCESSES && m != PROF_MODEL_HYBRID)
            continue;
        if (pc < 0 || i == pick || (pc != pick && (m < v->candidates[pc].model ||
                                                   (m == v->candidates[pc].model &&
                                                    v->candidates[i].speedup > v->candidates[pc].speedup))))
            pc = i;
    }
    if (pc < 0)
        return;
    const struct prof_candidate *p = &v->candidates[pc];
    int n = p->model == PROF_MODEL_HYBRID ? s->c : p->workers, more = n - v->work.forked_now;
    if (more <= 0)
        return; /* no more workers than today's, whose faults are in the measured work */
    double charge = c->worker_fault_s * more / (n < s->c ? n : s->c);
    int alt = pick_without_faults(v, s->c, evloop, uses);
    int tipped = v->candidates[alt].model != v->candidates[pick].model ||
                 v->candidates[alt].workers != v->candidates[pick].workers;
    if (!tipped && charge < FORK_FAULT_CITE_SHARE * p->seconds)
        return;
    char nf[32], mem[32], per[32], ch[32], sec[32], a[48], b[48], tail[128] = "";
    if (tipped)
        snprintf(tail, sizeof tail, "; it tips the choice: without it, %s would win", cand_name(b, sizeof b, &v->candidates[alt]));
    adv_add_reason(v, "each forked worker took %s minor faults after the fork (%s of pages copied on write or first touched), %s of kernel time at %.2f us a fault: charged to %s, %s of its predicted %s%s",
                   adv_fmt_count(nf, sizeof nf, c->child_faults),
                   adv_fmt_bytes(mem, sizeof mem, (uint64_t)(c->child_faults * (double)c->page_bytes)),
                   adv_fmt_dur(per, sizeof per, c->worker_fault_s), c->fault_s * 1e6, cand_name(a, sizeof a, p),
                   adv_fmt_dur(ch, sizeof ch, charge), adv_fmt_dur(sec, sizeof sec, p->seconds), tail);
}

/* An idle stage: nothing to spread over workers, so its one candidate is itself, as it ran. */
void adv_predict_idle(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s)
{
    derive_work(f, s, v->cls, &v->work);
    v->work.current_s = f->wall_s;
    v->candidates[0] = (struct prof_candidate){.model = PROF_MODEL_SEQUENTIAL, .workers = 1, .seconds = f->wall_s, .speedup = 1.0};
    v->ncandidates = 1;
    v->model = PROF_MODEL_SEQUENTIAL;
    v->workers = 1;
    v->predicted_speedup = 1.0;
}

/* The work, the measured configuration's time in the same model (every speedup is over it), and
 * whether the program runs its own event loop. */
int adv_predict_work(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s)
{
    double th = f->thread_s > TINY_S ? f->thread_s : TINY_S;
    struct prof_work *k = &v->work;
    derive_work(f, s, v->cls, k);
    k->current_s = predict_seconds(k, s->c, k->current_model, k->current_workers);
    if (k->current_s <= TINY_S)
        k->current_s = f->wall_s > TINY_S ? f->wall_s : TINY_S;
    /* A program that waits in its own event loop; a pool dispatcher's poll thread is not one. */
    int evloop = k->wait_s > 0 && !f->pool_dispatcher && k->current_model != PROF_MODEL_PROCESSES &&
                 f->evloop_wait_s / th >= EVLOOP_SHARE_MIN;
    /* A loop that overlaps its requests blocks little, and may feed a child (the server it started). */
    return evloop || k->current_model == PROF_MODEL_ASYNC;
}

/* The candidates, each at the count its own formula gives, the pick, and why. */
void adv_predict(struct prof_verdict *v, const struct prof_stage_figures *f, const struct split *s,
                 const struct io_pool *io, int nproc, int nthr, int evloop)
{
    struct prof_work *k = &v->work;
    add_candidate(v, k, s->c, PROF_MODEL_SEQUENTIAL, 1);
    if (k->current_model == PROF_MODEL_ASYNC) {
        /*
         * An event loop that already overlaps its requests (issue 25, class 4): a pool of a few
         * threads or processes would cut the concurrency it achieved to their count. Async stays,
         * at that concurrency or the I/O pool's if higher; the CPU part is split over processes,
         * each running a loop as large (hybrid), only when it saturates the loop: CPU demand in
         * the cpu-bound class, where more concurrency finds no idle CPU time to fill.
         */
        int n = io->workers > k->current_workers ? io->workers : k->current_workers;
        add_candidate(v, k, s->c, PROF_MODEL_THREADS, v->cls == PROF_CLASS_CPU ? s->c : nthr);
        add_candidate(v, k, s->c, PROF_MODEL_PROCESSES, nproc);
        add_candidate(v, k, s->c, PROF_MODEL_ASYNC, n);
        if (v->cls == PROF_CLASS_CPU)
            add_candidate(v, k, s->c, PROF_MODEL_HYBRID, n);
    } else if (v->cls == PROF_CLASS_CPU) {
        add_candidate(v, k, s->c, PROF_MODEL_THREADS, s->c);
        add_candidate(v, k, s->c, PROF_MODEL_PROCESSES, nproc);
    } else {
        add_candidate(v, k, s->c, PROF_MODEL_THREADS, nthr);
        /* A process pool is sized for the CPU part: processes by the dozen to wait on I/O would
         * each carry an interpreter's memory for a wait a thread does as well. */
        add_candidate(v, k, s->c, PROF_MODEL_PROCESSES, nproc);
        if (io->model == PROF_MODEL_ASYNC || evloop)
            add_candidate(v, k, s->c, PROF_MODEL_ASYNC, io->workers);
        if (v->cls == PROF_CLASS_MIXED)
            add_candidate(v, k, s->c, PROF_MODEL_HYBRID, io->workers);
    }
    /* A pool paced by its dispatcher's per-message cost: the same pool, its tasks batched. */
    int chunk = k->current_model == PROF_MODEL_PROCESSES ? chunk_for(k, nproc < s->c ? nproc : s->c) : 0;
    if (chunk) {
        struct prof_work kc = *k;
        kc.chunk = chunk;
        add_candidate(v, &kc, s->c, PROF_MODEL_PROCESSES, nproc);
    }
    /* A pipeline of programs already runs on processes: a tie goes to more of them. */
    enum prof_model uses = k->current_model == PROF_MODEL_SEQUENTIAL && f->pipeline ? PROF_MODEL_PROCESSES : k->current_model;
    int best, pick = choose(v, evloop, uses, &best);
    v->model = v->candidates[pick].model;
    v->workers = v->candidates[pick].workers;
    v->chunksize = v->candidates[pick].chunksize;
    v->predicted_speedup = v->candidates[pick].speedup;
    prediction_reasons(v, f, s, pick, best);
    fork_fault_reason(v, s, pick, evloop, uses);
}
