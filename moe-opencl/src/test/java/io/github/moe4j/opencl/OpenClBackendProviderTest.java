package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Availability;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendProvider;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Support;
import io.github.moe4j.api.Tensor;
import org.junit.jupiter.api.Test;

/** The provider, the backend's lifecycle and what it declines. */
class OpenClBackendProviderTest {

    private static MoeConfig small() {
        return MoeConfig.builder().modelDim(6).hiddenDim(5).experts(3).activation(Activation.GELU).build();
    }

    /** ServiceLoader finds the provider by name, and its availability names a platform and a device (or why not). */
    @Test
    void providerIsFoundAndReportsTheDevice() {
        MoeBackendProvider p = MoeBackends.providers().stream().filter(x -> x.name().equals("opencl")).findFirst().orElseThrow();
        Availability a = p.availability();
        System.out.println("[moe-opencl tests] opencl availability: " + a);
        assertFalse(a.reason().isBlank());
        OpenClTestSupport.assumeAvailable();
        assertTrue(a.reason().contains("(") && a.reason().contains("OpenCL"), a.reason());
        try (MoeBackend b = p.open()) {
            assertEquals("opencl", b.name());
            assertEquals(a.reason(), b.device());
        }
    }

    /** Slower than the reference on PoCL and never run on a GPU, the backend ranks below the reference, so best() never picks it. */
    @Test
    void ranksBelowTheReferenceUntilCertified() {
        MoeBackendProvider p = MoeBackends.providers().stream().filter(x -> x.name().equals("opencl")).findFirst().orElseThrow();
        assertTrue(p.priority() < 0, "priority " + p.priority() + " must be below the reference's 0");
    }

    /** Every router moe-api has (token choice, noisy top-k, expert choice) is supported, so createLayer accepts each. */
    @Test
    void everyRouterIsSupported() {
        OpenClBackend b = OpenClTestSupport.backend();
        MoeConfig noisy = small().toBuilder().router(NoisyTopKRouterConfig.of(2)).build();
        MoeConfig expertChoice = small().toBuilder().router(new ExpertChoiceRouterConfig()).capacity(Capacity.factor(1.0)).build();
        for (MoeConfig c : new MoeConfig[] {small(), noisy, expertChoice}) {
            Support s = b.supports(c);
            assertTrue(s.supported(), s.reason());
            assertTrue(s.backward(), "backward is implemented for every router: " + s.reason());
            b.createLayer(c, MoeWeights.random(c, 1)).close();
        }
    }

    /** Closing a layer or a backend twice is harmless; a closed layer refuses work; closing the backend closes its layers. */
    @Test
    void closingIsIdempotentAndReleasesLayers() {
        OpenClTestSupport.assumeAvailable();
        MoeConfig c = small();
        OpenClBackend b = (OpenClBackend) new OpenClBackendProvider().open();
        MoeLayer first = b.createLayer(c, MoeWeights.random(c, 1));
        MoeLayer second = b.createLayer(c, MoeWeights.random(c, 2));
        Tensor x = Tensor.of(new float[] {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6}, 2, 6);
        try (MoeForward f = second.forward(x, ForwardOptions.inference())) {
            assertEquals(2, f.output().dim(0));
        }
        first.close();
        first.close();
        assertEquals(1, b.openLayers());
        assertThrows(IllegalStateException.class, () -> first.forward(x, ForwardOptions.inference()));
        b.close();
        assertEquals(0, b.openLayers());
        assertTrue(((OpenClLayer) second).isClosed());
        b.close();
        assertThrows(IllegalStateException.class, () -> b.createLayer(c, MoeWeights.random(c, 1)));
    }
}
