/**
 * The conformance suite that certifies a backend against the reference. Not implemented yet
 * (moe4j issue 4).
 */
package io.github.moe4j.conformance;
