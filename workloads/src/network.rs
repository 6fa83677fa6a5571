//! Compiles the spec's network section into one link model per ordered pair of endpoints.

use crate::spec::{Delivery, Spec};
use quorumlab_sim::{Latency, LinkModel, Network, Seeds, Stream};

/// One-way latency between two regions: half the RTT plus normal jitter.
fn region_latency(rtt_ms: f64, jitter_ms: f64) -> Latency {
    if jitter_ms > 0.0 {
        Latency::Normal {
            mean_ms: rtt_ms / 2.0,
            sd_ms: jitter_ms,
        }
    } else {
        Latency::Constant { ms: rtt_ms / 2.0 }
    }
}

/// The link models of a spec, indexed `from * n + to` over servers then clients.
pub fn link_models(spec: &Spec) -> Vec<LinkModel> {
    let nodes = spec.cluster.nodes;
    let n = nodes + spec.workload.clients;
    let net = &spec.network;
    let base = LinkModel {
        latency: net.latency.clone(),
        loss: net.loss,
        duplicate: net.duplicate,
        fifo: net.delivery == Delivery::Fifo,
    };
    let mut links = vec![base; n * n];
    let region_of = |i: usize| -> Option<usize> {
        let r = net.regions.as_ref()?;
        let name = if i < nodes {
            &r.nodes[i]
        } else if r.clients.len() == 1 {
            &r.clients[0]
        } else {
            &r.clients[i - nodes]
        };
        r.names.iter().position(|x| x == name)
    };
    for a in 0..n {
        for b in 0..n {
            let l = &mut links[a * n + b];
            if a == b {
                // A process talking to itself does not cross the network.
                l.latency = Latency::Constant { ms: 0.0 };
                l.loss = 0.0;
                l.duplicate = 0.0;
                continue;
            }
            if let (Some(r), Some(ra), Some(rb)) = (&net.regions, region_of(a), region_of(b)) {
                l.latency = region_latency(r.rtt_ms[ra][rb], r.jitter_ms);
            } else if let Some(cl) = &net.client_latency {
                if (a < nodes) != (b < nodes) {
                    l.latency = cl.clone();
                }
            }
        }
    }
    for o in &net.links {
        let ids = |names: &[String]| -> Vec<usize> {
            names.iter().filter_map(|x| spec.endpoint(x)).collect()
        };
        let (from, to) = (ids(&o.from), ids(&o.to));
        for &a in &from {
            for &b in &to {
                let mut pairs = vec![(a, b)];
                if !o.one_way {
                    pairs.push((b, a));
                }
                for (x, y) in pairs {
                    if x == y {
                        continue;
                    }
                    let l = &mut links[x * n + y];
                    if let Some(lat) = &o.latency {
                        l.latency = lat.clone();
                    }
                    if let Some(p) = o.loss {
                        l.loss = p;
                    }
                    if let Some(p) = o.duplicate {
                        l.duplicate = p;
                    }
                    if let Some(d) = o.delivery {
                        l.fifo = d == Delivery::Fifo;
                    }
                }
            }
        }
    }
    links
}

/// The emulated network of a spec, seeded from the run's network stream.
pub fn build_network(spec: &Spec, seeds: &Seeds) -> Network {
    let n = spec.cluster.nodes + spec.workload.clients;
    Network::with_links(n, link_models(spec), seeds.rng(Stream::Network))
}
