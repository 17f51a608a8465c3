package io.github.moe4j.cuda;

import io.github.moe4j.api.Checks;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Support;
import java.util.ArrayList;
import java.util.List;

/**
 * The CUDA backend: one device, its kernels, a pool of scratch memory and the layers created on
 * it. Thread-safe by serialising all device work on one lock (the layers it creates are not
 * thread-safe, as {@link MoeLayer} allows). Closing it closes its layers and frees all device
 * memory; closing twice is harmless.
 *
 * <p>Supported, forward and backward: token-choice top-k routing ({@code NONE}, {@code RENORMALIZE} before or
 * after capacity; every capacity mode and priority; groups; padding; jitter; GShard's random second
 * expert) with the aux and z losses; noisy top-k (learned noise or none; importance and smooth-load
 * losses, gradients into W_g, W_noise and the input); expert choice (with the z-loss); every
 * activation, optional biases, {@link io.github.moe4j.api.Freeze}. {@link #supports} declines only
 * weight tensors too large for 32-bit indexing.
 */
public final class CudaBackend implements MoeBackend {
    private final DeviceRuntime runtime;
    private final BufferPool pool;
    private final Object lock = new Object();
    private final List<CudaLayer> layers = new ArrayList<>();
    private boolean closed;

    /** A backend on an opened runtime; it owns the runtime from now on. */
    CudaBackend(DeviceRuntime runtime) {
        this.runtime = Checks.requireNonNull(runtime, "runtime");
        this.pool = new BufferPool(runtime);
    }

    @Override
    public String name() {
        return CudaBackendProvider.NAME;
    }

    @Override
    public String device() {
        return runtime.device() + ", GEMM: " + runtime.gemmImplementation();
    }

    @Override
    public Support supports(MoeConfig config) {
        Checks.requireNonNull(config, "config");
        long weights = (long) config.experts() * config.modelDim() * config.hiddenDim();
        if (weights > Integer.MAX_VALUE) {
            return Support.no("experts * modelDim * hiddenDim = " + weights + " elements per expert weight tensor; "
                    + "the cuda backend indexes with 32-bit ints and supports at most " + Integer.MAX_VALUE);
        }
        return Support.YES;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Uploads the weights to the device once; they stay there until the layer is closed.
     */
    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        Checks.requireNonNull(config, "config");
        Checks.requireNonNull(weights, "weights");
        Support s = supports(config);
        if (!s.supported()) {
            throw new IllegalArgumentException("unsupported configuration: " + s.reason());
        }
        weights.validate(config);
        synchronized (lock) {
            requireOpen();
            CudaLayer layer = new CudaLayer(this, config, weights);
            layers.add(layer);
            return layer;
        }
    }

    DeviceRuntime runtime() {
        return runtime;
    }

    BufferPool pool() {
        return pool;
    }

    Object lock() {
        return lock;
    }

    void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the cuda backend is closed");
        }
    }

    void forget(CudaLayer layer) {
        layers.remove(layer);
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            try {
                for (CudaLayer l : new ArrayList<>(layers)) {
                    l.close();
                }
                pool.close();
            } finally {
                closed = true;
                runtime.close();
            }
        }
    }
}
