package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;

/**
 * The whole contract against the provider named in {@link #provider}; run programmatically by
 * {@link ClassPathBackendsConformanceTest}, never by Surefire directly (its name matches no
 * include pattern).
 */
public class ProviderUnderCertification implements MoeBackendContract {
    /** The provider under test; set before each launch. */
    static volatile String provider;

    @Override
    public MoeBackend backend() {
        return MoeBackendContract.forProvider(provider);
    }
}
