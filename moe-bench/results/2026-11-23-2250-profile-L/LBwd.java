package io.github.moe4j.cpu;
import io.github.moe4j.api.*;
import io.github.moe4j.bench.BenchConfigs;
import dev.ludovic.netlib.blas.BLAS;
import java.util.*;
public class LBwd {
  static double time(Runnable r, int reps) { r.run(); double[] t=new double[reps]; for(int i=0;i<reps;i++){long s=System.nanoTime(); r.run(); t[i]=(System.nanoTime()-s)/1e6;} Arrays.sort(t); return t[reps/2]; }
  public static void main(String[] a) throws Exception {
    System.setProperty(CpuBackend.THREADS_PROPERTY, "1");
    BenchConfigs.Shape s = BenchConfigs.shape(a[0]); int reps = Integer.parseInt(a[1]);
    MoeBackend be = MoeBackends.open("cpu");
    MoeLayer layer = be.createLayer(s.config(), BenchConfigs.weights(s));
    Tensor x = BenchConfigs.input(s); Tensor dy = BenchConfigs.outputGradient(s);
    int T = s.tokens(), d = s.modelDim(), h = s.hiddenDim(), e = s.experts();
    double fwdbwd = time(() -> { try (MoeForward f = layer.forward(x, BenchConfigs.training())) { layer.backward(f, dy, Set.of()); } }, reps);
    double fwdTrain = time(() -> { try (MoeForward f = layer.forward(x, BenchConfigs.training())) { } }, reps);
    System.out.printf("fwdbwd %.1f ms, training forward %.1f ms%n", fwdbwd, fwdTrain);
    CpuLayer cl = (CpuLayer) layer;
    Dispatch dis = Dispatch.of(cl.router().forward(x.toArray(), T, ForwardOptions.inference()).routing(), e);
    int rows = dis.rows();
    RowMajorGemm g = new RowMajorGemm(BLAS.getInstance());
    Random r = new Random(1);
    float[] W1 = rnd(r, e*d*h), W3 = rnd(r, e*d*h), W2 = rnd(r, e*h*d);
    float[] X = rnd(r, rows*d), F = rnd(r, rows*d), A = rnd(r, rows*h), B = rnd(r, rows*h), H = rnd(r, rows*h);
    float[] gW = new float[e*d*h];
    double unit = 2.0*rows*d*h/1e9;
    for (int rb : new int[]{1024, 100000}) {
      int[][] blocks = dis.rowBlocks(rb);
      double dh = time(() -> { for (int[] b : blocks) g.gemm(false,true,b[2],h,d,1f,F,b[1]*d,d,W2,b[0]*h*d,d,0f,H,b[1]*h,h); }, reps);
      double dx = time(() -> { for (int[] b : blocks) { g.gemm(false,true,b[2],d,h,1f,A,b[1]*h,h,W1,b[0]*d*h,h,0f,F,b[1]*d,d); g.gemm(false,true,b[2],d,h,1f,B,b[1]*h,h,W3,b[0]*d*h,h,1f,F,b[1]*d,d);} }, reps);
      double up = time(() -> { for (int[] b : blocks) { g.gemm(false,false,b[2],h,d,1f,X,b[1]*d,d,W1,b[0]*d*h,h,0f,A,b[1]*h,h); g.gemm(false,false,b[2],h,d,1f,X,b[1]*d,d,W3,b[0]*d*h,h,0f,B,b[1]*h,h);} }, reps);
      double down = time(() -> { for (int[] b : blocks) g.gemm(false,false,b[2],d,h,1f,H,b[1]*h,h,W2,b[0]*h*d,d,0f,F,b[1]*d,d); }, reps);
      System.out.printf("rowblock %d: fwd up %.0f ms (%.0f GF/s), fwd down %.0f (%.0f), dHidden %.0f (%.0f), dX %.0f (%.0f)%n", rb, up, 2*unit/up*1e3, down, unit/down*1e3, dh, unit/dh*1e3, dx, 2*unit/dx*1e3);
    }
    for (int cb : new int[]{256, 1024, 2048, 4096}) {
      int hB = (h + cb - 1)/cb, dB = (d + cb - 1)/cb;
      double wout = time(() -> { for (int ex=0; ex<e; ex++) for (int c=0;c<dB;c++){ int r0=dis.rowStart()[ex], n=dis.rowStart()[ex+1]-r0, c0=c*cb;
          g.gemm(true,false,h,Math.min(cb,d-c0),n,1f,H,r0*h,h,F,r0*d+c0,d,0f,gW,ex*h*d+c0,d);} }, reps);
      double win = time(() -> { for (int ex=0; ex<e; ex++) for (int gate=0; gate<2; gate++) for (int c=0;c<hB;c++){ int r0=dis.rowStart()[ex], n=dis.rowStart()[ex+1]-r0, c0=c*cb;
          g.gemm(true,false,d,Math.min(cb,h-c0),n,1f,X,r0*d,d,gate==1?B:A,r0*h+c0,h,0f,gW,ex*d*h+c0,h);} }, reps);
      System.out.printf("colblock %d: dWout %.0f ms (%.0f GF/s), dWin+dWgate %.0f ms (%.0f GF/s)%n", cb, wout, unit/wout*1e3, win, 2*unit/win*1e3);
    }
    layer.close(); be.close();
  }
  static float[] rnd(Random r, int n) { float[] v = new float[n]; for (int i=0;i<n;i++) v[i]=(float)(r.nextGaussian()*0.05); return v; }
}
