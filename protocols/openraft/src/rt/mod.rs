//! A deterministic, single-threaded executor whose clock is the simulator's virtual clock, and the
//! openraft [`AsyncRuntime`] ([`SimRt`]) that runs on it.
//!
//! * One [`Executor`] per simulated server node. It owns every task spawned while it is
//!   *installed* (see [`Executor::enter`]), a FIFO run queue and a timer map keyed by
//!   `(deadline ns, sequence)`. Nothing here reads the wall clock or a global RNG.
//! * The host (the simulator process) sets the executor's clock to the node's local time, runs
//!   every ready task to quiescence ([`Executor::run_until_stalled`]) and asks for the earliest
//!   timer deadline, for which it arms a simulator timer.
//! * openraft's runtime functions are static (`spawn`, `sleep`, `Instant::now`), so they find the
//!   executor through a thread-local pointer that is set only while a host handler runs.
//! * `JoinHandle` drop detaches (openraft relies on it); dropping the executor cancels and drops
//!   every task (a crash).
//! * `thread_rng()` returns a small RNG seeded from the executor's seed and a call counter: the
//!   order of calls is deterministic, so openraft's election timeouts are a function of the
//!   node's seed.

mod sync;
mod watch;

pub use sync::{SimMpsc, SimMutex, SimOneshot};
pub use watch::SimWatch;

use futures::channel::oneshot as foneshot;
use futures::FutureExt;
use openraft_rt::AsyncRuntime;
use rand010::rngs::SmallRng;
use rand010::SeedableRng;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

type Queue = Arc<Mutex<VecDeque<async_task::Runnable<u64>>>>;

/// Counters of one executor (for the hosting-overhead figures).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    pub spawned: u64,
    pub polls: u64,
    pub timers_fired: u64,
    pub panics: u64,
}

/// The per-node executor. Not shared between threads: it moves with its simulator process.
pub struct Executor {
    id: u64,
    now: Cell<u64>,
    timer_seq: Cell<u64>,
    timers: RefCell<BTreeMap<(u64, u64), Waker>>,
    queue: Queue,
    tasks: RefCell<BTreeMap<u64, async_task::Task<(), u64>>>,
    next_task: Cell<u64>,
    rng_seed: u64,
    rng_calls: Cell<u64>,
    dead: Cell<bool>,
    stats: Cell<ExecStats>,
}

static EXEC_IDS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The executor whose handler is running on this thread (null outside handlers).
    static CURRENT: Cell<*const Executor> = const { Cell::new(std::ptr::null()) };
    /// The last virtual time seen on this thread, for `Instant::now()` outside handlers
    /// (formatting metrics after a run). Never used for decisions inside a run.
    static LAST_NOW: Cell<u64> = const { Cell::new(0) };
}

/// While alive, `exec` is the current executor of this thread.
pub struct Enter<'a> {
    prev: *const Executor,
    _exec: &'a Executor,
}

impl Drop for Enter<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

fn with_current<R>(f: impl FnOnce(&Executor) -> R) -> R {
    let p = CURRENT.with(|c| c.get());
    assert!(
        !p.is_null(),
        "openraft runtime used outside a simulated node handler"
    );
    // SAFETY: `CURRENT` is non-null only while an `Enter` guard borrows the executor, and the
    // executor is neither moved nor dropped while borrowed.
    f(unsafe { &*p })
}

