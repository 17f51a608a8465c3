package io.github.moe4j.api;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/** Finds the backends on the class path through {@link ServiceLoader}. */
public final class MoeBackends {
    private MoeBackends() {}

    /** One provider and what it says about this machine. */
    public record Description(String name, int priority, Availability availability) {}

    /** Every provider on the class path, highest priority first (ties by name). */
    public static List<MoeBackendProvider> providers() {
        List<MoeBackendProvider> list = new ArrayList<>();
        for (MoeBackendProvider p : ServiceLoader.load(MoeBackendProvider.class, MoeBackends.class.getClassLoader())) {
            list.add(p);
        }
        list.sort(Comparator.comparingInt(MoeBackendProvider::priority).reversed().thenComparing(MoeBackendProvider::name));
        return list;
    }

    /** Every provider with its availability and reason, highest priority first. */
    public static List<Description> describe() {
        List<Description> out = new ArrayList<>();
        for (MoeBackendProvider p : providers()) {
            out.add(new Description(p.name(), p.priority(), p.availability()));
        }
        return out;
    }

    /**
     * Opens the available backend with the highest priority.
     *
     * @throws MoeBackendException if no backend is available, listing every provider's reason
     */
    public static MoeBackend best() {
        StringBuilder reasons = new StringBuilder();
        for (MoeBackendProvider p : providers()) {
            Availability a = p.availability();
            if (a.available()) {
                return p.open();
            }
            reasons.append("\n  ").append(p.name()).append(": ").append(a.reason());
        }
        throw new MoeBackendException("no moe4j backend is available" + (reasons.length() == 0
                ? " (none on the class path; Hint: add moe-reference)" : ":" + reasons));
    }

    /**
     * Opens the backend of that name.
     *
     * @throws IllegalArgumentException if no provider has that name, listing the names there are
     * @throws MoeBackendException      if it is not available, with its reason
     */
    public static MoeBackend open(String name) {
        List<String> names = new ArrayList<>();
        for (MoeBackendProvider p : providers()) {
            if (p.name().equals(name)) {
                Availability a = p.availability();
                if (!a.available()) {
                    throw new MoeBackendException("backend '" + name + "' is not available: " + a.reason());
                }
                return p.open();
            }
            names.add(p.name());
        }
        throw new IllegalArgumentException("no backend named '" + name + "' on the class path; found " + names);
    }
}
