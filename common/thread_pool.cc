#include "common/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define UNICORN_PAUSE() _mm_pause()
#else
#define UNICORN_PAUSE() ((void)0)
#endif

namespace unicorn {
ThreadPool::ThreadPool(int threads, std::chrono::microseconds spin)
    : threads_(threads < 1 ? 1 : threads),
      spin_limit_(threads_ <= int(std::thread::hardware_concurrency()) ? 4096 : 0),
      spin_for_(spin) {
  for (int t = 1; t < threads_; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::DoTasks(int thread) {
  for (;;) {
    int task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    fn_(ctx_, task, thread);
  }
}

void ThreadPool::Dispatch(int n_tasks, void* ctx, TaskFn fn) {
  ctx_ = ctx;
  fn_ = fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  busy_.store(threads_ - 1, std::memory_order_relaxed);
  // Both seq_cst: a worker going to sleep increments sleepers_ and then
  // re-reads generation_, so one of the two sides sees the other's write.
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  DoTasks(0);
  // Spin for the stragglers; on a machine with more runnable threads than
  // cores a worker may be descheduled, so after a while give the core away.
  for (int spins = 0; busy_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < spin_limit_) {
      UNICORN_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::WorkerLoop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen) {
      auto start = std::chrono::steady_clock::now();
      int spins = 0;
      while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
        if (++spins < spin_limit_) {
          UNICORN_PAUSE();
        } else {
          std::this_thread::yield();  // let a descheduled thread of ours run
        }
        if (spins % 256 == 0 && std::chrono::steady_clock::now() - start >= spin_for_) {
          std::unique_lock<std::mutex> lock(mu_);
          sleepers_.fetch_add(1);
          cv_.wait(lock, [&] { return generation_.load() != seen; });
          sleepers_.fetch_sub(1);
          start = std::chrono::steady_clock::now();
        }
      }
    }
    seen = gen;
    if (stop_.load()) return;
    DoTasks(thread);
    busy_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace unicorn
