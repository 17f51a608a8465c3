package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeBackendException;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Device memory on every path, counted in the runtime: weights stay resident, scratch is pooled,
 * and nothing is left allocated after close, after a device error at any launch of a forward,
 * after a failed upload, or after a non-finite logit. Runs on the JOCL test runtime.
 */
class DeviceMemoryTest {
    private static final MoeConfig CONFIG = MoeConfig.builder().modelDim(12).hiddenDim(10).experts(4)
            .activation(Activation.SWIGLU).router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.factor(1.0))
            .expertBias(true).routerBias(true).losses(LossWeights.of().aux(0.01).z(0.01)).build();
    private static final MoeWeights WEIGHTS = MoeWeights.random(CONFIG, 4);
    private static final Tensor INPUT = PoclForwardTest.randomInput(15, 12, 8);

    @BeforeEach
    void requireOpenCl() {
        if (OpenClRuntime.unavailableReason() != null) {
            PoclSupport.assumeOpen(PoclSupport.openBackend());
        }
    }

    private static FaultyRuntime faulty() {
        return new FaultyRuntime(OpenClRuntime.open());
    }

    /** Weights are allocated once per layer; a second forward reuses the pool and allocates nothing. */
    @Test
    void weightsAreResidentAndScratchIsPooled() {
        FaultyRuntime rt = faulty();
        CudaBackend backend = new CudaBackend(rt);
        try (MoeLayer layer = backend.createLayer(CONFIG, WEIGHTS)) {
            assertEquals(7, rt.liveAllocations(), "router, routerBias, wIn, wGate, wOut, bIn, bOut");
            layer.forward(INPUT, ForwardOptions.inference()).close();
            int afterFirst = rt.liveAllocations();
            assertTrue(afterFirst > 7, "the first forward should have allocated scratch");
            assertEquals(0, backend.pool().inUse());
            layer.forward(INPUT, ForwardOptions.inference()).close();
            assertEquals(afterFirst, rt.liveAllocations(), "the second forward allocated instead of reusing the pool");
        }
        assertEquals(backend.pool().held(), rt.liveAllocations(), "closing the layer must free its weights");
        backend.close();
        assertEquals(0, rt.liveAllocations(), "allocations left after the backend closed");
        backend.close();
    }

    /** A device error at any launch of a forward surfaces as MoeBackendException and leaks nothing. */
    @Test
    void aDeviceErrorAtAnyLaunchLeaksNothing() {
        FaultyRuntime rt = faulty();
        CudaBackend backend = new CudaBackend(rt);
        MoeLayer layer = backend.createLayer(CONFIG, WEIGHTS);
        rt.failLaunch(0);
        float[] expected = layer.forward(INPUT, ForwardOptions.inference()).output().toArray();
        int launches = rt.launches();
        assertTrue(launches >= 15, "a forward made only " + launches + " launches");
        for (int n = 1; n <= launches; n++) {
            rt.failLaunch(n);
            int at = n;
            MoeBackendException e = assertThrows(MoeBackendException.class, () -> layer.forward(INPUT, ForwardOptions.inference()),
                    "failure injected at launch " + at);
            assertTrue(e.getMessage().contains("CL_OUT_OF_RESOURCES"), e.getMessage());
            assertEquals(0, backend.pool().inUse(), "scratch still borrowed after a failure at launch " + n);
        }
        rt.failLaunch(0);
        assertTrue(Arrays.equals(expected, layer.forward(INPUT, ForwardOptions.inference()).output().toArray()),
                "the layer does not work after recovered failures");
        backend.close();
        assertEquals(0, rt.liveAllocations(), "allocations left after failures and close");
    }

    /** A device error at any launch of a backward surfaces as MoeBackendException, leaks nothing, and the layer recovers. */
    @Test
    void aDeviceErrorAtAnyBackwardLaunchLeaksNothing() {
        FaultyRuntime rt = faulty();
        CudaBackend backend = new CudaBackend(rt);
        MoeLayer layer = backend.createLayer(CONFIG, WEIGHTS);
        rt.failLaunch(0);
        try (io.github.moe4j.api.MoeForward f = layer.forward(INPUT, ForwardOptions.inference())) {
            rt.failLaunch(0);
            float[] expected = layer.backward(f, INPUT, java.util.Set.of()).wIn().toArray();
            int launches = rt.launches();
            assertTrue(launches >= 25, "a backward made only " + launches + " launches");
            for (int n = 1; n <= launches; n++) {
                rt.failLaunch(n);
                int at = n;
                MoeBackendException e = assertThrows(MoeBackendException.class, () -> layer.backward(f, INPUT, java.util.Set.of()),
                        "failure injected at backward launch " + at);
                assertTrue(e.getMessage().contains("CL_OUT_OF_RESOURCES"), e.getMessage());
                assertEquals(0, backend.pool().inUse(), "scratch still borrowed after a failure at backward launch " + n);
            }
            rt.failLaunch(0);
            assertTrue(Arrays.equals(expected, layer.backward(f, INPUT, java.util.Set.of()).wIn().toArray()),
                    "the layer does not work after recovered failures");
        }
        backend.close();
        assertEquals(0, rt.liveAllocations(), "allocations left after failures and close");
    }

    /** A failed weight upload frees what was uploaded; a failed scratch allocation frees the rest. */
    @Test
    void aFailedAllocationLeaksNothing() {
        FaultyRuntime rt = faulty();
        CudaBackend backend = new CudaBackend(rt);
        rt.failAllocation(4);
        assertThrows(MoeBackendException.class, () -> backend.createLayer(CONFIG, WEIGHTS));
        assertEquals(0, rt.liveAllocations(), "a failed upload left weights behind");
        rt.failAllocation(0);
        MoeLayer layer = backend.createLayer(CONFIG, WEIGHTS);
        rt.failAllocation(10);
        assertThrows(MoeBackendException.class, () -> layer.forward(INPUT, ForwardOptions.inference()));
        assertEquals(0, backend.pool().inUse());
        backend.close();
        assertEquals(0, rt.liveAllocations());
    }

    /** A logit that overflows float32 is a NonFiniteException naming the router logits, and leaks nothing. */
    @Test
    void anOverflowingLogitIsNamedAndLeaksNothing() {
        FaultyRuntime rt = faulty();
        CudaBackend backend = new CudaBackend(rt);
        MoeConfig config = MoeConfig.builder().modelDim(4).hiddenDim(4).experts(3).router(TokenChoiceRouterConfig.topK(1)).build();
        float[] router = new float[12];
        Arrays.fill(router, 1e20f);
        MoeWeights w = new MoeWeights(Tensor.of(router, 4, 3), null, null, MoeWeights.random(config, 1).wIn(), null,
                MoeWeights.random(config, 1).wOut(), null, null);
        float[] x = new float[8];
        Arrays.fill(x, 1e20f);
        try (MoeLayer layer = backend.createLayer(config, w)) {
            NonFiniteException e = assertThrows(NonFiniteException.class, () -> layer.forward(Tensor.of(x, 2, 4), ForwardOptions.inference()));
            assertEquals("router logits", e.tensor());
            assertEquals(0, e.flatIndex());
            assertEquals(0, backend.pool().inUse());
        }
        backend.close();
        assertEquals(0, rt.liveAllocations());
    }

    /** Using a closed layer or backend is an IllegalStateException, not a device crash. */
    @Test
    void closedLayersAndBackendsSayTheyAreClosed() {
        CudaBackend backend = new CudaBackend(faulty());
        MoeLayer layer = backend.createLayer(CONFIG, WEIGHTS);
        layer.close();
        layer.close();
        assertThrows(IllegalStateException.class, () -> layer.forward(INPUT, ForwardOptions.inference()));
        backend.close();
        assertThrows(IllegalStateException.class, () -> backend.createLayer(CONFIG, WEIGHTS));
    }
}