fn try_current<R>(f: impl FnOnce(&Executor) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        None
    } else {
        // SAFETY: as in `with_current`.
        Some(f(unsafe { &*p }))
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Executor {
    /// A new executor at virtual time `now` whose `thread_rng()` derives from `seed`.
    pub fn new(now: u64, seed: u64) -> Self {
        Executor {
            id: EXEC_IDS.fetch_add(1, Ordering::Relaxed),
            now: Cell::new(now),
            timer_seq: Cell::new(0),
            timers: RefCell::new(BTreeMap::new()),
            queue: Arc::new(Mutex::new(VecDeque::new())),
            tasks: RefCell::new(BTreeMap::new()),
            next_task: Cell::new(0),
            rng_seed: seed,
            rng_calls: Cell::new(0),
            dead: Cell::new(false),
            stats: Cell::new(ExecStats::default()),
        }
    }

    /// Makes this the current executor of the thread until the guard drops.
    pub fn enter(&self) -> Enter<'_> {
        let prev = CURRENT.with(|c| c.replace(self as *const Executor));
        Enter { prev, _exec: self }
    }

    pub fn now(&self) -> u64 {
        self.now.get()
    }

    /// Moves the clock forward (never back).
    pub fn advance_to(&self, t: u64) {
        if t > self.now.get() {
            self.now.set(t);
        }
        LAST_NOW.with(|c| c.set(self.now.get()));
    }

    pub fn stats(&self) -> ExecStats {
        self.stats.get()
    }

    /// Number of live tasks.
    pub fn live_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    fn bump(&self, f: impl FnOnce(&mut ExecStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Spawns `fut` on this executor (it need not be installed). The task runs at the next
    /// [`run_until_stalled`](Self::run_until_stalled).
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = foneshot::channel();
        if self.dead.get() {
            return JoinHandle(rx); // sender dropped: the handle reports Cancelled
        }
        let id = self.next_task.get();
        self.next_task.set(id + 1);
        self.bump(|s| s.spawned += 1);
        let wrapped = async move {
            let r = AssertUnwindSafe(fut).catch_unwind().await;
            let r = r.map_err(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                try_current(|e| e.bump(|s| s.panics += 1));
                JoinError::Panic(msg)
            });
            let _ = tx.send(r);
        };
        let q = self.queue.clone();
        let schedule = move |r: async_task::Runnable<u64>| {
            q.lock().expect("queue").push_back(r);
        };
        let (runnable, task) = async_task::Builder::new()
            .metadata(id)
            .spawn(move |_| wrapped, schedule);
        self.tasks.borrow_mut().insert(id, task);
        runnable.schedule();
        JoinHandle(rx)
    }

    fn pop_runnable(&self) -> Option<async_task::Runnable<u64>> {
        self.queue.lock().expect("queue").pop_front()
    }

    /// Runs every ready task, and every timer due at the current time, until nothing is ready.
    /// Must be called with this executor installed. Returns the earliest pending deadline.
    pub fn run_until_stalled(&self) -> Option<u64> {
        loop {
            while let Some(r) = self.pop_runnable() {
                let id = *r.metadata();
                self.bump(|s| s.polls += 1);
                r.run();
                let done = self
                    .tasks
                    .borrow()
                    .get(&id)
                    .is_some_and(|t| t.is_finished());
                if done {
                    let t = self.tasks.borrow_mut().remove(&id);
                    drop(t);
                }
            }
            let now = self.now.get();
            let due = {
                let mut timers = self.timers.borrow_mut();
                match timers.first_key_value() {
                    Some((&(dl, _), _)) if dl <= now => timers.pop_first().map(|(_, w)| w),
                    _ => None,
                }
            };
            match due {
                Some(w) => {
                    self.bump(|s| s.timers_fired += 1);
                    w.wake();
                }
                None => break,
            }
        }
        self.next_deadline()
    }

    /// The earliest timer deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.borrow().first_key_value().map(|(k, _)| k.0)
    }

    /// Cancels and drops every task (a crash). Must be called with this executor installed, so
    /// that futures dropping their timers find it.
    pub fn shutdown(&self) {
        self.dead.set(true);
        loop {
            let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
            let had_tasks = !tasks.is_empty();
            drop(tasks);
            let mut dropped = false;
            while let Some(r) = self.pop_runnable() {
                drop(r);
                dropped = true;
            }
            if !had_tasks && !dropped {
                break;
            }
        }
        self.timers.borrow_mut().clear();
    }

    fn register_timer(&self, key: Option<(u64, u64)>, deadline: u64, waker: &Waker) -> (u64, u64) {
        let mut timers = self.timers.borrow_mut();
        if let Some(k) = key {
            if let Some(w) = timers.get_mut(&k) {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                return k;
            }
        }
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq + 1);
        let k = (deadline, seq);
        timers.insert(k, waker.clone());
        k
    }

    fn next_rng(&self) -> SmallRng {
        let n = self.rng_calls.get();
        self.rng_calls.set(n + 1);
        SmallRng::seed_from_u64(splitmix(self.rng_seed ^ splitmix(n)))
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if !self.dead.get() {
            let _g = self.enter();
            self.shutdown();
        }
    }
}

/// Virtual time in nanoseconds (the node's local clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimInstant(pub u64);

fn dur_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for SimInstant {
    type Output = SimInstant;
    fn add(self, d: Duration) -> SimInstant {
        SimInstant(self.0.saturating_add(dur_ns(d)))
    }
}
impl AddAssign<Duration> for SimInstant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}
impl Sub<Duration> for SimInstant {
    type Output = SimInstant;
    fn sub(self, d: Duration) -> SimInstant {
        SimInstant(self.0.saturating_sub(dur_ns(d)))
    }
}
impl SubAssign<Duration> for SimInstant {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}
impl Sub<SimInstant> for SimInstant {
    type Output = Duration;
    fn sub(self, o: SimInstant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(o.0))
    }
}

impl openraft_rt::Instant for SimInstant {
    fn now() -> Self {
        match try_current(|e| e.now()) {
            Some(t) => SimInstant(t),
            None => SimInstant(LAST_NOW.with(|c| c.get())),
        }
    }
}

