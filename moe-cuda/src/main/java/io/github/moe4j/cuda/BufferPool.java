package io.github.moe4j.cuda;

import java.util.ArrayDeque;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Scratch device memory for forward calls, pooled: a released buffer is kept (by size class, a
 * power of two of at least 256 bytes) and handed out again, so steady-state calls allocate nothing.
 * {@link #close()} frees every buffer the pool ever allocated, released or not. Not thread-safe (the
 * backend serialises device work).
 */
final class BufferPool implements AutoCloseable {
    private static final long MIN_CLASS = 256;

    private final DeviceRuntime runtime;
    private final Map<Long, ArrayDeque<DeviceBuffer>> free = new HashMap<>();
    private final Set<DeviceBuffer> owned = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Set<DeviceBuffer> inUse = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    BufferPool(DeviceRuntime runtime) {
        this.runtime = runtime;
    }

    /** A buffer of at least {@code bytes} bytes. */
    DeviceBuffer acquire(long bytes) {
        if (closed) {
            throw new IllegalStateException("the buffer pool is closed");
        }
        long size = sizeClass(bytes);
        ArrayDeque<DeviceBuffer> list = free.get(size);
        DeviceBuffer b = list == null ? null : list.poll();
        if (b == null) {
            b = runtime.allocate(size);
            owned.add(b);
        }
        inUse.add(b);
        return b;
    }

    /** Gives a buffer back for reuse. */
    void release(DeviceBuffer b) {
        if (!inUse.remove(b)) {
            throw new IllegalStateException("buffer released twice or not from this pool");
        }
        free.computeIfAbsent(b.bytes(), s -> new ArrayDeque<>()).push(b);
    }

    /** Buffers handed out and not released. */
    int inUse() {
        return inUse.size();
    }

    /** Buffers allocated from the runtime and held by the pool (in use or free). */
    int held() {
        return owned.size();
    }

    static long sizeClass(long bytes) {
        long size = MIN_CLASS;
        while (size < bytes) {
            size <<= 1;
        }
        return size;
    }

    /** Frees every buffer the pool allocated; closing twice is harmless. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException first = null;
        for (DeviceBuffer b : owned) {
            try {
                runtime.free(b);
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        owned.clear();
        inUse.clear();
        free.clear();
        if (first != null) {
            throw first;
        }
    }
}
