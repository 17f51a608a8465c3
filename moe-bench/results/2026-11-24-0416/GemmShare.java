package io.github.moe4j.cpu;
import io.github.moe4j.api.*;
import io.github.moe4j.bench.BenchConfigs;
import dev.ludovic.netlib.blas.BLAS;
import java.util.*;
/**
 * How much of moe-cpu's forward and forward+backward (1 thread) is the expert SGEMMs: the layer's
 * calls, timed, against the same SGEMMs alone on random weights of the layer's shapes, on the rows its
 * router dispatched, in its row blocks (CpuLayer.ROW_BLOCK) and weight-gradient column blocks
 * (CpuLayer.COL_BLOCK). Medians of `reps` calls after two untimed ones.
 */
public class GemmShare {
  static double time(Runnable r, int reps) { r.run(); r.run(); double[] t=new double[reps]; for(int i=0;i<reps;i++){long s=System.nanoTime(); r.run(); t[i]=(System.nanoTime()-s)/1e6;} Arrays.sort(t); return t[reps/2]; }
  public static void main(String[] a) throws Exception {
    System.setProperty(CpuBackend.THREADS_PROPERTY, "1");
    BenchConfigs.Shape s = BenchConfigs.shape(a[0]); int reps = Integer.parseInt(a[1]);
    MoeBackend be = MoeBackends.open("cpu");
    MoeLayer layer = be.createLayer(s.config(), BenchConfigs.weights(s));
    Tensor x = BenchConfigs.input(s); Tensor dy = BenchConfigs.outputGradient(s);
    int T = s.tokens(), d = s.modelDim(), h = s.hiddenDim(), e = s.experts();
    boolean gated = s.config().activation().isGated();
    double fwd = time(() -> { try (MoeForward f = layer.forward(x, BenchConfigs.inference())) { } }, reps);
    double fwdbwd = time(() -> { try (MoeForward f = layer.forward(x, BenchConfigs.training())) { layer.backward(f, dy, Set.of()); } }, reps);
    CpuLayer cl = (CpuLayer) layer;
    Dispatch dis = Dispatch.of(cl.router().forward(x.toArray(), T, ForwardOptions.inference()).routing(), e);
    int rows = dis.rows();
    RowMajorGemm g = new RowMajorGemm(BLAS.getInstance());
    Random r = new Random(1);
    float[] W1 = rnd(r, e*d*h), W3 = rnd(r, e*d*h), W2 = rnd(r, e*h*d);
    float[] X = rnd(r, rows*d), F = rnd(r, rows*d), A = rnd(r, rows*h), B = rnd(r, rows*h), H = rnd(r, rows*h);
    float[] gW = new float[e*d*h];
    int[][] blocks = dis.rowBlocks(CpuLayer.ROW_BLOCK);
    int cb = CpuLayer.COL_BLOCK;
    int m = gated ? 2 : 1;
    double up = time(() -> { for (int[] b : blocks) { g.gemm(false,false,b[2],h,d,1f,X,b[1]*d,d,W1,b[0]*d*h,h,0f,A,b[1]*h,h); if (gated) g.gemm(false,false,b[2],h,d,1f,X,b[1]*d,d,W3,b[0]*d*h,h,0f,B,b[1]*h,h);} }, reps);
    double down = time(() -> { for (int[] b : blocks) g.gemm(false,false,b[2],d,h,1f,H,b[1]*h,h,W2,b[0]*h*d,d,0f,F,b[1]*d,d); }, reps);
    double dh = time(() -> { for (int[] b : blocks) g.gemm(false,true,b[2],h,d,1f,F,b[1]*d,d,W2,b[0]*h*d,d,0f,H,b[1]*h,h); }, reps);
    double dx = time(() -> { for (int[] b : blocks) { g.gemm(false,true,b[2],d,h,1f,A,b[1]*h,h,W1,b[0]*d*h,h,0f,F,b[1]*d,d); if (gated) g.gemm(false,true,b[2],d,h,1f,B,b[1]*h,h,W3,b[0]*d*h,h,1f,F,b[1]*d,d);} }, reps);
    int hB = (h + cb - 1)/cb, dB = (d + cb - 1)/cb;
    double wout = time(() -> { for (int ex=0; ex<e; ex++) for (int c=0;c<dB;c++){ int r0=dis.rowStart()[ex], n=dis.rowStart()[ex+1]-r0, c0=c*cb;
        g.gemm(true,false,h,Math.min(cb,d-c0),n,1f,H,r0*h,h,F,r0*d+c0,d,0f,gW,ex*h*d+c0,d);} }, reps);
    double win = time(() -> { for (int ex=0; ex<e; ex++) for (int gate=0; gate<m; gate++) for (int c=0;c<hB;c++){ int r0=dis.rowStart()[ex], n=dis.rowStart()[ex+1]-r0, c0=c*cb;
        g.gemm(true,false,d,Math.min(cb,h-c0),n,1f,X,r0*d,d,gate==1?B:A,r0*h+c0,h,0f,gW,ex*d*h+c0,h);} }, reps);
    double unit = 2.0*rows*d*h/1e9;
    double fwdG = up + down, bwdG = dh + dx + wout + win;
    System.out.printf("%s, %d rows over %d experts (%d blocks): forward %.1f ms, its GEMMs alone %.1f ms (%.0f GF/s): %.3f of it; forward+backward %.1f ms, its GEMMs alone %.1f ms (%.0f GF/s): %.3f of it%n",
        a[0], rows, e, blocks.length, fwd, fwdG, (m+1)*unit/fwdG*1e3, fwdG/fwd, fwdbwd, fwdG+bwdG, 3*(m+1)*unit/(fwdG+bwdG)*1e3, (fwdG+bwdG)/fwdbwd);
    System.out.printf("  GEMMs alone, ms: up %.1f, down %.1f, dHidden %.1f, dX %.1f, dW_out %.1f, dW_in(+gate) %.1f%n", up, down, dh, dx, wout, win);
    layer.close(); be.close();
  }
  static float[] rnd(Random r, int n) { float[] v = new float[n]; for (int i=0;i<n;i++) v[i]=(float)(r.nextGaussian()*0.05); return v; }
}
