//! The executor of the fetch handler: one future per request, polled right away.
//!
//! `wasm-bindgen-futures` (behind the `#[event(fetch)]` macro) wraps the handler in a promise
//! and schedules its first poll, and every later wake-up, through `queueMicrotask`, which
//! workerd makes costly. Here the handler is polled at once; a request that needs no I/O (a
//! `/healthz`, a rejected form) is answered with no promise at all, and one that waits is polled
//! again from inside the callback of the promise it waited on, when that promise settles.
//!
//! A waiting request is kept in a per-isolate table until it finishes. The runtime drops the
//! I/O of a request whose client went away, so its promises never settle and its entry would
//! stay: entries older than [`ABANDONED_AFTER_MS`] are dropped when the table grows.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use worker::js_sys::{Date, Function, Promise};
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
    /// Woken while being polled: poll again before waiting.
    woken: bool,
    /// `Date.now()` when the request arrived.
    started_ms: f64,
}

thread_local! {
    static TASKS: RefCell<HashMap<u64, Task>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Wakes a task by id: a stale waker (its task done) finds nothing and does nothing.
struct TaskWaker(u64);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        resume(self.0);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        resume(self.0);
    }
}

/// Runs `handler` until it first waits. Returns its value if it finished, else a promise of it.
pub fn run(handler: impl Future<Output = JsValue> + 'static) -> JsValue {
    let id = NEXT_ID.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    let started_ms = Date::now();
    let task = Task {
        future: None,
        resolve: None,
        woken: false,
        started_ms,
    };
    TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        if tasks.len() >= SWEEP_FROM {
            tasks.retain(|_, task| started_ms - task.started_ms < ABANDONED_AFTER_MS);
        }
        tasks.insert(id, task);
    });
    let mut future: Handler = Box::pin(handler);
    if let Poll::Ready(value) = poll(id, &mut future) {
        TASKS.with(|tasks| tasks.borrow_mut().remove(&id));
        return value;
    }
    let mut resolve = None;
    let promise = Promise::new(&mut |settle, _reject| resolve = Some(settle));
    TASKS.with(|tasks| {
        if let Some(task) = tasks.borrow_mut().get_mut(&id) {
            task.future = Some(future);
            task.resolve = resolve;
        }
    });
    promise.into()
}

/// Polls until the handler finishes or waits without having been woken meanwhile.
fn poll(id: u64, future: &mut Handler) -> Poll<JsValue> {
    let waker = Waker::from(Arc::new(TaskWaker(id)));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return Poll::Ready(value);
        }
        let woken = TASKS.with(|tasks| {
            tasks
                .borrow_mut()
                .get_mut(&id)
                .is_some_and(|task| std::mem::take(&mut task.woken))
        });
        if !woken {
            return Poll::Pending;
        }
    }
}

/// A wake-up: polls the task now, or, if it is being polled, has that poll go round again.
fn resume(id: u64) {
    let future = TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        let task = tasks.get_mut(&id)?;
        let future = task.future.take();
        if future.is_none() {
            task.woken = true;
        }
        future
    });
    let Some(mut future) = future else {
        return;
    };
    match poll(id, &mut future) {
        Poll::Ready(value) => {
            let task = TASKS.with(|tasks| tasks.borrow_mut().remove(&id));
            if let Some(resolve) = task.and_then(|task| task.resolve) {
                // Resolving with a Response cannot throw.
                let _ = resolve.call1(&JsValue::UNDEFINED, &value);
            }
        }
        Poll::Pending => TASKS.with(|tasks| {
            if let Some(task) = tasks.borrow_mut().get_mut(&id) {
                task.future = Some(future);
            }
        }),
    }
}
