/**
 * JMH benchmarks of every backend (moe4j issue 7): {@link io.github.moe4j.bench.LayerBenchmark}
 * (whole layer, forward and forward + backward, per backend and configuration),
 * {@link io.github.moe4j.bench.ReferenceStagesBenchmark} (the reference's stages one by one),
 * {@link io.github.moe4j.bench.BenchConfigs} (the configurations and the FLOP count) and
 * {@link io.github.moe4j.bench.BenchPlan} (what runs here). {@code moe-bench/run-bench.sh} runs them
 * with the PyTorch peer and an SGEMM probe and summarises.
 */
package io.github.moe4j.bench;
