package io.github.moe4j.cpu;
import dev.ludovic.netlib.blas.BLAS;
import java.util.*;
/** A SwiGLU expert's forward GEMMs over E experts of `rows` rows each: in, gate and out apart (NN), in|gate fused (NN, n = 2h), and torch's [out, in] layout (NT). */
public class FusedGemm {
  public static void main(String[] args) {
    int e = Integer.parseInt(args[0]), rows = Integer.parseInt(args[1]), d = Integer.parseInt(args[2]), h = Integer.parseInt(args[3]);
    RowMajorGemm g = new RowMajorGemm(BLAS.getInstance());
    Random r = new Random(1);
    float[] x = new float[rows*d], wIn = new float[e*d*h], wGate = new float[e*d*h], wOut = new float[e*h*d], wFused = new float[e*d*2*h];
    float[] a = new float[rows*2*h], b = new float[rows*h], f = new float[rows*d];
    for (int i=0;i<x.length;i++) x[i]=(float)r.nextGaussian();
    for (int i=0;i<wIn.length;i++) { wIn[i]=(float)r.nextGaussian(); wGate[i]=(float)r.nextGaussian(); wOut[i]=(float)r.nextGaussian(); }
    for (int i=0;i<wFused.length;i++) wFused[i]=(float)r.nextGaussian();
    double fl = 3 * 2.0*rows*d*h*e/1e6;
    for (int round = 0; round < 6; round++) {
      long s = System.nanoTime();
      for (int ex = 0; ex < e; ex++) {
        g.gemm(false,false,rows,h,d,1f,x,0,d,wIn,ex*d*h,h,0f,a,0,h);
        g.gemm(false,false,rows,h,d,1f,x,0,d,wGate,ex*d*h,h,0f,b,0,h);
        g.gemm(false,false,rows,d,h,1f,a,0,h,wOut,ex*h*d,d,0f,f,0,d);
      }
      long t0 = System.nanoTime() - s; s = System.nanoTime();
      for (int ex = 0; ex < e; ex++) {
        g.gemm(false,false,rows,2*h,d,1f,x,0,d,wFused,ex*d*2*h,2*h,0f,a,0,2*h);
        g.gemm(false,false,rows,d,h,1f,b,0,h,wOut,ex*h*d,d,0f,f,0,d);
      }
      long t1 = System.nanoTime() - s; s = System.nanoTime();
      for (int ex = 0; ex < e; ex++) {
        g.gemm(false,true,rows,h,d,1f,x,0,d,wIn,ex*d*h,d,0f,a,0,h);
        g.gemm(false,true,rows,h,d,1f,x,0,d,wGate,ex*d*h,d,0f,b,0,h);
        g.gemm(false,true,rows,d,h,1f,a,0,h,wOut,ex*h*d,h,0f,f,0,d);
      }
      long t2 = System.nanoTime() - s;
      System.out.printf("round %d E=%d rows=%d d=%d h=%d: apart NN %.1f GF/s, fused NN %.1f GF/s (%.3f), NT %.1f GF/s (%.3f)%n", round, e, rows, d, h,
        fl/(t0/1e6), fl/(t1/1e6), (double)t0/t1, fl/(t2/1e6), (double)t0/t2);
    }
  }
}
