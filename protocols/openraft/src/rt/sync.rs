//! Bounded mpsc, oneshot and async mutex for [`SimRt`](super::SimRt), as thin wrappers over
//! `tokio::sync` built with only its `sync` feature: no tokio runtime, no timer, no RNG (tokio's
//! `watch`, which does use an RNG, is replaced by [`SimWatch`](super::SimWatch)). Waiters are
//! woken in FIFO order, so task order is a function of the event order.

use openraft_rt::{
    Mpsc, MpscReceiver, MpscSender, MpscWeakSender, Mutex, Oneshot, OneshotSender, SendError,
    TryRecvError,
};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Bounded mpsc channel.
pub struct SimMpsc;

pub struct Sender<T>(mpsc::Sender<T>);
pub struct Receiver<T>(mpsc::Receiver<T>);
pub struct WeakSender<T>(mpsc::WeakSender<T>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}
impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        WeakSender(self.0.clone())
    }
}

impl Mpsc for SimMpsc {
    type Sender<T: Send> = Sender<T>;
    type Receiver<T: Send> = Receiver<T>;
    type WeakSender<T: Send> = WeakSender<T>;

    fn channel<T: Send>(buffer: usize) -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (Sender(tx), Receiver(rx))
    }
}

impl<T: Send> MpscSender<SimMpsc, T> for Sender<T> {
    fn send(&self, msg: T) -> impl Future<Output = Result<(), SendError<T>>> + Send {
        let tx = &self.0;
        async move { tx.send(msg).await.map_err(|e| SendError(e.0)) }
    }
    fn downgrade(&self) -> WeakSender<T> {
        WeakSender(self.0.downgrade())
    }
}

impl<T: Send> MpscReceiver<T> for Receiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + Send {
        self.0.recv()
    }
    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }
}

impl<T: Send> MpscWeakSender<SimMpsc, T> for WeakSender<T> {
    fn upgrade(&self) -> Option<Sender<T>> {
        self.0.upgrade().map(Sender)
    }
}

/// Oneshot channel.
pub struct SimOneshot;

pub struct OneshotTx<T>(oneshot::Sender<T>);

impl Oneshot for SimOneshot {
    type Sender<T: Send> = OneshotTx<T>;
    type Receiver<T: Send> = oneshot::Receiver<T>;
    type ReceiverError = oneshot::error::RecvError;

    fn channel<T: Send>() -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (OneshotTx(tx), rx)
    }
}

impl<T: Send> OneshotSender<T> for OneshotTx<T> {
    fn send(self, t: T) -> Result<(), T> {
        self.0.send(t)
    }
}

/// Async mutex (FIFO).
pub struct SimMutex<T>(tokio::sync::Mutex<T>);

impl<T: Send + 'static> Mutex<T> for SimMutex<T> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, T>;

    fn new(value: T) -> Self {
        SimMutex(tokio::sync::Mutex::new(value))
    }
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + Send {
        self.0.lock()
    }
}
