//! Two futures awaited together: both are polled at once, so two storage reads that do not
//! depend on each other cost one round trip, not two. (The platform's executor or the tests'
//! `block_on` drives it; nothing here knows which.)

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

/// Both outputs, once both futures are done.
pub(crate) async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    poll_fn(|context| {
        if done_a.is_none() {
            if let Poll::Ready(output) = a.as_mut().poll(context) {
                done_a = Some(output);
            }
        }
        if done_b.is_none() {
            if let Poll::Ready(output) = b.as_mut().poll(context) {
                done_b = Some(output);
            }
        }
        if done_a.is_some() && done_b.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (
        done_a.expect("polled to completion"),
        done_b.expect("polled to completion"),
    )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Pends until `open` is set; records that it was polled.
    async fn gate(open: &Cell<bool>, polled: &Cell<bool>, value: u8) -> u8 {
        poll_fn(|_| {
            polled.set(true);
            if open.get() {
                Poll::Ready(value)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    #[test]
    fn both_start_at_once_and_both_outputs_arrive() {
        let (open_a, polled_a) = (Cell::new(false), Cell::new(false));
        let (open_b, polled_b) = (Cell::new(false), Cell::new(false));
        let mut both = pin!(join(
            gate(&open_a, &polled_a, 1),
            gate(&open_b, &polled_b, 2)
        ));
        let mut context = Context::from_waker(Waker::noop());
        assert!(both.as_mut().poll(&mut context).is_pending());
        assert!(
            polled_a.get() && polled_b.get(),
            "the second started while the first waits"
        );
        open_b.set(true);
        assert!(both.as_mut().poll(&mut context).is_pending());
        open_a.set(true);
        assert_eq!(both.as_mut().poll(&mut context), Poll::Ready((1, 2)));
    }
}
