//! The session threads, as in the Rust book's `ThreadPool`, but started as
//! sessions arrive rather than all at once: at most `size` of them, kept once
//! started (a server with a cap of 10,000 starts at once and costs nothing
//! for the sessions it does not have). Jobs arrive on a crossbeam channel;
//! dropping the pool closes the channel and joins every worker. A job that
//! panics is caught and logged; the worker lives on.
//!
//! Before a job is handed over, [`ThreadPool::reserve`] makes sure a worker
//! is free for it, starting one if need be, so a job never waits in the
//! channel behind a long session, and a thread the OS refuses is known
//! before the job is given away (its client can still be told).
//!
//! Workers are started by a spawner thread of the pool's own, made with the
//! pool: a thread inherits its creator's priority, and the accepting thread
//! that asks for workers runs at a lower one than the sessions must.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Stack size of a session thread; sessions are shallow, and 1,000 idle
/// clients should cost little memory.
pub const SESSION_STACK_SIZE: usize = 256 * 1024;

/// How long [`ThreadPool::reserve`] waits for a busy worker to come free
/// when all are started: a session gives its slot back a moment before its
/// worker is free, so a newcomer admitted on that slot waits that moment.
const FREE_WAIT: Duration = Duration::from_secs(2);

/// The session threads.
pub struct ThreadPool {
    jobs: Option<Sender<Job>>,
    /// One token per worker waiting for a job and not yet reserved for one.
    idle: Receiver<()>,
    /// Asks the spawner for one more worker; the answer comes on the sender given.
    spawn: Option<Sender<Sender<io::Result<JoinHandle<()>>>>>,
    spawner: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    size: usize,
}

/// A worker kept free for the next job; see [`ThreadPool::reserve`].
#[must_use = "a reserved worker waits for the job given to execute"]
pub struct Reserved(());

impl ThreadPool {
    /// A pool of at most `size` workers; none is started yet, only the
    /// spawner, at the calling thread's priority.
    ///
    /// # Errors
    /// When the OS refuses to start the spawner thread.
    pub fn new(size: usize) -> io::Result<ThreadPool> {
        let (jobs, receiver) = unbounded::<Job>();
        let (now_idle, idle) = unbounded();
        let (spawn, requests) = unbounded::<Sender<io::Result<JoinHandle<()>>>>();
        let spawner =
            thread::Builder::new().name("session-spawner".into()).stack_size(SESSION_STACK_SIZE).spawn(move || {
                for (n, answer) in requests.into_iter().enumerate() {
                    let _ = answer.send(start_worker(n, receiver.clone(), now_idle.clone()));
                }
            })?;
        let (spawn, spawner) = (Some(spawn), Some(spawner));
        Ok(ThreadPool { jobs: Some(jobs), idle, spawn, spawner, workers: Vec::new(), size })
    }

    /// Workers started so far.
    pub fn started(&self) -> usize {
        self.workers.len()
    }

    /// Makes sure a worker will take the next job at once: takes an idle
    /// one, or starts one, or (all `size` started) waits a moment for one.
    ///
    /// # Errors
    /// When every worker stays busy, or the OS refuses to start a thread.
    pub fn reserve(&mut self) -> io::Result<Reserved> {
        if self.idle.try_recv().is_ok() {
            return Ok(Reserved(()));
        }
        if self.workers.len() >= self.size {
            return match self.idle.recv_timeout(FREE_WAIT) {
                Ok(()) => Ok(Reserved(())),
                Err(_) => Err(io::Error::other(format!("all {} session threads are busy", self.size))),
            };
        }
        let (answer, answered) = crossbeam_channel::bounded(1);
        let asked = self.spawn.as_ref().is_some_and(|spawn| spawn.send(answer).is_ok());
        let started = if asked { answered.recv().ok() } else { None };
        let thread = started.unwrap_or_else(|| Err(io::Error::other("the session spawner has stopped")))?;
        self.workers.push(thread);
        Ok(Reserved(()))
    }

    /// Hands `job` to the worker `reserved` for it.
    pub fn execute(&self, reserved: Reserved, job: impl FnOnce() + Send + 'static) {
        let Reserved(()) = reserved;
        if let Some(jobs) = &self.jobs {
            // Fails only when every worker is gone, which happens only in Drop.
            let _ = jobs.send(Box::new(job));
        }
    }

    /// Stops taking jobs without waiting for the running ones: for a
    /// shutdown that must end although a session is stuck. Its thread is
    /// left to end with the process.
    pub fn detach(mut self) {
        drop(self.jobs.take());
        drop(self.spawn.take());
        self.spawner = None;
        self.workers.clear();
    }
}

/// A worker: runs jobs until the pool closes the channel; after each, it is
/// idle again.
fn start_worker(n: usize, jobs: Receiver<Job>, now_idle: Sender<()>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(format!("session-{n}")).stack_size(SESSION_STACK_SIZE).spawn(move || {
        for job in jobs {
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a session panicked; its slot was freed and the server goes on");
            }
            let _ = now_idle.send(());
        }
    })
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        drop(self.spawn.take());
        for thread in self.spawner.take().into_iter().chain(self.workers.drain(..)) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runs_jobs_survives_panics_and_joins_on_drop() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let done = Arc::new(AtomicUsize::new(0));
        let mut pool = ThreadPool::new(2).unwrap();
        let reserved = pool.reserve().unwrap();
        pool.execute(reserved, || panic!("boom"));
        for _ in 0..10 {
            let done = Arc::clone(&done);
            let reserved = pool.reserve().unwrap();
            pool.execute(reserved, move || {
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert!(pool.started() <= 2);
        drop(pool);
        assert_eq!(done.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn workers_start_as_jobs_come_and_no_more_than_the_size() {
        let mut pool = ThreadPool::new(3).unwrap();
        assert_eq!(pool.started(), 0, "nothing started up front");
        let (release, hold) = crossbeam_channel::bounded::<()>(0);
        for _ in 0..3 {
            let hold = hold.clone();
            let reserved = pool.reserve().unwrap();
            pool.execute(reserved, move || {
                let _ = hold.recv();
            });
        }
        assert_eq!(pool.started(), 3);
        assert!(pool.reserve().is_err(), "a fourth while three are busy");
        drop(release);
        drop(pool);
    }

    #[test]
    fn a_detached_pool_does_not_wait_for_a_stuck_job() {
        let mut pool = ThreadPool::new(1).unwrap();
        let (release, stuck) = crossbeam_channel::bounded::<()>(0);
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let reserved = pool.reserve().unwrap();
        pool.execute(reserved, move || {
            let _ = started_tx.send(());
            let _ = stuck.recv();
        });
        started.recv().unwrap();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        thread::spawn(move || {
            pool.detach();
            let _ = done_tx.send(());
        });
        let returned = done.recv_timeout(Duration::from_secs(20));
        drop(release);
        assert!(returned.is_ok(), "detach waited for the stuck job");
    }
}
