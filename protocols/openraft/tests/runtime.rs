//! openraft's own conformance suite for `AsyncRuntime` implementations, run on [`SimRt`].

use quorumlab_openraft::rt::SimRt;

#[test]
fn openraft_runtime_suite_passes() {
    openraft_rt::testing::Suite::<SimRt>::test_all();
}
