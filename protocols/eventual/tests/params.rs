//! `[protocol.eventual]`: defaults, unknown keys, impossible values.

use quorumlab_eventual::{Eventual, Params, Routing};
use quorumlab_kv::{KvProtocol, Layout};

#[test]
fn defaults_are_riaks() {
    let p = Params::default();
    assert_eq!((p.n, p.r, p.w), (3, 2, 2));
    assert_eq!((p.max_queue, p.expire_ms), (16, 300_000));
    assert!(p.allow_mult && p.sloppy_quorum && p.read_repair);
    assert_eq!(p.client_routing, Routing::Preflist);
    let empty: Params = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, p);
    let some: Params =
        serde_json::from_str(r#"{"allow_mult": false, "client_routing": "local", "n": 5}"#)
            .unwrap();
    assert!(!some.allow_mult);
    assert_eq!(some.client_routing, Routing::Local);
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    let e = serde_json::from_str::<Params>(r#"{"nval": 3}"#).unwrap_err();
    assert!(e.to_string().contains("nval"), "{e}");
    let layout = Layout::new(5, 2, 5, 1, 20).unwrap();
    let bad = |p: Params| Eventual::check(&p, &layout).unwrap_err();
    assert!(bad(Params {
        n: 6,
        ..Params::default()
    })
    .contains("protocol.eventual.n"));
    assert!(bad(Params {
        r: 4,
        ..Params::default()
    })
    .contains("protocol.eventual.r"));
    assert!(bad(Params {
        w: 0,
        ..Params::default()
    })
    .contains("protocol.eventual.w"));
    assert!(bad(Params {
        max_queue: 0,
        ..Params::default()
    })
    .contains("max_queue"));
    assert!(bad(Params {
        sloppy_timeout_ms: 0,
        ..Params::default()
    })
    .contains("sloppy_timeout_ms"));
    assert!(Eventual::check(&Params::default(), &layout).is_ok());
}
