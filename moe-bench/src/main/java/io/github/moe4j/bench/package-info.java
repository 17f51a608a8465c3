/**
 * JMH benchmarks of every backend. Not implemented yet (moe4j issue 7).
 */
package io.github.moe4j.bench;
