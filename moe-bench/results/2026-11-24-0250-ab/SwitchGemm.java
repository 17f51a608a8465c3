package io.github.moe4j.cpu;
import dev.ludovic.netlib.blas.BLAS;
import java.util.*;
/** Expert GEMMs as a layer runs them: E experts with distinct weights, rows each, one after another. */
public class SwitchGemm {
  public static void main(String[] a) {
    int e = Integer.parseInt(a[0]), rows = Integer.parseInt(a[1]), d = Integer.parseInt(a[2]), h = Integer.parseInt(a[3]);
    RowMajorGemm g = new RowMajorGemm(BLAS.getInstance());
    Random r = new Random(1);
    float[] x = new float[rows*d], w1 = new float[e*d*h], w2 = new float[e*h*d], hid = new float[rows*h], f = new float[rows*d];
    for (int i=0;i<x.length;i++) x[i]=(float)r.nextGaussian();
    for (int i=0;i<w1.length;i++) { w1[i]=(float)r.nextGaussian(); w2[i]=(float)r.nextGaussian(); }
    for (int round = 0; round < 8; round++) {
      long t1 = 0, t2 = 0;
      for (int ex = 0; ex < e; ex++) {
        long s = System.nanoTime();
        g.gemm(false,false,rows,h,d,1f,x,0,d,w1,ex*d*h,h,0f,hid,0,h);
        long m = System.nanoTime();
        g.gemm(false,false,rows,d,h,1f,hid,0,h,w2,ex*h*d,d,0f,f,0,d);
        long t = System.nanoTime();
        t1 += m - s; t2 += t - m;
      }
      double fl = 2.0*rows*d*h*e/1e6;
      System.out.printf("round %d E=%d rows=%d d=%d h=%d: up %.1f GF/s (%.2f ms), down %.1f GF/s (%.2f ms)%n", round, e, rows, d, h, fl/(t1/1e6), t1/1e6, fl/(t2/1e6), t2/1e6);
    }
  }
}
