// The emulated grid, barrier and warp rendezvous (see cuda_emu.h).
//
// The threads of a block take turns: exactly one runs, until it reaches a barrier, a warp operation or
// its end; then the lowest-numbered runnable thread gets the turn. This makes every run deterministic,
// makes deadlock a plain fact (no thread runnable, not all returned) rather than a timeout, and lets the
// first warps run ahead of the rest as far as the barriers allow, so that a missing barrier usually shows
// as a wrong answer (shared memory is poisoned, so a read before a write gives NaN).
#include "cuda_emu.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <pthread.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

// One mutex per block guards the emulation's state. Under ThreadSanitizer (built with -DPYDDPM_EMU_TSAN,
// this file itself not instrumented) that mutex and the turn-taking must not order the kernel's memory
// accesses, or they would hide the races we look for. So the emulation's own synchronisation is ignored
// (AnnotateIgnoreSync) and the ordering CUDA guarantees is declared explicitly: each thread releases a
// sync object when it arrives at a barrier (or warp operation) and acquires it when it leaves. Two objects
// used alternately by the parity of the barrier count suffice: a thread cannot arrive at barrier k+2
// before every thread has left barrier k.
#if defined(PYDDPM_EMU_TSAN)
extern "C" {
void AnnotateIgnoreSyncBegin(const char* file, int line);
void AnnotateIgnoreSyncEnd(const char* file, int line);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#define EMU_RELEASE(addr) __tsan_release(addr)
#define EMU_ACQUIRE(addr) __tsan_acquire(addr)
struct IgnoreSync {
    IgnoreSync() { AnnotateIgnoreSyncBegin(__FILE__, __LINE__); }
    ~IgnoreSync() { AnnotateIgnoreSyncEnd(__FILE__, __LINE__); }
};
#else
#define EMU_RELEASE(addr) (void)(addr)
#define EMU_ACQUIRE(addr) (void)(addr)
struct IgnoreSync {
    IgnoreSync() {}  // a no-op without ThreadSanitizer
};
#endif

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

// Every function-local static of the kernel objects, i.e. their __shared__ variables (shared.ld).
extern "C" unsigned char __pyddpm_emu_shared_begin[], __pyddpm_emu_shared_end[];

namespace {
cudaError_t last_error = cudaSuccess;
}

cudaError_t cudaGetLastError() {
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError() { return last_error; }
const char* cudaGetErrorString(cudaError_t err) {
    switch (err) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    }
    return "unknown error";
}

namespace pyddpm_emu {
namespace {

constexpr unsigned FULL = 0xffffffffu;
constexpr unsigned char POISON = 0xff;  // NaN as float and as double
constexpr unsigned char GUARD = 0xa5;
constexpr std::size_t GUARD_BYTES = 256;

// Thrown in the threads of a block after the first error, to unwind them out of the kernel.
struct Abort {};

enum State : unsigned char { RUNNABLE, AT_BARRIER, AT_WARP_OP, EXITED };

struct Warp {
    unsigned present = 0;  // lanes that exist in the block
    int arrived = 0, expected = 0;
    unsigned mask = 0;
    const char* what = nullptr;
    const char* file = nullptr;
    int line = 0;
    std::size_t size = 0;
    unsigned char values[32][16];  // deposited by the lanes of the operation being collected
    unsigned char result[32][16];  // the last completed operation's values, read by its lanes as they resume
    char order[2];                 // ThreadSanitizer sync objects
};

struct Block {
    const char* kernel;
    const char* launch_file;
    int launch_line;
    dim3 grid, dims;
    uint3 index;
    int threads;
    std::mutex m;
    std::unique_ptr<std::condition_variable[]> turn;  // one per thread: woken when it may run
    std::vector<State> state;
    int current = -1;  // the one thread that runs
    int barrier_arrived = 0;
    const char* barrier_file = nullptr;
    int barrier_line = 0;
    int first_exited = -1;
    bool failed = false;
    std::string message;
    std::unique_ptr<Warp[]> warps;
    char order[2];
    unsigned char* dynamic = nullptr;
};

thread_local Block* t_block = nullptr;
thread_local int t_tid = 0;
thread_local unsigned t_barriers = 0, t_warp_ops = 0;

std::mutex launch_mutex;  // static __shared__ memory is one object: one launch at a time
std::mutex launched_mutex;
std::vector<std::string> launched;
bool highest_first = false;

std::string xyz(uint3 v) {
    std::ostringstream o;
    o << "(" << v.x << "," << v.y << "," << v.z << ")";
    return o.str();
}
std::string xyz(dim3 v) { return xyz(uint3{v.x, v.y, v.z}); }

uint3 thread_index(const Block& b, int tid) {
    return uint3{unsigned(tid) % b.dims.x, unsigned(tid) / b.dims.x % b.dims.y, unsigned(tid) / (b.dims.x * b.dims.y)};
}

std::string where(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }

std::string launch_name(const Block& b) {
    return std::string(b.kernel) + "<<<" + xyz(b.grid) + ", " + xyz(b.dims) + ">>> (launched at " +
           where(b.launch_file, b.launch_line) + ")";
}

// Records the first error of the block and wakes everyone; they unwind with Abort.
void set_failure(Block& b, int tid, const std::string& what) {
    if (b.failed) return;
    b.failed = true;
    b.message = launch_name(b) + ": block " + xyz(b.index) + " thread " + xyz(thread_index(b, tid)) + ": " + what;
    for (int t = 0; t < b.threads; ++t) b.turn[t].notify_one();
}

[[noreturn]] void fail_locked(Block& b, const std::string& what) {
    set_failure(b, t_tid, what);
    throw Abort{};
}

// Who waits where, for a deadlock report.
std::string waiting(const Block& b) {
    std::ostringstream o;
    if (b.barrier_arrived) o << b.barrier_arrived << " thread(s) at __syncthreads() " << where(b.barrier_file, b.barrier_line);
    for (int w = 0; w < (b.threads + 31) / 32; ++w) {
        const Warp& wp = b.warps[w];
        if (wp.arrived) o << "; warp " << w << ": " << wp.arrived << " lane(s) at " << wp.what << " " << where(wp.file, wp.line);
    }
    return o.str();
}

// Hands the turn to the lowest-numbered runnable thread (or the highest, PYDDPM_EMU_ORDER=highest): the
// schedule is deterministic, and it lets the first warps run as far ahead of the others as the barriers
// allow, which is what exposes a missing __syncthreads as a wrong answer.
void schedule(Block& b, int tid) {
    int next = -1;
    for (int i = 0; i < b.threads; ++i) {
        const int t = highest_first ? b.threads - 1 - i : i;
        if (b.state[t] == RUNNABLE) {
            next = t;
            break;
        }
    }
    b.current = next;
    if (next >= 0) {
        b.turn[next].notify_one();
        return;
    }
    for (int t = 0; t < b.threads; ++t)
        if (b.state[t] != EXITED) {
            set_failure(b, tid, "deadlock, no thread can proceed: " + waiting(b));
            return;
        }
}

void wait_turn(Block& b, std::unique_lock<std::mutex>& lock, int tid) {
    while (b.current != tid && !b.failed) b.turn[tid].wait(lock);
    if (b.failed) throw Abort{};
}

void thread_exit(Block& b, int tid) {
    std::unique_lock<std::mutex> lock(b.m);
    b.state[tid] = EXITED;
    if (b.first_exited < 0) b.first_exited = tid;
    const Warp& w = b.warps[tid / 32];
    if (b.failed) return;
    if (b.barrier_arrived > 0)
        set_failure(b, tid, "returned while " + std::to_string(b.barrier_arrived) + " thread(s) wait at __syncthreads() " +
                                where(b.barrier_file, b.barrier_line) + " (a return before a barrier?)");
    else if (w.arrived > 0 && (w.mask >> (tid % 32) & 1u))
        set_failure(b, tid, "returned while lanes of its warp wait for it at " + std::string(w.what) + " " +
                                where(w.file, w.line));
    else
        schedule(b, tid);
}

void thread_main(Block& b, int tid, const std::function<void()>& body) {
    t_block = &b;
    t_tid = tid;
    t_barriers = t_warp_ops = 0;
    threadIdx = thread_index(b, tid);
    blockIdx = b.index;
    blockDim = b.dims;
    gridDim = b.grid;
#if defined(PYDDPM_EMU_TSAN)
    // ThreadSanitizer prints this name with the thread of each access it reports.
    const std::string name = "block " + xyz(b.index) + " thread " + xyz(threadIdx);
    pthread_setname_np(pthread_self(), name.c_str());
#endif
    try {
        {
            IgnoreSync ignore;
            std::unique_lock<std::mutex> lock(b.m);
            wait_turn(b, lock, tid);
        }
        body();
    } catch (const Abort&) {
    } catch (const std::exception& e) {
        IgnoreSync ignore;
        std::lock_guard<std::mutex> lock(b.m);
        set_failure(b, tid, std::string("threw: ") + e.what());
    } catch (...) {
        IgnoreSync ignore;
        std::lock_guard<std::mutex> lock(b.m);
        set_failure(b, tid, "threw an unknown exception");
    }
    IgnoreSync ignore;
    thread_exit(b, tid);
}

void poison_shared() {
    for (unsigned char* p = __pyddpm_emu_shared_begin; p < __pyddpm_emu_shared_end; ++p) {
#if defined(__SANITIZE_ADDRESS__)
        if (__asan_address_is_poisoned(p)) continue;  // the redzones between variables
#endif
        *p = POISON;
    }
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer's report names the OS thread; this adds the emulated kernel, block and thread.
void asan_context(const char*) {
    if (t_block)
        std::fprintf(stderr, "pyddpm emulation: the faulting access was made by %s, block %s, thread %s\n",
                     launch_name(*t_block).c_str(), xyz(t_block->index).c_str(),
                     xyz(thread_index(*t_block, t_tid)).c_str());
}
struct InstallAsanContext {
    InstallAsanContext() { __asan_set_error_report_callback(asan_context); }
} install_asan_context;
constexpr std::size_t guard_bytes = 0;  // AddressSanitizer's own redzones guard the exact allocation
#else
constexpr std::size_t guard_bytes = GUARD_BYTES;
#endif

}  // namespace

int linear_thread() { return t_tid; }

void* dynamic_shared_base() { return t_block->dynamic; }

std::vector<std::string> launched_kernels() {
    std::lock_guard<std::mutex> lock(launched_mutex);
    return launched;
}

void clear_launched_kernels() {
    std::lock_guard<std::mutex> lock(launched_mutex);
    launched.clear();
}

void set_order(bool highest) { highest_first = highest; }

void syncthreads(const char* file, int line) {
    Block& b = *t_block;
    char* order = &b.order[t_barriers++ & 1];
    EMU_RELEASE(order);
    {
        IgnoreSync ignore;
        std::unique_lock<std::mutex> lock(b.m);
        if (b.failed) throw Abort{};
        if (b.first_exited >= 0)
            fail_locked(b, "__syncthreads() " + where(file, line) + " reached after thread " +
                               xyz(thread_index(b, b.first_exited)) + " returned (a return before a barrier?)");
        if (b.barrier_arrived == 0) {
            b.barrier_file = file;
            b.barrier_line = line;
        } else if (b.barrier_line != line || std::strcmp(b.barrier_file, file) != 0) {
            fail_locked(b, "divergent barriers: at __syncthreads() " + where(file, line) + " while " +
                               std::to_string(b.barrier_arrived) + " thread(s) wait at " +
                               where(b.barrier_file, b.barrier_line));
        }
        b.state[t_tid] = AT_BARRIER;
        if (++b.barrier_arrived == b.threads) {
            b.barrier_arrived = 0;
            std::fill(b.state.begin(), b.state.end(), RUNNABLE);
        }
        schedule(b, t_tid);
        wait_turn(b, lock, t_tid);
    }
    EMU_ACQUIRE(order);
}

void warp_exchange(const char* what, unsigned mask, const void* value, std::size_t size, void* all, const char* file,
                   int line) {
    Block& b = *t_block;
    const int lane = t_tid % 32, warp = t_tid / 32;
    Warp& w = b.warps[warp];
    char* order = &w.order[t_warp_ops++ & 1];
    EMU_RELEASE(order);
    {
        IgnoreSync ignore;
        std::unique_lock<std::mutex> lock(b.m);
        if (b.failed) throw Abort{};
        char hex[16];
        std::snprintf(hex, sizeof hex, "0x%08x", mask);
        const std::string op = std::string(what) + "(" + hex + ", ...) " + where(file, line);
        if (mask != FULL) fail_locked(b, op + ": the mask is not the full mask (rule: full masks only)");
        if ((mask & w.present) != mask) fail_locked(b, op + ": the mask names lanes absent from the block");
        for (int l = 0; l < 32; ++l)
            if ((mask >> l & 1u) && b.state[32 * warp + l] == EXITED)
                fail_locked(b, op + ": the mask names lane " + std::to_string(l) + ", which has returned");
        if (w.arrived == 0) {
            w.what = what;
            w.file = file;
            w.line = line;
            w.mask = mask;
            w.size = size;
            w.expected = __builtin_popcount(mask);
        } else if (w.line != line || std::strcmp(w.file, file) != 0 || std::strcmp(w.what, what) != 0 ||
                   w.mask != mask || w.size != size) {
            fail_locked(b, "divergent warp operations: at " + op + " while " + std::to_string(w.arrived) +
                               " lane(s) of the warp wait at " + w.what + " " + where(w.file, w.line));
        }
        std::memcpy(w.values[lane], value, size);
        b.state[t_tid] = AT_WARP_OP;
        if (++w.arrived == w.expected) {
            std::memcpy(w.result, w.values, sizeof w.values);
            w.arrived = 0;
            for (int l = 0; l < 32; ++l)
                if (mask >> l & 1u) b.state[32 * warp + l] = RUNNABLE;
        }
        schedule(b, t_tid);
        wait_turn(b, lock, t_tid);
        for (int l = 0; l < 32; ++l) std::memcpy(static_cast<unsigned char*>(all) + l * size, w.result[l], size);
    }
    EMU_ACQUIRE(order);
}

void run_grid(const char* kernel, const char* file, int line, dim3 grid, dim3 dims, std::size_t shmem,
              const std::function<void()>& body) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || dims.x == 0 || dims.y == 0 ||
        dims.z == 0 || dims.x > 1024 || dims.y > 1024 || dims.z > 64 || 1ull * dims.x * dims.y * dims.z > 1024 ||
        shmem > 48 * 1024) {
        last_error = cudaErrorInvalidConfiguration;  // as a real launch: reported by cudaGetLastError
        return;
    }
    {
        std::lock_guard<std::mutex> lock(launched_mutex);
        launched.emplace_back(kernel);
    }
    const int threads = int(dims.x * dims.y * dims.z);
    std::lock_guard<std::mutex> one_launch(launch_mutex);
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                Block b;
                b.kernel = kernel;
                b.launch_file = file;
                b.launch_line = line;
                b.grid = grid;
                b.dims = dims;
                b.index = uint3{x, y, z};
                b.threads = threads;
                b.turn.reset(new std::condition_variable[threads]);
                b.state.assign(threads, RUNNABLE);
                b.warps.reset(new Warp[(threads + 31) / 32]);
                for (int w = 0; w < (threads + 31) / 32; ++w)
                    b.warps[w].present = threads - 32 * w >= 32 ? FULL : (1u << (threads - 32 * w)) - 1;
                if (threads % 32 != 0) {
                    set_failure(b, 0, "a block of " + std::to_string(threads) +
                                          " threads is not a multiple of 32 (rule: whole warps)");
                    throw KernelError(b.message);
                }
                poison_shared();
                // A fresh exact-size allocation each block, so AddressSanitizer guards its end too.
                std::unique_ptr<unsigned char[]> dynamic(new unsigned char[shmem + guard_bytes]);
                std::memset(dynamic.get(), POISON, shmem);
                std::memset(dynamic.get() + shmem, GUARD, guard_bytes);
                b.dynamic = dynamic.get();
                std::vector<std::thread> pool;
                pool.reserve(threads);
                try {
                    for (int t = 0; t < threads; ++t) pool.emplace_back(thread_main, std::ref(b), t, std::cref(body));
                } catch (const std::system_error& e) {
                    IgnoreSync ignore;
                    std::lock_guard<std::mutex> lock(b.m);
                    set_failure(b, int(pool.size()), std::string("could not start an OS thread: ") + e.what());
                }
                {
                    IgnoreSync ignore;
                    std::lock_guard<std::mutex> lock(b.m);
                    schedule(b, 0);
                }
                for (std::thread& t : pool) t.join();
                if (b.failed) throw KernelError(b.message);
                for (std::size_t i = 0; i < guard_bytes; ++i)
                    if (dynamic[shmem + i] != GUARD)
                        throw KernelError(launch_name(b) + ": block " + xyz(b.index) +
                                          ": wrote dynamic shared memory at byte " + std::to_string(shmem + i) +
                                          ", beyond the launch's " + std::to_string(shmem) + " bytes");
            }
}

}  // namespace pyddpm_emu
