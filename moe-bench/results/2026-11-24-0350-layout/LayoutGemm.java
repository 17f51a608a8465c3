package io.github.moe4j.cpu;
import dev.ludovic.netlib.blas.BLAS;
import java.util.*;
/** One layer's expert GEMMs that read the weights (forward: in, gate, out; backward: dHidden = dF W_out^T, dX = dA W_in^T + dB W_gate^T), with weights stored [in, out] (ours now) or [out, in] (torch's). */
public class LayoutGemm {
  public static void main(String[] args) {
    int e = Integer.parseInt(args[0]), rows = Integer.parseInt(args[1]), d = Integer.parseInt(args[2]), h = Integer.parseInt(args[3]);
    boolean gated = Boolean.parseBoolean(args[4]);
    int roundsN = Integer.parseInt(args[5]);
    RowMajorGemm g = new RowMajorGemm(BLAS.getInstance());
    Random r = new Random(1);
    float[] x = new float[rows*d], wIn = new float[e*d*h], wGate = new float[e*d*h], wOut = new float[e*h*d];
    float[] a = new float[rows*h], b = new float[rows*h], f = new float[rows*d], dh = new float[rows*h];
    for (int i=0;i<x.length;i++) x[i]=(float)r.nextGaussian();
    for (int i=0;i<wIn.length;i++) { wIn[i]=(float)r.nextGaussian(); wGate[i]=(float)r.nextGaussian(); wOut[i]=(float)r.nextGaussian(); }
    for (int i=0;i<a.length;i++) { a[i]=(float)r.nextGaussian(); b[i]=(float)r.nextGaussian(); }
    int mats = gated ? 3 : 2;
    double fl = mats * 2.0*rows*d*h*e/1e6;
    for (int round = 0; round < roundsN; round++) {
      long[] t = new long[4];
      for (int v = 0; v < 4; v++) {
        boolean nt = v % 2 == 1; boolean bwd = v >= 2;
        long s = System.nanoTime();
        for (int ex = 0; ex < e; ex++) {
          if (!bwd) {
            // [in,out]: NN with ldb = out;  [out,in]: NT with ldb = in
            g.gemm(false,nt,rows,h,d,1f,x,0,d,wIn,ex*d*h,nt?d:h,0f,a,0,h);
            if (gated) g.gemm(false,nt,rows,h,d,1f,x,0,d,wGate,ex*d*h,nt?d:h,0f,b,0,h);
            g.gemm(false,nt,rows,d,h,1f,a,0,h,wOut,ex*h*d,nt?h:d,0f,f,0,d);
          } else {
            // dHidden = dF W_out^T: [in,out] stored W_out [h,d] -> NT ldb d; [out,in] stored [d,h] -> NN ldb h
            g.gemm(false,!nt,rows,h,d,1f,f,0,d,wOut,ex*h*d,nt?h:d,0f,dh,0,h);
            g.gemm(false,!nt,rows,d,h,1f,a,0,h,wIn,ex*d*h,nt?d:h,0f,f,0,d);
            if (gated) g.gemm(false,!nt,rows,d,h,1f,b,0,h,wGate,ex*d*h,nt?d:h,1f,f,0,d);
          }
        }
        t[v] = System.nanoTime() - s;
      }
      if (round == 0) continue;
      System.out.printf("round %d E=%d rows=%d d=%d h=%d: fwd [in,out] %.1f GF/s, [out,in] %.1f (%.3f); bwd dX [in,out] %.1f, [out,in] %.1f (%.3f)%n", round, e, rows, d, h,
        fl/(t[0]/1e6), fl/(t[1]/1e6), (double)t[0]/t[1], fl/(t[2]/1e6), fl/(t[3]/1e6), (double)t[2]/t[3]);
    }
  }
}