/// A timer future on the current executor's virtual clock.
#[derive(Debug)]
pub struct Sleep {
    deadline: u64,
    key: Option<(u64, u64)>,
    exec: u64,
}

impl Sleep {
    fn until(deadline: u64) -> Sleep {
        Sleep {
            deadline,
            key: None,
            exec: 0,
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        with_current(|e| {
            if e.now() >= this.deadline {
                if let Some(k) = this.key.take() {
                    e.timers.borrow_mut().remove(&k);
                }
                return Poll::Ready(());
            }
            this.exec = e.id;
            this.key = Some(e.register_timer(this.key, this.deadline, cx.waker()));
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let exec = self.exec;
            try_current(|e| {
                if e.id == exec {
                    if let Ok(mut t) = e.timers.try_borrow_mut() {
                        t.remove(&k);
                    }
                }
            });
        }
    }
}

pin_project_lite::pin_project! {
    /// A future with a virtual-time deadline.
    pub struct Timeout<F> {
        #[pin]
        fut: F,
        sleep: Sleep,
    }
}

impl<R, F: Future<Output = R>> Future for Timeout<F> {
    type Output = Result<R, Elapsed>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The deadline of a [`Timeout`] passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline has elapsed")
    }
}
impl std::error::Error for Elapsed {}

/// Why a task did not produce its output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    Panic(String),
    Cancelled,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panic(m) => write!(f, "task panicked: {m}"),
            JoinError::Cancelled => write!(f, "task cancelled"),
        }
    }
}
impl std::error::Error for JoinError {}

/// Awaits a task's output. Dropping it detaches the task (the executor keeps running it).
#[derive(Debug)]
pub struct JoinHandle<T>(foneshot::Receiver<Result<T, JoinError>>);

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.0).poll(cx) {
            Poll::Ready(Ok(r)) => Poll::Ready(r),
            Poll::Ready(Err(_)) => Poll::Ready(Err(JoinError::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// openraft's `AsyncRuntime` on the simulator's virtual clock.
#[derive(Debug, Default)]
pub struct SimRt {
    seed: u64,
}

impl AsyncRuntime for SimRt {
    type JoinError = JoinError;
    type JoinHandle<T: Send + 'static> = JoinHandle<T>;
    type Sleep = Sleep;
    type Instant = SimInstant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + Send> = Timeout<T>;
    type ThreadLocalRng = SmallRng;

    #[track_caller]
    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + Send + 'static,
        T::Output: Send + 'static,
    {
        with_current(|e| e.spawn(future))
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        let now = with_current(|e| e.now());
        Sleep::until(now.saturating_add(dur_ns(duration)))
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Sleep::until(deadline.0)
    }

    fn timeout<R, F: Future<Output = R> + Send>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            fut: future,
            sleep: Self::sleep(duration),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + Send>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            fut: future,
            sleep: Sleep::until(deadline.0),
        }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        matches!(join_error, JoinError::Panic(_))
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        with_current(|e| e.next_rng())
    }

    type Mpsc = SimMpsc;
    type Watch = SimWatch;
    type Oneshot = SimOneshot;
    type Mutex<T: Send + 'static> = SimMutex<T>;

    fn new(_threads: usize) -> Self {
        SimRt { seed: 0 }
    }

    /// Runs `future` on a fresh executor whose clock jumps from timer to timer (for tests of the
    /// runtime itself; simulated nodes are driven by their host instead).
    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        let exec = Executor::new(0, self.seed);
        let _g = exec.enter();
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let root = async move {
            let v = future.await;
            *out.lock().expect("slot") = Some(v);
        };
        let q = exec.queue.clone();
        let schedule = move |r: async_task::Runnable<u64>| {
            q.lock().expect("queue").push_back(r);
        };
        // SAFETY: the root task is dropped (or has finished) before this function returns, so
        // it never outlives the borrows in `future`, and it only runs on this thread.
        let (runnable, task) = unsafe {
            async_task::Builder::new()
                .metadata(u64::MAX)
                .spawn_unchecked(move |_| root, schedule)
        };
        runnable.schedule();
        let result = loop {
            exec.run_until_stalled();
            if let Some(v) = slot.lock().expect("slot").take() {
                break v;
            }
            let next = exec.timers.borrow().first_key_value().map(|(k, _)| k.0);
            match next {
                Some(t) => exec.advance_to(t),
                None => {
                    drop(task);
                    exec.shutdown();
                    panic!(
                        "block_on: deadlock at {} ns ({} live tasks)",
                        exec.now(),
                        exec.live_tasks()
                    );
                }
            }
        };
        drop(task);
        exec.shutdown();
        result
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, std::io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        std::future::ready(Ok(f()))
    }
}
