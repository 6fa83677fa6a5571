//! A watch channel whose receivers are woken in FIFO order of registration.
//!
//! tokio's `watch` spreads waiting receivers over 8 `Notify` slots picked by a thread-local RNG
//! seeded from `RandomState` whenever tokio's `rt` feature is on, which makes the order in which
//! openraft's tasks wake differ from run to run. This one has no randomness: one version
//! counter, one value behind a `RwLock`, and a list of `(receiver id, waker)` woken in order.

use openraft_rt::watch::{RecvError, SendError};
use openraft_rt::{Watch, WatchReceiver, WatchSender};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::task::{Context, Poll, Waker};

pub struct SimWatch;

struct State {
    version: u64,
    senders: usize,
    receivers: usize,
    next_rx: u64,
    waiters: Vec<(u64, Waker)>,
}

struct Shared<T> {
    value: RwLock<T>,
    state: Mutex<State>,
}

impl<T> Shared<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("watch state")
    }
    fn notify(&self) {
        let waiters = {
            let mut st = self.state();
            st.version += 1;
            std::mem::take(&mut st.waiters)
        };
        for (_, w) in waiters {
            w.wake();
        }
    }
}

pub struct WSender<T> {
    shared: Arc<Shared<T>>,
}

pub struct WReceiver<T> {
    shared: Arc<Shared<T>>,
    id: u64,
    seen: u64,
}

impl Watch for SimWatch {
    type Sender<T: Send + Sync> = WSender<T>;
    type Receiver<T: Send + Sync> = WReceiver<T>;
    type Ref<'a, T: Send + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: Send + Sync>(init: T) -> (Self::Sender<T>, Self::Receiver<T>) {
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            state: Mutex::new(State {
                version: 0,
                senders: 1,
                receivers: 1,
                next_rx: 1,
                waiters: Vec::new(),
            }),
        });
        (
            WSender {
                shared: shared.clone(),
            },
            WReceiver {
                shared,
                id: 0,
                seen: 0,
            },
        )
    }
}

impl<T> Clone for WSender<T> {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        WSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for WSender<T> {
    fn drop(&mut self) {
        let waiters = {
            let mut st = self.shared.state();
            st.senders -= 1;
            if st.senders > 0 {
                return;
            }
            std::mem::take(&mut st.waiters)
        };
        for (_, w) in waiters {
            w.wake();
        }
    }
}

impl<T> Clone for WReceiver<T> {
    fn clone(&self) -> Self {
        let id = {
            let mut st = self.shared.state();
            st.receivers += 1;
            st.next_rx += 1;
            st.next_rx
        };
        WReceiver {
            shared: self.shared.clone(),
            id,
            seen: self.seen,
        }
    }
}

impl<T> Drop for WReceiver<T> {
    fn drop(&mut self) {
        let mut st = self.shared.state();
        st.receivers -= 1;
        let id = self.id;
        st.waiters.retain(|(r, _)| *r != id);
    }
}

impl<T: Send + Sync> WatchSender<SimWatch, T> for WSender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.state().receivers == 0 {
            return Err(SendError(value));
        }
        *self.shared.value.write().expect("watch value") = value;
        self.shared.notify();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = {
            let mut v = self.shared.value.write().expect("watch value");
            modify(&mut v)
        };
        if modified {
            self.shared.notify();
        }
        modified
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.value.read().expect("watch value")
    }

    fn subscribe(&self) -> WReceiver<T> {
        let (id, seen) = {
            let mut st = self.shared.state();
            st.receivers += 1;
            st.next_rx += 1;
            (st.next_rx, st.version)
        };
        WReceiver {
            shared: self.shared.clone(),
            id,
            seen,
        }
    }
}

/// The future of [`WatchReceiver::changed`]; deregisters its waker when dropped.
pub struct Changed<'a, T> {
    rx: &'a mut WReceiver<T>,
    registered: bool,
}

impl<T> Future for Changed<'_, T> {
    type Output = Result<(), RecvError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.rx.shared.state();
        if st.version != this.rx.seen {
            this.rx.seen = st.version;
            drop(st);
            this.registered = false;
            return Poll::Ready(Ok(()));
        }
        if st.senders == 0 {
            return Poll::Ready(Err(RecvError(())));
        }
        let id = this.rx.id;
        match st.waiters.iter_mut().find(|(r, _)| *r == id) {
            Some((_, w)) => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
            }
            None => st.waiters.push((id, cx.waker().clone())),
        }
        this.registered = true;
        Poll::Pending
    }
}

impl<T> Drop for Changed<'_, T> {
    fn drop(&mut self) {
        if self.registered {
            let id = self.rx.id;
            self.rx.shared.state().waiters.retain(|(r, _)| *r != id);
        }
    }
}

impl<T: Send + Sync> WatchReceiver<SimWatch, T> for WReceiver<T> {
    fn changed(&mut self) -> impl Future<Output = Result<(), RecvError>> + Send {
        Changed {
            rx: self,
            registered: false,
        }
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.value.read().expect("watch value")
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        self.seen = self.shared.state().version;
        self.shared.value.read().expect("watch value")
    }
}
