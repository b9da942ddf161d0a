// The pool runs every task exactly once, on a valid thread index, with and
// without workers spinning between jobs.
#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <vector>

namespace unicorn {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskOnce) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 200; ++rep) {
    const int n = 1 + rep % 37;
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    for (auto& h : hits) h = 0;
    std::atomic<int> bad_thread{0};
    pool.Run(n, [&](int task, int thread) {
      hits[size_t(task)]++;
      if (thread < 0 || thread >= 3) bad_thread++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    ASSERT_EQ(bad_thread.load(), 0);
  }
  int64_t covered = 0;
  pool.For(1000, 8, 4, [&](int64_t b, int64_t e, int) {
    EXPECT_EQ(b % 8, 0);
    __atomic_add_fetch(&covered, e - b, __ATOMIC_RELAXED);
  });
  EXPECT_EQ(covered, 1000);
}

TEST(ThreadPoolTest, WorkersThatSleepAtOnceStillRunEveryJob) {
  ThreadPool pool(3, std::chrono::microseconds(0));
  for (int rep = 0; rep < 100; ++rep) {
    std::atomic<int> sum{0};
    pool.Run(16, [&](int task, int) { sum += task; });
    ASSERT_EQ(sum.load(), 120);
  }
}

}  // namespace
}  // namespace unicorn
