//! The network emulator: per-link latency, loss, duplication and ordering, partitions (cuts),
//! and message accounting by kind.
//!
//! Endpoints are numbered `0..n` (servers first, then clients; the simulator does not care).
//! A *cut* from `a` to `b` means nothing sent by `a` reaches `b`. A message sent across a cut is
//! dropped at once; a message in flight when a cut appears on its link is dropped on arrival,
//! even if the cut has healed by then (a TCP connection reset loses what was in flight).

use crate::{Latency, Nanos};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The behaviour of one directed link.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkModel {
    pub latency: Latency,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice (the copy has its own latency).
    pub duplicate: f64,
    /// FIFO (TCP-like): a message never overtakes an earlier one on the same link.
    /// Otherwise unordered (UDP-like).
    pub fifo: bool,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            latency: Latency::default(),
            loss: 0.0,
            duplicate: 0.0,
            fifo: true,
        }
    }
}

/// Counters for one message kind (or for all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KindStats {
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub bytes: u64,
}

/// Message accounting for a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    pub total: KindStats,
    /// Per message kind, in order of first appearance.
    pub by_kind: Vec<(&'static str, KindStats)>,
}

impl KindStats {
    fn minus(&self, o: &KindStats) -> KindStats {
        KindStats {
            sent: self.sent - o.sent,
            delivered: self.delivered - o.delivered,
            dropped: self.dropped - o.dropped,
            duplicated: self.duplicated - o.duplicated,
            bytes: self.bytes - o.bytes,
        }
    }
}

impl NetStats {
    /// What happened between an earlier snapshot and this one.
    pub fn since(&self, earlier: &NetStats) -> NetStats {
        NetStats {
            total: self.total.minus(&earlier.total),
            by_kind: self
                .by_kind
                .iter()
                .map(|(k, s)| {
                    let before = earlier
                        .by_kind
                        .iter()
                        .find(|(e, _)| e == k)
                        .map(|(_, s)| s.clone())
                        .unwrap_or_default();
                    (*k, s.minus(&before))
                })
                .collect(),
        }
    }

    fn kind(&mut self, kind: &'static str) -> &mut KindStats {
        // Few kinds: a linear scan comparing pointers first is faster than hashing.
        let pos = self
            .by_kind
            .iter()
            .position(|(k, _)| std::ptr::eq(*k, kind) || *k == kind);
        let i = match pos {
            Some(i) => i,
            None => {
                self.by_kind.push((kind, KindStats::default()));
                self.by_kind.len() - 1
            }
        };
        &mut self.by_kind[i].1
    }

    pub(crate) fn on_send(&mut self, kind: &'static str, bytes: usize) {
        self.total.sent += 1;
        self.total.bytes += bytes as u64;
        let k = self.kind(kind);
        k.sent += 1;
        k.bytes += bytes as u64;
    }

    pub(crate) fn on_drop(&mut self, kind: &'static str) {
        self.total.dropped += 1;
        self.kind(kind).dropped += 1;
    }

    pub(crate) fn on_deliver(&mut self, kind: &'static str) {
        self.total.delivered += 1;
        self.kind(kind).delivered += 1;
    }

    pub(crate) fn on_duplicate(&mut self, kind: &'static str) {
        self.total.duplicated += 1;
        self.kind(kind).duplicated += 1;
    }
}

/// What the network decided for one message at send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost (loss) or sent across a cut.
    Dropped,
    /// Arrives at `at`; a duplicate, if any, at `dup`.
    Deliver { at: Nanos, dup: Option<Nanos> },
}

/// The emulated network between `n` endpoints.
pub struct Network {
    n: usize,
    links: Vec<LinkModel>,
    cut: Vec<bool>,
    last_cut: Vec<Option<Nanos>>,
    last_arrival: Vec<Nanos>,
    rng: ChaCha8Rng,
    pub stats: NetStats,
}

impl Network {
    /// A network of `n` endpoints where every link behaves like `link`.
    pub fn uniform(n: usize, link: LinkModel, rng: ChaCha8Rng) -> Self {
        Self::with_links(n, vec![link; n * n], rng)
    }

    /// A network with one model per directed link, indexed `from * n + to`.
    pub fn with_links(n: usize, links: Vec<LinkModel>, rng: ChaCha8Rng) -> Self {
        assert_eq!(links.len(), n * n, "one link model per ordered pair");
        Network {
            n,
            links,
            cut: vec![false; n * n],
            last_cut: vec![None; n * n],
            last_arrival: vec![0; n * n],
            rng,
            stats: NetStats::default(),
        }
    }

    pub fn endpoints(&self) -> usize {
        self.n
    }

    fn ix(&self, from: usize, to: usize) -> usize {
        debug_assert!(from < self.n && to < self.n);
        from * self.n + to
    }

    pub fn link(&self, from: usize, to: usize) -> &LinkModel {
        &self.links[self.ix(from, to)]
    }

    pub fn set_link(&mut self, from: usize, to: usize, link: LinkModel) {
        let i = self.ix(from, to);
        self.links[i] = link;
    }

