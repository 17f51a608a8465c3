package io.github.moe4j.cpu;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * A fixed pool of worker threads that runs loops of independent tasks (the reference runs the same
 * loops sequentially). A task's work never depends on which thread runs it or how many threads
 * there are, so results are bit-identical for any thread count: every loop over rows, tokens or
 * weight columns is cut into tasks by a fixed size, not by the number of threads.
 */
final class Workers implements AutoCloseable {
    private final int threads;
    private final ExecutorService pool;

    /** A pool of {@code threads} threads (the calling thread is one of them). */
    Workers(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads = " + threads + " must be at least 1");
        }
        this.threads = threads;
        AtomicInteger n = new AtomicInteger();
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "moe-cpu-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /** The number of threads, the caller's included. */
    int threads() {
        return threads;
    }

    /** Runs {@code body(i)} for every i in [0, tasks), spread over the pool; returns when all are done. */
    void forEach(int tasks, IntConsumer body) {
        forEach(tasks, (worker, task) -> body.accept(task));
    }

    /** A task that is told which worker runs it, in [0, {@link #threads()}), to use that worker's scratch memory. */
    @FunctionalInterface
    interface WorkerTask {
        void run(int worker, int task);
    }

    /**
     * Runs {@code body(worker, i)} for every i in [0, tasks), spread over the pool; returns when all
     * are done. No two tasks run at the same time with the same worker index.
     */
    void forEach(int tasks, WorkerTask body) {
        if (tasks <= 0) {
            return;
        }
        if (pool == null || tasks == 1) {
            for (int i = 0; i < tasks; i++) {
                body.run(0, i);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        IntConsumer worker = w -> {
            for (int i = next.getAndIncrement(); i < tasks; i = next.getAndIncrement()) {
                body.run(w, i);
            }
        };
        int helpers = Math.min(threads - 1, tasks - 1);
        List<Future<?>> futures = new ArrayList<>(helpers);
        for (int h = 1; h <= helpers; h++) {
            int w = h;
            futures.add(pool.submit(() -> worker.accept(w)));
        }
        RuntimeException failure = null;
        try {
            worker.accept(0);
        } catch (RuntimeException | Error e) {
            next.set(tasks);
            failure = e instanceof RuntimeException re ? re : new IllegalStateException(e);
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (failure == null) {
                    failure = e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure = new IllegalStateException("interrupted while waiting for moe-cpu workers", e);
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
