package io.github.moe4j.bench;
import io.github.moe4j.api.*;
import io.github.moe4j.cpu.CpuBackend;
public class GcSlow {
  public static void main(String[] args) {
    BenchConfigs.Shape s = BenchConfigs.shape(args[0]);
    CpuBackend backend = new CpuBackend(1);
    MoeLayer layer = backend.createLayer(s.config(), BenchConfigs.weights(s));
    Tensor input = BenchConfigs.input(s);
    int n = Integer.parseInt(args[1]);
    for (int phase = 0; phase < Integer.parseInt(args[2]); phase++) {
      long t0 = System.nanoTime();
      for (int i = 0; i < n; i++) {
        try (MoeForward f = layer.forward(input, BenchConfigs.inference())) { if (f.output().dim(0) < 0) throw new AssertionError(); }
      }
      System.out.printf("phase %d: %.3f ms per call%n", phase, (System.nanoTime() - t0) / 1e6 / n);
      
    }
  }
}
