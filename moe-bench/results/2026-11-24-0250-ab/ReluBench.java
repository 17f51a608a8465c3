package io.github.moe4j.cpu;
import io.github.moe4j.api.Activation;
import jdk.incubator.vector.*;
import java.util.*;
public class ReluBench {
  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static void simd(float[] a, float[] h, int from, int to) {
    int i = from;
    FloatVector z = FloatVector.zero(F);
    for (int bound = from + F.loopBound(to - from); i < bound; i += F.length()) {
      FloatVector v = FloatVector.fromArray(F, a, i);
      z.blend(v, v.compare(VectorOperators.GT, 0f)).intoArray(h, i);
    }
    for (; i < to; i++) h[i] = a[i] > 0 ? a[i] : 0f;
  }
  static void bits(float[] a, float[] h, int from, int to) {
    for (int i = from; i < to; i++) {
      float v = a[i];
      int keep = v > 0 ? -1 : 0;
      h[i] = Float.intBitsToFloat(Float.floatToRawIntBits(v) & keep);
    }
  }
  public static void main(String[] x) {
    int n = 128 * 2048;
    Random r = new Random(1);
    float[] src = new float[n]; for (int i = 0; i < n; i++) src[i] = (float) r.nextGaussian();
    float[] a = new float[n];
    for (int round = 0; round < 6; round++) {
      long ts = 0, tv = 0;
      for (int rep = 0; rep < 200; rep++) {
        System.arraycopy(src, 0, a, 0, n);
        long s = System.nanoTime(); ExpertActivation.forwardScalar(Activation.RELU, a, null, a, 0, n); ts += System.nanoTime() - s;
        System.arraycopy(src, 0, a, 0, n);
        s = System.nanoTime(); simd(a, a, 0, n); tv += System.nanoTime() - s;
      }
      long tb = 0;
      for (int rep = 0; rep < 200; rep++) { System.arraycopy(src, 0, a, 0, n); long s = System.nanoTime(); bits(a, a, 0, n); tb += System.nanoTime() - s; }
      System.out.printf("round %d: scalar %.3f ms, simd %.3f ms, bits %.3f ms per 128x2048 block%n", round, ts / 200 / 1e6, tv / 200 / 1e6, tb / 200 / 1e6);
    }
  }
}
