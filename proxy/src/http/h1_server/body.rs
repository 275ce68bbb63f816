//! The hand-over of one HTTP/1.1 request body from the client connection, which reads and
//! decodes it, to the exchange, which passes it on to a member: one frame at a time, so a body
//! is never read further ahead of the member than one frame.
//!
//! The connection holds the [`BodyFeed`], the exchange the [`H1Body`]. The connection learns
//! from the feed when the body is first asked for (that is when `100 Continue` is due) and
//! when the exchange gave up on it (the member answered early, or the client stalled): the
//! rest of the body is then never read, and the connection closes after its response.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::http::client_body::ClientBodyError;

/// What both ends share.
#[derive(Debug, Default)]
struct Slot {
    /// The next frame, not taken yet.
    frame: Option<Result<Frame<Bytes>, ClientBodyError>>,
    /// The feed has nothing more to give once `frame` is taken.
    finished: bool,
    /// The exchange asked for the body at least once.
    wanted: bool,
    /// The exchange dropped the body.
    abandoned: bool,
    /// Body bytes not handed over yet, when the length is known.
    remaining: Option<u64>,
    body_waker: Option<Waker>,
    feed_waker: Option<Waker>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // Neither end panics while holding the lock; a poisoned one is still consistent.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A new body of `length` bytes (`None`: chunked), with its feed.
pub fn channel(length: Option<u64>) -> (BodyFeed, H1Body) {
    let slot = Arc::new(Mutex::new(Slot {
        remaining: length,
        ..Slot::default()
    }));
    (BodyFeed { slot: slot.clone() }, H1Body { slot })
}

/// The exchange's end: an `http_body::Body`.
#[derive(Debug)]
pub struct H1Body {
    slot: Arc<Mutex<Slot>>,
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let mut slot = lock(&self.slot);
        if let Some(frame) = slot.frame.take() {
            if let Some(data) = frame.as_ref().ok().and_then(Frame::data_ref) {
                let len = data.len() as u64;
                slot.remaining = slot.remaining.map(|left| left.saturating_sub(len));
            }
            wake(&mut slot.feed_waker);
            return Poll::Ready(Some(frame));
        }
        if slot.finished {
            return Poll::Ready(None);
        }
        if !slot.wanted {
            slot.wanted = true;
            wake(&mut slot.feed_waker);
        }
        store(&mut slot.body_waker, cx);
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let slot = lock(&self.slot);
        slot.finished && slot.frame.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let slot = lock(&self.slot);
        let pending = slot.frame.as_ref().and_then(|frame| {
            frame
                .as_ref()
                .ok()?
                .data_ref()
                .map(|data| data.len() as u64)
        });
        match slot.remaining {
            Some(left) => SizeHint::with_exact(left.max(pending.unwrap_or(0))),
            None => SizeHint::default(),
        }
    }
}

impl Drop for H1Body {
    fn drop(&mut self) {
        let mut slot = lock(&self.slot);
        slot.abandoned = true;
        slot.frame = None;
        wake(&mut slot.feed_waker);
    }
}

/// The connection's end.
#[derive(Debug)]
pub struct BodyFeed {
    slot: Arc<Mutex<Slot>>,
}

/// Whether the feed can take a frame now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// The slot is empty.
    Free,
    /// The exchange dropped the body: nothing more will be taken.
    Abandoned,
}

impl BodyFeed {
    /// Ready once the body has been asked for, or abandoned.
    pub fn poll_wanted(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut slot = lock(&self.slot);
        if slot.wanted || slot.abandoned {
            return Poll::Ready(());
        }
        store(&mut slot.feed_waker, cx);
        Poll::Pending
    }

    /// Ready once the next frame can be given.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Room> {
        let mut slot = lock(&self.slot);
        if slot.abandoned {
            return Poll::Ready(Room::Abandoned);
        }
        if slot.frame.is_none() {
            return Poll::Ready(Room::Free);
        }
        store(&mut slot.feed_waker, cx);
        Poll::Pending
    }

    /// Gives the next frame (after [`BodyFeed::poll_room`] said `Free`); `last` ends the body.
    pub fn give(&self, frame: Frame<Bytes>, last: bool) {
        self.put(Ok(frame), last);
    }

    /// Ends the body with no further frame.
    pub fn finish(&self) {
        let mut slot = lock(&self.slot);
        slot.finished = true;
        wake(&mut slot.body_waker);
    }

    /// Ends the body with `error`.
    pub fn fail(&self, error: ClientBodyError) {
        self.put(Err(error), true);
    }

    fn put(&self, frame: Result<Frame<Bytes>, ClientBodyError>, last: bool) {
        let mut slot = lock(&self.slot);
        if slot.abandoned {
            return;
        }
        slot.frame = Some(frame);
        slot.finished |= last;
        wake(&mut slot.body_waker);
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(waker) = waker.take() {
        waker.wake();
    }
}

fn store(waker: &mut Option<Waker>, cx: &mut Context<'_>) {
    match waker {
        Some(stored) if stored.will_wake(cx.waker()) => {}
        _ => *waker = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::Waker;

    use super::*;

    fn poll(body: &mut H1Body) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn frames_are_handed_over_one_at_a_time_and_the_first_ask_is_seen() {
        let cx = &mut Context::from_waker(Waker::noop());
        let (feed, mut body) = channel(Some(5));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(feed.poll_wanted(cx).is_pending(), "wanted before any poll");
        assert!(poll(&mut body).is_pending());
        assert!(feed.poll_wanted(cx).is_ready());
        assert_eq!(feed.poll_room(cx), Poll::Ready(Room::Free));
        feed.give(Frame::data(Bytes::from_static(b"abc")), false);
        assert!(
            feed.poll_room(cx).is_pending(),
            "a second frame fit in the slot"
        );
        let Poll::Ready(Some(Ok(frame))) = poll(&mut body) else {
            panic!("no frame");
        };
        assert_eq!(frame.into_data().ok().as_deref(), Some(&b"abc"[..]));
        assert_eq!(body.size_hint().exact(), Some(2));
        feed.give(Frame::data(Bytes::from_static(b"de")), true);
        assert!(
            !body.is_end_stream(),
            "ended with a frame still in the slot"
        );
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(body.is_end_stream());
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn a_dropped_body_is_abandoned_and_takes_nothing_more() {
        let cx = &mut Context::from_waker(Waker::noop());
        let (feed, body) = channel(None);
        assert_eq!(body.size_hint().exact(), None);
        feed.give(Frame::data(Bytes::from_static(b"abc")), false);
        drop(body);
        assert_eq!(feed.poll_room(cx), Poll::Ready(Room::Abandoned));
        assert!(feed.poll_wanted(cx).is_ready());
    }

    #[test]
    fn a_failure_reaches_the_exchange() {
        let (feed, mut body) = channel(Some(10));
        feed.fail(ClientBodyError::Closed);
        assert!(matches!(
            poll(&mut body),
            Poll::Ready(Some(Err(ClientBodyError::Closed)))
        ));
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }
}
