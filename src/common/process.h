// Process-wide settings for mamori's long-running services.
#pragma once

namespace mamori {

// glibc hands buffers of 128 KB and more back to the kernel when they are
// freed, and trims its arenas, so a service that handles one multi-megabyte
// body after another faults the same memory in again for every request (page
// faults and the copies into fresh pages were a fifth of `mamori icap`'s CPU
// on 8 MB uploads). After this call allocations up to 32 MB come from the
// arenas and an arena is trimmed only once 128 MB at its top are free, so
// freed memory is reused. Each service still bounds what it holds with its
// own budgets (inspection memory, body sizes); the resident size stays near
// its peak instead of shrinking after a burst. Call once, early in main.
void KeepFreedMemoryForReuse();

// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it
// starts afterwards, and ignores SIGPIPE (a peer that goes away is an I/O
// error, not the end of the process). Call before any thread starts (an
// audit log or a cap journal starts its own when opened): then a stop signal
// always reaches WaitForStopSignal() and the service shuts down cleanly.
void BlockStopSignals();

// Waits for SIGINT or SIGTERM (after BlockStopSignals) and returns it.
int WaitForStopSignal();

}  // namespace mamori
