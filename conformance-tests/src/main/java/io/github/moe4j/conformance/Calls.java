package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Routing;

/** One backend call of a case: the layer and its forward result, closed together. */
final class Calls implements AutoCloseable {
    final MoeLayer layer;
    final MoeForward forward;
    final Routing routing;

    private Calls(MoeLayer layer, MoeForward forward) {
        this.layer = layer;
        this.forward = forward;
        this.routing = forward.routing();
    }

    /** Creates the layer and runs forward; checks the output's shape and that routing and losses are there. */
    static Calls forward(MoeBackend backend, MoeCase c) {
        MoeLayer layer = backend.createLayer(c.config(), c.weights());
        MoeForward f;
        try {
            f = layer.forward(c.input(), c.options());
        } catch (RuntimeException e) {
            layer.close();
            throw e;
        }
        Calls calls = new Calls(layer, f);
        Compare.shape("output", new int[] {c.tokens(), c.config().modelDim()}, f.output(), c);
        if (calls.routing == null || f.losses() == null) {
            calls.close();
            throw Compare.failure("forward returned routing " + calls.routing + " and losses " + f.losses() + "; neither may be null", c);
        }
        return calls;
    }

    @Override
    public void close() {
        try {
            forward.close();
        } finally {
            layer.close();
        }
    }
}
