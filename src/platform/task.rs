//! The executor of the fetch handler (one future per request) and of the writes a request leaves
//! running in the background (`WorkersKv::put_in_background`): each future is polled at once.
//!
//! `wasm-bindgen-futures` (behind the `#[event(fetch)]` macro) wraps the handler in a promise
//! and schedules its first poll, and every later wake-up, through `queueMicrotask`, which
//! workerd makes costly. Here the handler is polled at once, and a request that needs no I/O
//! (`/healthz`, the JWKS, the console) is answered with no promise at all. A wake-up is still deferred
//! to a microtask, as futures expect (worker's `Delay` wakes before it records that it fired),
//! but through `Promise.resolve().then(…)` with one callback per isolate.
//!
//! A waiting request is kept in a per-isolate table until it finishes: a list, found by id with a
//! scan, for the requests waiting at once in one isolate are few (a hash map's code would be
//! compiled by every new isolate's first request that waits). The runtime drops the
//! I/O of a request whose client went away, so its promises never settle and its entry would
//! stay: entries older than [`ABANDONED_AFTER_MS`] are dropped when the table grows.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use worker::js_sys::{Date, Function, Promise};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::JsValue;

type Handler = Pin<Box<dyn Future<Output = JsValue>>>;

/// A handler waiting this long is abandoned: its own waits are bounded (5 s per fetch, a few
/// fetches), so only a request the runtime cancelled gets here.
const ABANDONED_AFTER_MS: f64 = 10.0 * 60.0 * 1000.0;

/// Table size from which abandoned entries are looked for.
const SWEEP_FROM: usize = 256;

/// A request still waiting on I/O.
struct Task {
    /// `None` while it is being polled.
    future: Option<Handler>,
    /// Settles the promise the runtime was given.
    resolve: Option<Function>,
    /// `Date.now()` when it first waited.
    started_ms: f64,
}

thread_local! {
    static TASKS: RefCell<Vec<(u64, Task)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
    /// Tasks woken since the last microtask ran them.
    static WOKEN: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    /// The microtask that polls them, made once.
    static RUN_WOKEN: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| run_woken());
}

/// Wakes a task by id: a stale waker (its task done) finds nothing and does nothing.
struct TaskWaker(u64);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        schedule(self.0);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        schedule(self.0);
    }
}

/// Queues a poll of task `id`, and the microtask that runs the queue if it has none yet.
fn schedule(id: u64) {
    let first = WOKEN.with(|woken| {
        let mut woken = woken.borrow_mut();
        woken.push(id);
        woken.len() == 1
    });
    if first {
        RUN_WOKEN.with(|run| {
            let _ = Promise::resolve(&JsValue::UNDEFINED).then(run);
        });
    }
}

fn run_woken() {
    let woken = WOKEN.with(|woken| std::mem::take(&mut *woken.borrow_mut()));
    for id in woken {
        resume(id);
    }
}

/// Runs `handler` until it first waits. Returns its value if it finished, else a promise of it,
/// which settles when the handler finishes.
pub fn run(handler: impl Future<Output = JsValue> + 'static) -> JsValue {
    let id = NEXT_ID.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    let mut future: Handler = Box::pin(handler);
    if let Poll::Ready(value) = poll(id, &mut future) {
        return value;
    }
    // It waits. A wake-up during that first poll is only queued, and runs after this returns,
    // by when the task is in the table.
    let mut resolve = None;
    let promise = Promise::new(&mut |settle, _reject| resolve = Some(settle));
    let started_ms = Date::now();
    let task = Task {
        future: Some(future),
        resolve,
        started_ms,
    };
    TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        if tasks.len() >= SWEEP_FROM {
            tasks.retain(|(_, task)| started_ms - task.started_ms < ABANDONED_AFTER_MS);
        }
        tasks.push((id, task));
    });
    promise.into()
}

fn poll(id: u64, future: &mut Handler) -> Poll<JsValue> {
    let waker = Waker::from(Arc::new(TaskWaker(id)));
    future.as_mut().poll(&mut Context::from_waker(&waker))
}

/// Polls a woken task, unless it finished (or was abandoned) meanwhile.
fn resume(id: u64) {
    let future = TASKS.with(|tasks| task_mut(&mut tasks.borrow_mut(), id)?.future.take());
    let Some(mut future) = future else {
        return;
    };
    match poll(id, &mut future) {
        Poll::Ready(value) => {
            let task = TASKS.with(|tasks| {
                let mut tasks = tasks.borrow_mut();
                let at = tasks.iter().position(|(of, _)| *of == id)?;
                Some(tasks.swap_remove(at).1)
            });
            if let Some(resolve) = task.and_then(|task| task.resolve) {
                // Resolving with a Response cannot throw.
                let _ = resolve.call1(&JsValue::UNDEFINED, &value);
            }
        }
        Poll::Pending => TASKS.with(|tasks| {
            if let Some(task) = task_mut(&mut tasks.borrow_mut(), id) {
                task.future = Some(future);
            }
        }),
    }
}

fn task_mut(tasks: &mut [(u64, Task)], id: u64) -> Option<&mut Task> {
    tasks
        .iter_mut()
        .find(|(of, _)| *of == id)
        .map(|(_, task)| task)
}
