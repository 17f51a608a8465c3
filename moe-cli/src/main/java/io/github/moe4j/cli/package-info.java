/** The {@code moe4j} command line: {@code backends} and {@code demo}. */
package io.github.moe4j.cli;
