package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;
import java.lang.reflect.AnnotatedElement;
import java.util.Optional;
import net.jqwik.api.lifecycle.AfterContainerHook;
import net.jqwik.api.lifecycle.AroundPropertyHook;
import net.jqwik.api.lifecycle.ContainerLifecycleContext;
import net.jqwik.api.lifecycle.LifecycleContext;
import net.jqwik.api.lifecycle.PropertyExecutionResult;
import net.jqwik.api.lifecycle.PropertyExecutor;
import net.jqwik.api.lifecycle.PropertyLifecycleContext;
import net.jqwik.api.lifecycle.SkipExecutionHook;

/**
 * The suite's jqwik lifecycle hook, registered by {@link BackendContract}:
 * <ul>
 * <li>skips a container whose backend is unavailable ({@link BackendUnavailableException}), with
 *     the provider's reason as the skip reason and printed to standard output;</li>
 * <li>caps each property's tries at {@link BackendContract#maxTries()};</li>
 * <li>after the container, prints the {@link Coverage} matrix and closes the backend.</li>
 * </ul>
 */
public final class ConformanceHook implements SkipExecutionHook, AroundPropertyHook, AfterContainerHook {

    /** For jqwik. */
    public ConformanceHook() {}

    @Override
    public SkipResult shouldBeSkipped(LifecycleContext context) {
        Optional<AnnotatedElement> element = context.optionalElement();
        if (element.isEmpty() || !(element.get() instanceof Class<?> container) || !BackendContract.class.isAssignableFrom(container)
                || container.isInterface()) {
            return SkipResult.doNotSkip();
        }
        BackendContract contract = (BackendContract) context.newInstance(container);
        try {
            MoeBackend b = Suite.open(contract);
            System.out.println("[moe4j conformance] " + container.getSimpleName() + ": certifying backend '" + b.name() + "' on "
                    + b.device() + " with " + contract.tolerances());
        } catch (BackendUnavailableException e) {
            String reason = "SKIPPED: " + e.getMessage();
            System.out.println("[moe4j conformance] " + container.getSimpleName() + ": " + reason);
            return SkipResult.skip(reason);
        }
        return SkipResult.doNotSkip();
    }

    @Override
    public PropertyExecutionResult aroundProperty(PropertyLifecycleContext context, PropertyExecutor property) {
        if (context.testInstance() instanceof BackendContract contract) {
            int max = contract.maxTries();
            context.attributes().tries().ifPresent(t -> context.attributes().setTries(Math.max(1, Math.min(t, max))));
        }
        return property.execute();
    }

    @Override
    public int aroundPropertyProximity() {
        return -100; // outside jqwik's own hooks, so the changed tries are seen
    }

    @Override
    public void afterContainer(ContainerLifecycleContext context) {
        Optional<Class<?>> container = context.optionalContainerClass();
        if (container.isEmpty() || container.get().isInterface() || !BackendContract.class.isAssignableFrom(container.get())) {
            return;
        }
        String prefix = container.get().getName() + " / ";
        boolean print = ((BackendContract) context.newInstance(container.get())).printCoverage();
        for (String scope : Coverage.scopes()) {
            if (scope.startsWith(prefix)) {
                if (print) {
                    System.out.println(Coverage.report(scope));
                }
                Coverage.clear(scope);
            }
        }
        Suite.release(container.get());
    }
}
