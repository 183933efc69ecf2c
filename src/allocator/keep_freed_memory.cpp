// The memory allocator of linkstyle's programs (the CLI, the benchmarks, the allocator tests):
// jemalloc, told never to hand freed pages back to the OS (dirty_decay_ms = muzzy_decay_ms = -1).
//
// A batch loop allocates and frees the same large tensors again and again. glibc's malloc maps
// each tensor above 32 MiB afresh and unmaps it when freed, and its aligned allocations cannot
// reuse a freed chunk of the same size, so every batch faults all its pages in again: ~1e8
// minor page faults and more system than user time for a sweep at real scale. With this
// configuration a freed page stays in the process for the next batch; the resident size stays
// at the peak of the run. Linked as an object, so that the configuration symbol, which nothing
// references, is kept. Built without it for the sanitizers, which bring their own allocator.
#ifndef LINKSTYLE_SYSTEM_ALLOCATOR
extern "C" {
// Read by jemalloc when it starts.
extern const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
#endif
