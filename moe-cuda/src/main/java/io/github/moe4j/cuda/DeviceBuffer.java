package io.github.moe4j.cuda;

/** A block of device memory owned by the {@link DeviceRuntime} that allocated it. */
interface DeviceBuffer {
    /** Its size in bytes. */
    long bytes();
}
