package io.github.moe4j.cpu;
import io.github.moe4j.api.*;
import io.github.moe4j.bench.BenchConfigs;
import dev.ludovic.netlib.blas.BLAS;
import java.util.*;
public class LProf {
  static double time(Runnable r, int reps) { r.run(); double[] t=new double[reps]; for(int i=0;i<reps;i++){long s=System.nanoTime(); r.run(); t[i]=(System.nanoTime()-s)/1e6;} Arrays.sort(t); return t[reps/2]; }
  public static void main(String[] a) throws Exception {
    System.setProperty(CpuBackend.THREADS_PROPERTY, "1");
    String cfgName = a[0]; int reps = Integer.parseInt(a[1]);
    BenchConfigs.Shape s = BenchConfigs.shape(cfgName);
    MoeBackend be = MoeBackends.open("cpu");
    System.out.println(be.device());
    CpuLayer layer = (CpuLayer) be.createLayer(s.config(), BenchConfigs.weights(s));
    Tensor x = BenchConfigs.input(s);
    int T = s.tokens(), d = s.modelDim(), h = s.hiddenDim(), e = s.experts();
    CpuRouter.Forward routed = layer.router().forward(x.toArray(), T, ForwardOptions.inference());
    Dispatch dis = Dispatch.of(routed.routing(), e);
    int[] rs = dis.rowStart(); int[] sizes = new int[e]; for (int i=0;i<e;i++) sizes[i]=rs[i+1]-rs[i];
    System.out.println("rows per expert " + Arrays.toString(sizes));
    for (int rb : new int[]{1024, 2048, 100000}) System.out.println("blocks@" + rb + ": " + dis.rowBlocks(rb).length);
    CpuLayer.Workspace ws = new CpuLayer.Workspace(dis.rows(), d);
    layer.gatherRows(dis, routed.expertInput(), ws.x);
    System.out.printf("forward total %.1f ms%n", time(() -> { try (MoeForward f = layer.forward(x, ForwardOptions.inference())) {} }, reps));
    System.out.printf("experts stage %.1f ms%n", time(() -> layer.expertsForward(ws, dis), reps));
    RowMajorGemm g = new RowMajorGemm(BLAS.getInstance());
    float[] wIn = new float[e*d*h], wGate = new float[e*d*h], wOut = new float[e*h*d];
    Random r = new Random(1); for (int i=0;i<wIn.length;i++){wIn[i]=(float)r.nextGaussian()*0.03f; wGate[i]=(float)r.nextGaussian()*0.03f; wOut[i]=(float)r.nextGaussian()*0.03f;}
    for (int rb : new int[]{1024, 2048, 100000}) {
      int[][] blocks = dis.rowBlocks(rb);
      int maxRows = 0; for (int[] b : blocks) maxRows = Math.max(maxRows, b[2]);
      float[] A = new float[maxRows*h], B = new float[maxRows*h];
      double gemms = time(() -> { for (int[] b : blocks) { int ex=b[0], r0=b[1], n=b[2];
        g.gemm(false,false,n,h,d,1f,ws.x,r0*d,d,wIn,ex*d*h,h,0f,A,0,h);
        g.gemm(false,false,n,h,d,1f,ws.x,r0*d,d,wGate,ex*d*h,h,0f,B,0,h);
        g.gemm(false,false,n,d,h,1f,A,0,h,wOut,ex*h*d,d,0f,ws.f,r0*d,d);} }, reps);
      double act = time(() -> { for (int[] b : blocks) { int n=b[2]; ExpertActivation.forward(s.config().activation(), A, B, A, 0, n*h);} }, reps);
      double fl = 2.0*dis.rows()*d*h*3/1e9;
      System.out.printf("rowblock %d: gemms only %.1f ms (%.1f GF/s), activation only %.1f ms%n", rb, gemms, fl/gemms*1e3, act);
    }
    // fused in|gate: [d, 2h] weights per expert
    float[] wCat = new float[e*d*2*h];
    int[][] blocks = dis.rowBlocks(1024);
    int maxRows = 0; for (int[] b : blocks) maxRows = Math.max(maxRows, b[2]);
    float[] AB = new float[maxRows*2*h];
    double fused = time(() -> { for (int[] b : blocks) { int ex=b[0], r0=b[1], n=b[2];
        g.gemm(false,false,n,2*h,d,1f,ws.x,r0*d,d,wCat,ex*d*2*h,2*h,0f,AB,0,2*h);
        g.gemm(false,false,n,d,h,1f,AB,0,2*h,wOut,ex*h*d,d,0f,ws.f,r0*d,d);} }, reps);
    System.out.printf("fused in|gate rowblock 1024: gemms %.1f ms (%.1f GF/s)%n", fused, 2.0*dis.rows()*d*h*3/1e9/fused*1e3);
    layer.close(); be.close();
  }
}
