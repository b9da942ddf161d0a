// A small persistent thread pool (the CPU backend's kernels, the
// coordinator's sampling). Workers are created once and spin for a while,
// then sleep, between jobs; a job is a parallel loop over
// task indices, and the calling thread takes part as thread 0. Nothing is
// allocated per job.
//
// Not re-entrant: Run() is called from one thread at a time, and a task must
// not call Run().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace unicorn {

class ThreadPool {
 public:
  // `threads` >= 1 counts the caller; threads - 1 workers are started. After
  // a job, workers spin for `spin` waiting for the next one, then sleep: the
  // CPU backend issues jobs microseconds apart, the coordinator one per step
  // (its workers should leave the cores to the device workers at once).
  explicit ThreadPool(int threads, std::chrono::microseconds spin = std::chrono::milliseconds(2));
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Calls f(task, thread) for every task in [0, n_tasks), spread over the
  // threads (thread in [0, size())); returns when all calls have returned.
  template <typename F>
  void Run(int n_tasks, F&& f) {
    if (n_tasks <= 0) return;
    if (threads_ == 1 || n_tasks == 1) {
      for (int t = 0; t < n_tasks; ++t) f(t, 0);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    Dispatch(n_tasks, &f,
             [](void* ctx, int task, int thread) { (*static_cast<Fn*>(ctx))(task, thread); });
  }

  // Splits [0, n) into about `size() * per_thread` contiguous ranges whose
  // bounds are multiples of `align`, and calls f(begin, end, thread) for each.
  // Ranges hold at least `grain` elements: small jobs run on the caller alone
  // rather than pay for waking the pool.
  template <typename F>
  void For(int64_t n, int64_t align, int per_thread, F&& f, int64_t grain = 1) {
    if (n <= 0) return;
    int64_t units = (n + align - 1) / align;
    int64_t tasks = std::min<int64_t>(units, int64_t(threads_) * per_thread);
    tasks = std::max<int64_t>(1, std::min(tasks, n / std::max<int64_t>(grain, 1)));
    int64_t per = (units + tasks - 1) / tasks;
    tasks = (units + per - 1) / per;
    Run(int(tasks), [&](int task, int thread) {
      int64_t b = int64_t(task) * per * align;
      int64_t e = std::min(n, b + per * align);
      f(b, e, thread);
    });
  }

 private:
  using TaskFn = void (*)(void* ctx, int task, int thread);
  void Dispatch(int n_tasks, void* ctx, TaskFn fn);
  void WorkerLoop(int thread);
  void DoTasks(int thread);

  int threads_;
  // Pause-loop iterations before yielding the core: 0 when there are more
  // threads than hardware threads (spinning would only delay the others).
  int spin_limit_;
  std::chrono::microseconds spin_for_;
  std::vector<std::thread> workers_;

  // The current job.
  void* ctx_ = nullptr;
  TaskFn fn_ = nullptr;
  int n_tasks_ = 0;
  alignas(64) std::atomic<int> next_task_{0};
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> busy_{0};  // workers still inside the current job
  std::atomic<bool> stop_{false};

  // Sleeping workers wait here when no job comes for a while.
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sleepers_{0};
};

}  // namespace unicorn