    /// Decides the fate of a message sent now from `from` to `to`, and counts it as sent
    /// (and as dropped if it is lost).
    pub fn send(
        &mut self,
        from: usize,
        to: usize,
        now: Nanos,
        kind: &'static str,
        bytes: usize,
    ) -> Fate {
        self.stats.on_send(kind, bytes);
        let i = self.ix(from, to);
        if self.cut[i] {
            self.stats.on_drop(kind);
            return Fate::Dropped;
        }
        let link = &self.links[i];
        if link.loss > 0.0 && self.rng.random::<f64>() < link.loss {
            self.stats.on_drop(kind);
            return Fate::Dropped;
        }
        let dup = link.duplicate > 0.0 && self.rng.random::<f64>() < link.duplicate;
        let fifo = link.fifo;
        let mut at = now + link.latency.sample(&mut self.rng);
        if fifo {
            at = at.max(self.last_arrival[i]);
            self.last_arrival[i] = at;
        }
        let dup = if dup {
            self.stats.on_duplicate(kind);
            self.stats.on_send(kind, bytes);
            let mut d = now + self.links[i].latency.sample(&mut self.rng);
            if fifo {
                d = d.max(self.last_arrival[i]);
                self.last_arrival[i] = d;
            }
            Some(d)
        } else {
            None
        };
        Fate::Deliver { at, dup }
    }

    /// Whether a message sent at `sent_at` survives to arrive now: the link must not be cut, and
    /// must not have been cut at any moment since the message was sent.
    pub fn survives(&self, from: usize, to: usize, sent_at: Nanos) -> bool {
        let i = self.ix(from, to);
        !self.cut[i] && self.last_cut[i].is_none_or(|t| t < sent_at)
    }

    /// Cuts the directed link `from → to` at time `now`.
    pub fn cut(&mut self, from: usize, to: usize, now: Nanos) {
        if from == to {
            return;
        }
        let i = self.ix(from, to);
        if !self.cut[i] {
            self.cut[i] = true;
            self.last_cut[i] = Some(now);
        }
    }

    /// Restores the directed link `from → to`.
    pub fn heal_link(&mut self, from: usize, to: usize) {
        let i = self.ix(from, to);
        self.cut[i] = false;
    }

    /// Heals every cut.
    pub fn heal_all(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = false);
    }

    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.cut[self.ix(from, to)]
    }

    /// Whether any link is cut.
    pub fn any_cut(&self) -> bool {
        self.cut.iter().any(|&c| c)
    }

    /// Cuts every link between endpoints of different components; endpoints that appear in no
    /// component keep all their links. Existing cuts stay (call [`heal_all`](Self::heal_all) first
    /// for a fresh partition).
    pub fn partition(&mut self, components: &[Vec<usize>], now: Nanos) {
        let mut comp = vec![usize::MAX; self.n];
        for (c, members) in components.iter().enumerate() {
            for &m in members {
                comp[m] = c;
            }
        }
        for a in 0..self.n {
            for b in 0..self.n {
                if comp[a] != usize::MAX && comp[b] != usize::MAX && comp[a] != comp[b] {
                    self.cut(a, b, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Seeds, Stream};

    fn net(n: usize, link: LinkModel) -> Network {
        Network::uniform(n, link, Seeds::new(1).rng(Stream::Network))
    }

    #[test]
    fn fifo_never_reorders() {
        let mut nw = net(
            2,
            LinkModel {
                latency: Latency::Uniform {
                    min_ms: 0.0,
                    max_ms: 10.0,
                },
                ..LinkModel::default()
            },
        );
        let mut last = 0;
        for t in 0..1000 {
            match nw.send(0, 1, t * 10, "m", 1) {
                Fate::Deliver { at, .. } => {
                    assert!(at >= last);
                    last = at;
                }
                Fate::Dropped => panic!("no loss configured"),
            }
        }
    }

    #[test]
    fn unordered_can_reorder() {
        let mut nw = net(
            2,
            LinkModel {
                latency: Latency::Uniform {
                    min_ms: 0.0,
                    max_ms: 10.0,
                },
                fifo: false,
                ..LinkModel::default()
            },
        );
        let ats: Vec<Nanos> = (0..100)
            .map(|t| match nw.send(0, 1, t, "m", 1) {
                Fate::Deliver { at, .. } => at,
                Fate::Dropped => unreachable!(),
            })
            .collect();
        assert!(ats.windows(2).any(|w| w[1] < w[0]));
    }

    #[test]
    fn loss_rate_is_respected() {
        let mut nw = net(
            2,
            LinkModel {
                loss: 0.3,
                ..LinkModel::default()
            },
        );
        let lost = (0..20_000)
            .filter(|&t| nw.send(0, 1, t, "m", 1) == Fate::Dropped)
            .count();
        assert!((lost as f64 / 20_000.0 - 0.3).abs() < 0.02, "lost {lost}");
        assert_eq!(nw.stats.total.dropped as usize, lost);
    }

    #[test]
    fn in_flight_message_dies_when_cut_appears() {
        let mut nw = net(2, LinkModel::default());
        assert!(matches!(nw.send(0, 1, 0, "m", 1), Fate::Deliver { .. }));
        nw.cut(0, 1, 5);
        nw.heal_all();
        assert!(!nw.survives(0, 1, 0), "cut appeared while in flight");
        assert!(nw.survives(0, 1, 6), "sent after the cut healed");
        assert!(nw.survives(1, 0, 0), "the other direction was never cut");
    }

    #[test]
    fn partition_leaves_unlisted_endpoints_connected() {
        let mut nw = net(4, LinkModel::default());
        nw.partition(&[vec![0], vec![1, 2]], 0);
        assert!(nw.is_cut(0, 1) && nw.is_cut(2, 0));
        assert!(!nw.is_cut(1, 2));
        assert!(!nw.is_cut(3, 0) && !nw.is_cut(1, 3));
    }
}
