// Per-thread scratch allocated before the parallel region.
//
// No exception may leave an OpenMP region: one thrown inside (a std::bad_alloc from a thread's own
// std::vector) calls std::terminate and takes the Python interpreter with it. So a kernel's scratch is
// allocated here, by the calling thread before the region, where a std::bad_alloc unwinds to pybind11 and
// reaches Python as a MemoryError; inside, each thread takes its own slice. The region must run with
// num_threads(scratch.threads()), so that it never has more threads than there are slices.
//
//     PerThread<T> pad(n);
//     #pragma omp parallel num_threads(pad.threads())
//     {
//         T* mine = pad.zeroed();  // zeroed by the thread that uses it, as its own vector would be
//         #pragma omp for
//         ...
//     }
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyddpm {

inline int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int thread_num() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// `count` elements for each thread of the next region, in one allocation. Each slice starts on a 64-byte
// line (aligned loads in the packed panels, and no line shared by two threads' slices).
template <typename T>
class PerThread {
  public:
    PerThread() = default;
    explicit PerThread(long count) { reserve(count); }

    // Slices of at least `count` elements for max_threads() threads; the buffer is kept if it is large
    // enough already (its contents are not). Throws std::bad_alloc: call it outside any region.
    void reserve(long count) {
        const long threads = max_threads();
        const long stride = (std::max(count, 0L) + kLine - 1) / kLine * kLine;
        if (stride > (std::numeric_limits<long>::max() - kLine) / threads) throw std::bad_alloc();
        if (stride * threads > capacity_) {
            data_.reset(), capacity_ = 0;  // the old buffer first: the new one may need its room
            data_.reset(new T[stride * threads + kLine]);  // default-initialised: no page touched here
            capacity_ = stride * threads;
        }
        const auto misalign = reinterpret_cast<std::uintptr_t>(data_.get()) % 64;
        base_ = data_.get() + (misalign ? (64 - misalign) / sizeof(T) : 0);
        threads_ = static_cast<int>(threads), stride_ = stride, count_ = count;
    }

    int threads() const { return threads_; }

    // Inside the region: this thread's slice, as left by its last use (or uninitialised), or zeroed.
    T* mine() const { return base_ + thread_num() * stride_; }
    T* zeroed() const {
        T* p = mine();
        std::fill(p, p + count_, T(0));
        return p;
    }

  private:
    static constexpr long kLine = 64 / sizeof(T);
    std::unique_ptr<T[]> data_;
    T* base_ = nullptr;
    long capacity_ = 0, stride_ = 0, count_ = 0;
    int threads_ = 1;
};

}  // namespace pyddpm
