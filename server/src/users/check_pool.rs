//! A fixed set of threads, one per core, that run password checks.
//!
//! Each thread takes the next queued check as soon as it finishes one, so a core stays
//! busy as long as checks wait. With tokio's blocking pool behind a semaphore, the next
//! check started only after the finished one had woken its task on an async worker,
//! that task had released its permit and the next task had been polled. On a 2-core VM
//! under login load, `vmstat` then showed 4 to 8% idle CPU.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The threads and their queue. Clones share both, and the threads end when the last
/// clone is dropped and the queue is empty.
#[derive(Clone)]
pub struct CheckPool {
    handle: Arc<PoolHandle>,
}

/// Closes the queue when dropped. Only [`CheckPool`] clones hold it, never the threads.
struct PoolHandle {
    queue: Arc<Queue>,
    /// Threads that started. With none, checks fail at once instead of waiting forever.
    threads: usize,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// The check ended without a result: it panicked, or no check thread could start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckFailed;

impl std::fmt::Debug for CheckPool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CheckPool")
    }
}

impl CheckPool {
    /// Starts `threads` threads (at least one) named `password-check`. A thread that
    /// cannot start is logged and skipped.
    pub fn start(threads: usize) -> Self {
        let queue = Arc::new(Queue::default());
        let mut started = 0;
        for _ in 0..threads.max(1) {
            let worker_queue = Arc::clone(&queue);
            let spawned = thread::Builder::new()
                .name("password-check".to_owned())
                .spawn(move || worker_queue.work());
            match spawned {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(%error, "starting a password check thread failed"),
            }
        }
        Self {
            handle: Arc::new(PoolHandle {
                queue,
                threads: started,
            }),
        }
    }

    /// Runs `check` on one of the threads and returns its result. A check whose caller
    /// has gone away before a thread takes it does not run.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CheckFailed> {
        if self.handle.threads == 0 {
            return Err(CheckFailed);
        }

        let (sender, receiver) = oneshot::channel();
        self.handle.queue.push(Box::new(move || {
            if sender.is_closed() {
                return;
            }
            let _ = sender.send(check());
        }));
        receiver.await.map_err(|_| CheckFailed)
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, job: Job) {
        self.lock().jobs.push_back(job);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Runs queued jobs until the queue is closed and empty. A panicking job drops its
    /// result sender, so its caller gets [`CheckFailed`], and the thread goes on.
    fn work(&self) {
        while let Some(job) = self.next_job() {
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a password check panicked");
            }
        }
    }

    fn next_job(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn check_result_returns() {
        let pool = CheckPool::start(2);

        let result = pool.run(|| 6 * 7).await;

        assert_eq!(result, Ok(42));
    }

    #[tokio::test]
    async fn checks_run_on_pool_threads() {
        let pool = CheckPool::start(2);

        let name = pool
            .run(|| thread::current().name().map(str::to_owned))
            .await;

        assert_eq!(name, Ok(Some("password-check".to_owned())));
    }

    #[tokio::test]
    async fn panicking_check_fails_and_thread_goes_on() {
        let pool = CheckPool::start(1);

        let failed = pool.run(|| -> u32 { panic!("check panicked") }).await;
        let next = pool.run(|| 1).await;

        assert_eq!(failed, Err(CheckFailed));
        assert_eq!(next, Ok(1));
    }

    #[tokio::test]
    async fn many_checks_all_finish() {
        let pool = CheckPool::start(2);
        let runs = Arc::new(AtomicUsize::new(0));

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let pool = pool.clone();
            let runs = Arc::clone(&runs);
            tasks.spawn(async move {
                let result = pool.run(move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    i
                });
                (i, result.await)
            });
        }
        let mut results = tasks.join_all().await;
        results.sort_by_key(|(i, _)| *i);

        assert_eq!(runs.load(Ordering::SeqCst), 50);
        assert!(
            results.iter().all(|(i, result)| *result == Ok(*i)),
            "{results:?}"
        );
    }

    #[tokio::test]
    async fn abandoned_check_does_not_run() {
        let pool = CheckPool::start(1);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let busy_pool = pool.clone();
        let busy = tokio::spawn(async move {
            busy_pool
                .run(move || blocked.recv_timeout(Duration::from_secs(5)).is_ok())
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let ran = Arc::new(AtomicUsize::new(0));

        let ran_in_check = Arc::clone(&ran);
        let abandoned = pool.run(move || ran_in_check.fetch_add(1, Ordering::SeqCst));
        let timed_out = tokio::time::timeout(Duration::from_millis(50), abandoned).await;
        release.send(()).expect("the first check waits");
        let first = busy.await.expect("task");
        let after = pool.run(|| ()).await;

        assert!(
            timed_out.is_err(),
            "the second check waited behind the first"
        );
        assert_eq!(first, Ok(true));
        assert_eq!(after, Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn threads_end_after_last_clone() {
        let pool = CheckPool::start(2);
        let queue = Arc::downgrade(&pool.handle.queue);
        let clone = pool.clone();

        drop(pool);
        drop(clone);

        for _ in 0..200 {
            if queue.upgrade().is_none() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("the pool threads still hold the queue");
    }
}
