//! The background thread: a sample at start, then one per interval, until stopped.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::collector::{Collector, report_to_log};
use crate::error::{Error, Result};

/// A running sampler thread; see [`SystemMetrics::start`](super::SystemMetrics::start).
///
/// [`stop`](Self::stop) (or dropping it) wakes the thread at once, however long the interval,
/// and returns once it has ended: no sample is written after that.
pub struct SystemSampler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread: a forked child has a copy of this handle but not
    /// the thread, and must neither wait for it nor touch its lock (which the parent's thread
    /// may have held at the fork).
    pid: u32,
}

/// What the handle and the thread share: the stop flag and the condition variable the thread
/// waits on between samples (a wait with a timeout, so stopping never waits out an interval).
struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
}

impl SystemSampler {
    pub(super) fn spawn(mut collector: Collector, interval: Duration) -> Result<SystemSampler> {
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let log = collector.log_path();
        let thread = std::thread::Builder::new()
            .name("expman-sysmetrics".into())
            .spawn(move || {
                // A bug here must not end the training process with it: report it and stop
                // sampling.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&mut collector, &theirs, interval)
                }));
                if ran.is_err() {
                    report_to_log(
                        log.as_ref(),
                        "the sampler thread panicked (a bug in expman; please report it); \
                         no more samples in this run",
                    );
                }
            })
            .map_err(|e| {
                Error::invalid_state(format!("cannot start the system metrics thread: {e}"))
            })?;
        Ok(SystemSampler {
            shared,
            thread: Some(thread),
            pid: std::process::id(),
        })
    }

    /// Stops the thread and waits for it (promptly: it is woken, not waited out). A sample
    /// being taken at that moment is finished first.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    /// Whether the thread is still sampling (it ends by itself once its process tree is gone).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn stop_inner(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if self.pid != std::process::id() {
            // Forked child: the thread is the parent's; forget the handle without a join or
            // detach of a thread this process does not have.
            std::mem::forget(thread);
            return;
        }
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        let _ = thread.join();
    }
}

impl Drop for SystemSampler {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Samples at start and then at start + k × interval (no drift; a sample late by more than an
/// interval skips the missed ones) until stopped or the tree is gone.
fn run(collector: &mut Collector, shared: &Shared, interval: Duration) {
    let start = Instant::now();
    let mut due = start;
    loop {
        if *shared.stop.lock().unwrap_or_else(|e| e.into_inner()) {
            return;
        }
        if !collector.tick() {
            return; // the run's processes have all ended
        }
        let now = Instant::now();
        due += interval;
        if due <= now {
            let step = interval.as_nanos().max(1);
            let next = (now.duration_since(start).as_nanos() / step + 1) * step;
            due = start + Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX));
        }
        let stopped = shared.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) = shared
            .wake
            .wait_timeout_while(stopped, due.saturating_duration_since(now), |stop| !*stop)
            .unwrap_or_else(|e| e.into_inner());
        if *stopped {
            return;
        }
    }
}
