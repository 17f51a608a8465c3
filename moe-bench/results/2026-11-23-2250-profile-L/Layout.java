package io.github.moe4j.cpu;
import dev.ludovic.netlib.blas.BLAS;
import java.util.*;
/** Row-major C[n,h] = X[n,d] W with W stored [d,h] (NN) or [h,d] (NT, as torch's Linear stores it). */
public class Layout {
  static double time(Runnable r, int reps) { r.run(); double[] t=new double[reps]; for(int i=0;i<reps;i++){long s=System.nanoTime(); r.run(); t[i]=(System.nanoTime()-s)/1e6;} Arrays.sort(t); return t[reps/2]; }
  public static void main(String[] a) {
    RowMajorGemm g = new RowMajorGemm(BLAS.getInstance());
    int[][] shapes = {{1024,1024,4096},{1024,4096,1024},{512,512,2048},{512,2048,512},{128,256,1024},{128,1024,256},{64,512,1024},{64,1024,512}};
    Random r = new Random(1);
    for (int round = 0; round < 3; round++) {
      for (int[] s : shapes) {
        int n = s[0], k = s[1], m = s[2];
        float[] x = new float[n*k], w = new float[k*m], c = new float[n*m];
        for (int i=0;i<x.length;i++) x[i]=(float)r.nextGaussian();
        for (int i=0;i<w.length;i++) w[i]=(float)r.nextGaussian();
        int reps = Math.max(5, (int)(2e10 / (2.0*n*k*m)));
        double nn = time(() -> g.gemm(false,false,n,m,k,1f,x,0,k,w,0,m,0f,c,0,m), reps);
        double nt = time(() -> g.gemm(false,true,n,m,k,1f,x,0,k,w,0,k,0f,c,0,m), reps);
        double fl = 2.0*n*k*m/1e6;
        System.out.printf("round %d rows=%d k=%d n=%d: NN %.1f GF/s, NT %.1f GF/s (NT/NN %.3f)%n", round, n, k, m, fl/nn, fl/nt, nn/nt);
      }
    }
  }
}
