package io.github.moe4j.opencl;

import com.aparapi.device.OpenCLDevice;
import io.github.moe4j.api.Checks;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Support;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The OpenCL backend: MoE layers whose kernels are Java methods translated to OpenCL by Aparapi,
 * run on one OpenCL device (a GPU when there is one, else an accelerator, else a CPU device such as
 * PoCL). Every kernel class was compiled for the device when the backend's availability was
 * probed, and every launch is checked to have run in OpenCL, not in Aparapi's Java-thread
 * fallback (research java-gpu.md §2.3): a fallback is a {@link io.github.moe4j.api.MoeBackendException}.
 *
 * <p>Supported: token-choice top-k routing with every gate normalisation and renormalisation
 * timing, capacity (dropless, factor, fixed) with every priority, GShard's random second-expert
 * policy, Switch jitter, routing groups, padding masks, every expert activation, router and expert
 * biases, and the aux and z losses, forward and backward (with {@link io.github.moe4j.api.Freeze}
 * groups skipped), and noisy top-k gating (learned or no noise, the smooth load estimator, the
 * importance and load losses) and expert-choice routing, forward and backward. {@link #supports}
 * declines nothing that moe-api can express today (a router type added later is declined by name).
 *
 * <p>Thread-safe; its layers are not. {@link #close()} disposes every layer's kernels; closing
 * twice is harmless.
 */
public final class OpenClBackend implements MoeBackend {
    private final OpenCLDevice device;
    private final String description;
    private final Set<OpenClLayer> layers = new LinkedHashSet<>();
    private boolean closed;

    OpenClBackend(OpenCLDevice device, String description) {
        this.device = device;
        this.description = description;
    }

    @Override
    public String name() {
        return OpenClBackendProvider.NAME;
    }

    @Override
    public String device() {
        return description;
    }

    @Override
    public Support supports(MoeConfig config) {
        Checks.requireNonNull(config, "config");
        if (!(config.router() instanceof TokenChoiceRouterConfig) && !(config.router() instanceof NoisyTopKRouterConfig)
                && !(config.router() instanceof ExpertChoiceRouterConfig)) {
            return Support.no(config.router().getClass().getSimpleName()
                    + " routing is not implemented on the OpenCL backend (token choice, noisy top-k and expert choice are)."
                    + " Hint: use the reference backend for this router");
        }
        return Support.YES;
    }

    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        Checks.requireNonNull(config, "config");
        Checks.requireNonNull(weights, "weights");
        Support support = supports(config);
        if (!support.supported()) {
            throw new IllegalArgumentException(support.reason());
        }
        weights.validate(config);
        synchronized (layers) {
            if (closed) {
                throw new IllegalStateException("the OpenCL backend is closed");
            }
            OpenClLayer[] holder = new OpenClLayer[1];
            OpenClLayer layer = new OpenClLayer(config, weights, device, description, () -> forget(holder[0]));
            holder[0] = layer;
            layers.add(layer);
            return layer;
        }
    }

    private void forget(OpenClLayer layer) {
        synchronized (layers) {
            layers.remove(layer);
        }
    }

    /** Layers created and not yet closed. */
    int openLayers() {
        synchronized (layers) {
            return layers.size();
        }
    }

    @Override
    public void close() {
        List<OpenClLayer> open;
        synchronized (layers) {
            if (closed) {
                return;
            }
            closed = true;
            open = new ArrayList<>(layers);
        }
        for (OpenClLayer layer : open) {
            layer.close();
        }
    }
}
