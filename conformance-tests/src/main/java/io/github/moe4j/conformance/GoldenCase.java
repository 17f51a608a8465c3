package io.github.moe4j.conformance;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;

/**
 * One golden case shipped in this jar under {@code io/github/moe4j/conformance/golden/<id>/}: its
 * manifest ({@code case.properties}) and its tensors, raw little-endian float64, row-major. The
 * files are written by {@code scripts/refresh-golden.py}, which writes the same files to the
 * reference's test resources; each case holds numbers produced by running a public MoE
 * implementation (the manifest names its repository, file, version and functions).
 */
public final class GoldenCase {
    private static final String ROOT = "io/github/moe4j/conformance/golden/";

    private final String id;
    private final Properties manifest;

    private GoldenCase(String id, Properties manifest) {
        this.id = id;
        this.manifest = manifest;
    }

    /** The ids listed in {@code golden/index.txt}. */
    public static List<String> ids() {
        List<String> ids = new ArrayList<>();
        for (String line : new String(read(ROOT + "index.txt"), StandardCharsets.UTF_8).split("\n")) {
            if (!line.isBlank()) {
                ids.add(line.trim());
            }
        }
        return ids;
    }

    /** The case of that id. */
    public static GoldenCase load(String id) {
        Properties p = new Properties();
        try (InputStream in = resource(ROOT + id + "/case.properties")) {
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new GoldenCase(id, p);
    }

    private static InputStream resource(String path) {
        InputStream in = GoldenCase.class.getClassLoader().getResourceAsStream(path);
        if (in == null) {
            throw new IllegalStateException("resource " + path + " is missing from the conformance jar (Hint: scripts/refresh-golden.py writes it)");
        }
        return in;
    }

    private static byte[] read(String path) {
        try (InputStream in = resource(path)) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The case id, e.g. {@code hf-switch-01}. */
    public String id() {
        return id;
    }

    /** The implementation prefix, e.g. {@code hf-switch}. */
    public String implementation() {
        return require("implementation");
    }

    /** The source the numbers come from: repository, path and version of the first source. */
    public String provenance() {
        return require("source.0.repo") + " " + require("source.0.path") + " (" + require("source.0.version") + ")";
    }

    /** Whether the case stores that tensor. */
    public boolean has(String tensor) {
        return manifest.containsKey("tensor." + tensor + ".shape");
    }

    /** The shape of a stored tensor. */
    public int[] shape(String tensor) {
        String s = require("tensor." + tensor + ".shape");
        return s.isEmpty() ? new int[0] : Arrays.stream(s.split(",")).mapToInt(Integer::parseInt).toArray();
    }

    /** A stored tensor's values, row-major; its length is checked against the manifest's shape. */
    public double[] tensor(String name) {
        byte[] bytes = read(ROOT + id + "/" + name + ".f64");
        double[] v = new double[bytes.length / 8];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(v);
        int expected = Arrays.stream(shape(name)).reduce(1, (a, b) -> a * b);
        if (v.length != expected) {
            throw new IllegalStateException(id + "/" + name + " has " + v.length + " values, its manifest shape " + expected);
        }
        return v;
    }

    /** A hyperparameter as text. */
    public String hp(String name) {
        return require("hp." + name);
    }

    /** A hyperparameter as an int. */
    public int hpInt(String name) {
        return Integer.parseInt(hp(name));
    }

    /** A hyperparameter as a double. */
    public double hpDouble(String name) {
        return Double.parseDouble(hp(name));
    }

    /** A hyperparameter as a boolean. */
    public boolean hpBool(String name) {
        return Boolean.parseBoolean(hp(name));
    }

    /** The case's suggested relative tolerance (for a double-precision implementation). */
    public double rtol() {
        return Double.parseDouble(require("tolerance.rtol"));
    }

    /** The case's suggested absolute tolerance (for a double-precision implementation). */
    public double atol() {
        return Double.parseDouble(require("tolerance.atol"));
    }

    /** The names of the stored tensors with that role (input, weight, noise, output, derived, gradient). */
    public java.util.SortedSet<String> tensorsWithRole(String role) {
        java.util.SortedSet<String> names = new java.util.TreeSet<>();
        for (String key : manifest.stringPropertyNames()) {
            if (key.startsWith("tensor.") && key.endsWith(".role") && manifest.getProperty(key).equals(role)) {
                names.add(key.substring("tensor.".length(), key.length() - ".role".length()));
            }
        }
        return names;
    }

    private String require(String key) {
        String v = manifest.getProperty(key);
        if (v == null) {
            throw new IllegalStateException(id + "/case.properties has no " + key);
        }
        return v;
    }

    @Override
    public String toString() {
        return id;
    }
}
