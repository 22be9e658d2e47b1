//! A fixed set of worker threads that run sessions, as in the Rust book's
//! `ThreadPool`: jobs arrive on a crossbeam channel, dropping the pool closes
//! the channel and joins every worker. A job that panics is caught and logged;
//! the worker lives on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{unbounded, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Stack size of a session thread; sessions are shallow, and 1,000 idle
/// clients should cost little memory.
pub const SESSION_STACK_SIZE: usize = 256 * 1024;

/// The session threads.
pub struct ThreadPool {
    jobs: Option<Sender<Job>>,
    workers: Vec<Worker>,
}

struct Worker {
    thread: Option<JoinHandle<()>>,
}

impl ThreadPool {
    /// Starts `size` workers.
    ///
    /// # Errors
    /// When the OS refuses to start a thread.
    pub fn new(size: usize) -> std::io::Result<ThreadPool> {
        let (jobs, receiver) = unbounded::<Job>();
        let workers = (0..size)
            .map(|id| {
                let receiver = receiver.clone();
                let thread = thread::Builder::new()
                    .name(format!("session-{id}"))
                    .stack_size(SESSION_STACK_SIZE)
                    .spawn(move || {
                        for job in receiver {
                            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                                tracing::error!("a session panicked; its slot was freed and the server goes on");
                            }
                        }
                    })?;
                Ok(Worker { thread: Some(thread) })
            })
            .collect::<std::io::Result<_>>()?;
        Ok(ThreadPool { jobs: Some(jobs), workers })
    }

    /// Queues a job for the next free worker.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(jobs) = &self.jobs {
            // Fails only when every worker is gone, which happens only in Drop.
            let _ = jobs.send(Box::new(job));
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn runs_jobs_survives_panics_and_joins_on_drop() {
        let done = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPool::new(2).unwrap();
        pool.execute(|| panic!("boom"));
        for _ in 0..10 {
            let done = Arc::clone(&done);
            pool.execute(move || {
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        drop(pool);
        assert_eq!(done.load(Ordering::SeqCst), 10);
    }
}
