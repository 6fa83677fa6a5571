//! Who is where: server nodes, clients, groups (ensembles / Raft groups) and which group owns a key.
//!
//! Endpoint ids: servers are `0..nodes`, clients `nodes..nodes+clients`.
//! Groups are placed like Riak preference lists: the ring has `groups` partitions; partition `g`
//! is owned by node `g mod nodes` and replicated on the next `replicas - 1` distinct nodes.

use crate::op::Key;
use stateright::actor::Id;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    pub nodes: usize,
    pub clients: usize,
    pub replicas: usize,
    /// Members of each group, in preference-list order.
    pub groups: Vec<Vec<Id>>,
    pub keys: u32,
}

/// A fixed 64-bit mix (splitmix64's finalizer): the ring position of a key.
pub fn ring_hash(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Layout {
    /// Checks the shape and places `groups` groups of `replicas` on `nodes` nodes.
    pub fn new(
        nodes: usize,
        clients: usize,
        replicas: usize,
        groups: usize,
        keys: u32,
    ) -> Result<Self, String> {
        if nodes == 0 {
            return Err("cluster.nodes must be at least 1".into());
        }
        if replicas == 0 || replicas > nodes {
            return Err(format!(
                "cluster.replicas must be between 1 and cluster.nodes ({nodes}), got {replicas}"
            ));
        }
        if groups == 0 {
            return Err("cluster.groups must be at least 1".into());
        }
        if keys == 0 {
            return Err("workload.keys must be at least 1".into());
        }
        let groups = (0..groups)
            .map(|g| (0..replicas).map(|i| Id::from((g + i) % nodes)).collect())
            .collect();
        Ok(Layout {
            nodes,
            clients,
            replicas,
            groups,
            keys,
        })
    }

    pub fn servers(&self) -> Vec<Id> {
        (0..self.nodes).map(Id::from).collect()
    }

    pub fn clients(&self) -> Vec<Id> {
        (self.nodes..self.nodes + self.clients)
            .map(Id::from)
            .collect()
    }

    pub fn endpoints(&self) -> usize {
        self.nodes + self.clients
    }

    pub fn is_server(&self, id: Id) -> bool {
        usize::from(id) < self.nodes
    }

    /// The group (ring partition) that owns `key`: consistent hashing of the key onto the ring.
    pub fn group_of(&self, key: Key) -> usize {
        let h = ring_hash(key.0 as u64);
        ((h as u128 * self.groups.len() as u128) >> 64) as usize
    }

    /// Members of the group owning `key`.
    pub fn replicas_of(&self, key: Key) -> &[Id] {
        &self.groups[self.group_of(key)]
    }

    /// Groups that have a member on `node`.
    pub fn groups_on(&self, node: Id) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].contains(&node))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_lists_are_distinct_nodes() {
        let l = Layout::new(5, 2, 3, 8, 100).unwrap();
        for g in &l.groups {
            let mut s = g.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), 3);
        }
        assert_eq!(l.groups[4], vec![Id::from(4), Id::from(0), Id::from(1)]);
    }

    #[test]
    fn keys_spread_over_groups() {
        let l = Layout::new(5, 0, 3, 8, 10_000).unwrap();
        let mut count = vec![0; 8];
        for k in 0..10_000 {
            count[l.group_of(Key(k))] += 1;
        }
        assert!(count.iter().all(|&c| c > 1000), "{count:?}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Layout::new(3, 1, 5, 1, 1).unwrap_err().contains("replicas"));
        assert!(Layout::new(0, 1, 1, 1, 1).is_err());
    }
}
