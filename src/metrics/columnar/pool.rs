//! The smallest work pool: scoped threads taking items in order from a shared counter.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `threads`, or when it is 0 (the caller does not say): `EXPMAN_THREADS`, else one per core.
pub(crate) fn threads_or_default(threads: usize) -> usize {
    if threads > 0 {
        return threads;
    }
    std::env::var("EXPMAN_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `items.map(f)` on up to `threads` threads, results in the order of `items`. A panic in `f`
/// is propagated once every thread has stopped.
pub(crate) fn map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    map_with(items, threads, || (), |(), item| f(item))
}

/// Like [`map`], where each thread first makes a scratch state with `init` (a buffer to
/// reuse) that `f` gets with every item; the state is dropped when its thread is done.
pub(crate) fn map_with<T, R, S, I, F>(items: Vec<T>, threads: usize, init: I, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    I: Fn() -> S + Sync,
    F: Fn(&mut S, T) -> R + Sync,
{
    let n = items.len();
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        let mut state = init();
        return items.into_iter().map(|item| f(&mut state, item)).collect();
    }
    let items: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut state = init();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let item = items[i]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .expect("each item is taken once");
            let result = f(&mut state, item);
            *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every item was processed")
        })
        .collect()
}
