//! One master seed split into independent ChaCha streams, so that changing one part of an
//! experiment (say, the workload) does not reshuffle the others (network, faults, nodes).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The independent random streams of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Latency, loss and duplication decisions.
    Network,
    /// Op generation, key choice, think times.
    Workload,
    /// Random fault generators and random partition shapes.
    Faults,
    /// The protocol's own choices on one node (timer ranges, random choices).
    Node(u64),
    /// Anything else a component wants to keep separate, by number.
    Other(u64),
}

impl Stream {
    fn number(self) -> u64 {
        match self {
            Stream::Network => 1,
            Stream::Workload => 2,
            Stream::Faults => 3,
            Stream::Other(k) => 1_000 + k,
            Stream::Node(i) => 1 << 32 | i,
        }
    }
}

/// The master seed of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeds {
    master: u64,
}

impl Seeds {
    pub fn new(master: u64) -> Self {
        Seeds { master }
    }

    pub fn master(&self) -> u64 {
        self.master
    }

    /// The generator of one stream: ChaCha8 keyed by the master seed, on its own stream number.
    pub fn rng(&self, stream: Stream) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.master);
        rng.set_stream(stream.number());
        rng
    }

    /// A derived 64-bit seed for a stream (for components that seed their own generator).
    pub fn derive(&self, stream: Stream) -> u64 {
        use rand::RngCore;
        self.rng(stream).next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let s = Seeds::new(7);
        let a: Vec<u64> = (0..4).map(|_| s.rng(Stream::Network).next_u64()).collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "same stream, same numbers"
        );
        let mut n = s.rng(Stream::Network);
        let mut w = s.rng(Stream::Workload);
        assert_ne!(n.next_u64(), w.next_u64());
        assert_ne!(
            s.rng(Stream::Node(0)).next_u64(),
            s.rng(Stream::Node(1)).next_u64()
        );
        assert_ne!(
            Seeds::new(8).rng(Stream::Network).next_u64(),
            s.rng(Stream::Network).next_u64()
        );
    }
}
