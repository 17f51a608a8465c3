#!/bin/bash
# A/B of whole layers: weights [in, out] (inout.jar, dd9d22d) vs [out, in] (outin.jar), the jars alternating, two rounds
cd /tmp/layout
for round in 1 2; do
  for jar in inout outin; do
    echo "### round $round $jar $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
    OPENBLAS_NUM_THREADS=1 java -jar $jar.jar 'io.github.moe4j.bench.LayerBenchmark' -p backend=cpu -p config=W,M,S,Switch -p threads=1,2 \
      -f 1 -wi 2 -w 2 -i 3 -r 3 -jvmArgsAppend "-Xms4g -Xmx4g -XX:+AlwaysPreTouch --add-modules jdk.incubator.vector" 2>&1 | grep -E "^LayerBenchmark"
  done
done
echo "### done $(date -u +%H:%M:%S)"
