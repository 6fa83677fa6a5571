//! Readable counterexamples: a numbered list of deliveries, drops, timeouts, crashes and
//! restarts, each with what it changed (roles, terms, client invocations and returns), and a
//! message sequence diagram as a self-contained SVG.

// SVG elements are written from raw-string templates, one element per line.
#![allow(clippy::write_with_newline)]

use crate::harness::{acting, envelopes, Act, KvModel, Proto, St};
use crate::history::Hist;
use crate::raft::{fmt_op, fmt_outcome};
use quorumlab_kv::{NodeState, NodeTimer, Outcome, Wire};
use serde::Serialize;
use stateright::actor::{ActorModelAction, Id};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

/// One step of a trace.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// 1-based; warm-up steps are numbered too and flagged.
    pub step: usize,
    pub warmup: bool,
    /// deliver | drop | timeout | crash | restart
    pub action: &'static str,
    /// The actor the step happens at (the receiver of a delivery).
    pub at: String,
    /// The sender of a delivered or dropped message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The message or timer.
    pub what: String,
    /// What changed: roles and terms, client invocations and returns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<String>,
    /// Properties this step breaks, explained.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}

fn wire_text<P: Proto>(m: &Wire<P::Msg>) -> String {
    match m {
        Wire::Peer(m) => P::fmt_msg(m),
        Wire::Invoke(r) => format!("invoke {}", fmt_op(r.key.0, &r.op)),
        Wire::Done(r, o) => format!("done {} {}", fmt_op(r.key.0, &r.op), fmt_outcome(o)),
    }
}

fn timer_text<P: Proto>(t: &crate::harness::NTimer<P>) -> String {
    match t {
        NodeTimer::Server(t) => format!("{t:?}"),
        NodeTimer::Client(t) => format!("client retry {t:?}"),
        NodeTimer::Deadline => "client timeout".into(),
    }
}

/// One line for an action (also used by stateright's Explorer).
pub fn action_text<P: Proto>(m: &KvModel<P>, a: &Act<P>) -> String {
    let (kind, at, from, what) = parts(m, a);
    match from {
        Some(f) => format!("{kind} {f} → {at}: {what}"),
        None => format!("{kind} {at}: {what}"),
    }
}

fn parts<P: Proto>(m: &KvModel<P>, a: &Act<P>) -> (&'static str, String, Option<String>, String) {
    match a {
        ActorModelAction::Deliver { src, dst, msg } => (
            "deliver",
            m.actor_name(*dst),
            Some(m.actor_name(*src)),
            wire_text::<P>(msg),
        ),
        ActorModelAction::Drop(e) => (
            "drop",
            m.actor_name(e.dst),
            Some(m.actor_name(e.src)),
            wire_text::<P>(&e.msg),
        ),
        ActorModelAction::Timeout(id, t) => {
            ("timeout", m.actor_name(*id), None, timer_text::<P>(t))
        }
        ActorModelAction::Crash(id) if !m.cfg.crash_down => (
            "reboot",
            m.actor_name(*id),
            None,
            "crashes and restarts from its durable storage".into(),
        ),
        ActorModelAction::Crash(id) => (
            "crash",
            m.actor_name(*id),
            None,
            "loses its volatile state".into(),
        ),
        ActorModelAction::Recover(id) => (
            "restart",
            m.actor_name(*id),
            None,
            "restarts from its durable storage".into(),
        ),
        ActorModelAction::SelectRandom { actor, random, .. } => {
            ("random", m.actor_name(*actor), None, format!("{random:?}"))
        }
    }
}

fn summary<P: Proto>(m: &KvModel<P>, s: &St<P>, i: usize) -> Option<String> {
    if i >= m.servers {
        return None;
    }
    match &*s.actor_states[i] {
        NodeState::Server(Some(st)) => Some(P::summary(st)),
        _ => None,
    }
}

fn history_effects<P: Proto>(m: &KvModel<P>, before: &Hist, after: &Hist) -> Vec<String> {
    let mut out = Vec::new();
    for o in &after.ops {
        let old = before.ops.iter().find(|x| x.id == o.id);
        let who = m.actor_name(o.client);
        if old.is_none() {
            out.push(format!(
                "{who} invokes {} (#{}.{})",
                fmt_op(o.key.0, &o.op),
                o.id >> 32,
                o.id & 0xffff_ffff
            ));
        }
        if let Some((_, r)) = &o.ret {
            if old.is_none_or(|x| x.ret.is_none()) {
                let r = match (o.op, r) {
                    (quorumlab_kv::Op::Read, Outcome::Ok(None)) => "ok, absent".to_string(),
                    _ => fmt_outcome(r),
                };
                out.push(format!("{who} ← {}: {r}", fmt_op(o.key.0, &o.op)));
            }
        }
    }
    out
}

/// The steps of a (full) trace, with effects.
pub fn steps<P: Proto>(m: &KvModel<P>, full: &[(St<P>, Act<P>, bool)], last: &St<P>) -> Vec<Step> {
    let mut out = Vec::new();
    for (k, (s, a, warm)) in full.iter().enumerate() {
        let next = full.get(k + 1).map_or(last, |x| &x.0);
        let (kind, at, from, what) = parts(m, a);
        let mut effects = Vec::new();
        let who = match a {
            ActorModelAction::Crash(id) => Some(*id),
            _ => acting(a),
        };
        if let Some(id) = who {
            let i = usize::from(id);
            let (b, n) = (summary(m, s, i), summary(m, next, i));
            if matches!(a, ActorModelAction::Crash(_)) && m.cfg.crash_down {
                effects.push(format!("{at} is down"));
            } else if b != n
                || matches!(a, ActorModelAction::Recover(_) | ActorModelAction::Crash(_))
            {
                if let Some(n) = n {
                    effects.push(format!("{at}: {n}"));
                }
            }
        }
        effects.extend(history_effects(m, &s.history, &next.history));
        let mut violations = Vec::new();
        if m.leader_conflict(s).is_none() {
            if let Some((l, x, y)) = m.leader_conflict(next) {
                violations.push(format!(
                    "election safety: n{x} and n{y} both lead term/epoch {}",
                    l.term
                ));
            }
        }
        if s.history.linearizable() && !next.history.linearizable() {
            violations.push("linearizable: the client history has no linearization".into());
        }
        if m.durability_error(s).is_none() {
            if let Some(e) = m.durability_error(next) {
                violations.push(format!("durability: {e}"));
            }
        }
        out.push(Step {
            step: k + 1,
            warmup: *warm,
            action: kind,
            at,
            from,
            what,
            effects,
            violations,
        });
    }
    out
}

/// What holds before the first step: the clients' first invocations (made at start).
pub fn initially<P: Proto>(m: &KvModel<P>) -> Vec<String> {
    history_effects(m, &Hist::default(), &m.cold.history)
}

/// The numbered list, after the initial invocations.
pub fn text_with<P: Proto>(m: &KvModel<P>, steps: &[Step]) -> String {
    let init = initially(m);
    let mut s = String::new();
    if !init.is_empty() {
        let _ = writeln!(s, "  0. at start: {}", init.join("; "));
    }
    s.push_str(&text(steps));
    s
}

/// The numbered list.
pub fn text(steps: &[Step]) -> String {
    let mut s = String::new();
    let warm = steps.iter().filter(|x| x.warmup).count();
    if warm > 0 {
        let _ = writeln!(
            s,
            "(steps 1-{warm}: the start schedule — warm-up and/or --prefix — the search began after it)"
        );
    }
    for st in steps {
        let head = match &st.from {
            Some(f) => format!("{} {f} → {}: {}", st.action, st.at, st.what),
            None => format!("{} {}: {}", st.action, st.at, st.what),
        };
        let _ = writeln!(s, "{:>3}. {head}", st.step);
        for e in &st.effects {
            let _ = writeln!(s, "       {e}");
        }
        for e in &st.violations {
            let _ = writeln!(s, "       VIOLATION {e}");
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A message sequence diagram of the trace: one lifeline per actor, one row per step; a
/// delivery is an arrow from the row where the message was sent to the row where it arrived,
/// a drop is a dashed arrow ending in ×, a timeout a clock mark, a crash a red cross, a restart
/// a green bar. Effects are written at the right. Warm-up rows are grey.
pub fn svg<P: Proto>(m: &KvModel<P>, full: &[(St<P>, Act<P>, bool)], last: &St<P>) -> String {
    let steps = steps(m, full, last);
    let n = m.inner.actors.len();
    let (col, row, top, left) = (150.0, 30.0, 70.0, 60.0);
    let x = |i: usize| left + 60.0 + i as f64 * col;
    let y = |k: usize| top + (k as f64 + 1.0) * row;
    let longest = steps
        .iter()
        .map(|st| {
            st.effects.join(" | ").chars().count().max(
                st.violations
                    .iter()
                    .map(|v| v.chars().count() + 10)
                    .max()
                    .unwrap_or(0),
            )
        })
        .max()
        .unwrap_or(0);
    let width = x(n) + 30.0 + (longest as f64 * 6.7).max(200.0);
    let height = y(steps.len()) + 60.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace" font-size="11">
<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker>
<marker id="g" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#aaa"/></marker></defs>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="13" font-weight="bold">{}</text>
"##,
        esc(&m.cfg.to_string())
    );
    for i in 0..n {
        let name = m.actor_name(Id::from(i));
        let color = if i < m.servers { "#1f4e79" } else { "#7b3294" };
        let _ = write!(
            svg,
            r##"<text x="{:.0}" y="{:.0}" text-anchor="middle" font-weight="bold" fill="{color}">{name}</text><line x1="{:.0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="#ccc"/>
"##,
            x(i),
            top - 10.0,
            x(i),
            top,
            x(i),
            height - 20.0
        );
    }
    // When was each message (still in flight) sent: row per copy, FIFO per envelope.
    type Key = (Id, Id, String);
    let mut sent: BTreeMap<Key, VecDeque<usize>> = BTreeMap::new();
    let count = |s: &St<P>| {
        let mut c: BTreeMap<Key, usize> = BTreeMap::new();
        for e in envelopes(&s.network) {
            *c.entry((e.src, e.dst, format!("{:?}", e.msg))).or_default() += 1;
        }
        c
    };
    if let Some((s0, _, _)) = full.first() {
        for (k, c) in count(s0) {
            sent.entry(k).or_default().extend(std::iter::repeat_n(0, c));
        }
    }
    for (k, ((s, a, warm), st)) in full.iter().zip(&steps).enumerate() {
        let next = full.get(k + 1).map_or(last, |x| &x.0);
        let yk = y(k);
        let (ink, marker) = if *warm { ("#aaa", "g") } else { ("#333", "a") };
        let _ = write!(
            svg,
            r##"<text x="10" y="{:.0}" fill="{ink}">{}</text>
"##,
            yk + 4.0,
            st.step
        );
        let mut consumed: Option<Key> = None;
        match a {
            ActorModelAction::Deliver { src, dst, msg }
            | ActorModelAction::Drop(stateright::actor::Envelope { src, dst, msg }) => {
                let key = (*src, *dst, format!("{msg:?}"));
                let from_row = sent.get_mut(&key).and_then(|q| q.pop_front());
                consumed = Some(key);
                let y0 = from_row.map_or(top, |r| if r == 0 { top } else { y(r - 1) });
                let (x0, x1) = (x(usize::from(*src)), x(usize::from(*dst)));
                let drop = matches!(a, ActorModelAction::Drop(_));
                let x1e = if drop { x0 + (x1 - x0) * 0.6 } else { x1 };
                let y1e = if drop { y0 + (yk - y0) * 0.6 } else { yk };
                let _ = write!(
                    svg,
                    r##"<line x1="{x0:.0}" y1="{y0:.0}" x2="{x1e:.0}" y2="{y1e:.0}" stroke="{ink}" {} {}/>
"##,
                    if drop {
                        r#"stroke-dasharray="4 3""#
                    } else {
                        ""
                    },
                    if drop {
                        String::new()
                    } else {
                        format!(r#"marker-end="url(#{marker})""#)
                    }
                );
                if drop {
                    let _ = write!(
                        svg,
                        r##"<text x="{x1e:.0}" y="{:.0}" fill="#c00" text-anchor="middle">×</text>
"##,
                        y1e + 4.0
                    );
                }
                let anchor = if x1 >= x0 { "end" } else { "start" };
                let lx = if x1 >= x0 { x1e - 6.0 } else { x1e + 6.0 };
                let _ = write!(
                    svg,
                    r##"<text x="{lx:.0}" y="{:.0}" text-anchor="{anchor}" fill="{ink}">{}</text>
"##,
                    y1e - 3.0,
                    esc(&st.what)
                );
            }
            ActorModelAction::Timeout(id, _) => {
                let xi = x(usize::from(*id));
                let _ = write!(
                    svg,
                    r##"<circle cx="{xi:.0}" cy="{yk:.0}" r="5" fill="white" stroke="#d98c00"/><text x="{:.0}" y="{:.0}" fill="#d98c00">timeout {}</text>
"##,
                    xi + 8.0,
                    yk + 4.0,
                    esc(&st.what)
                );
            }
            ActorModelAction::Crash(id) => {
                let xi = x(usize::from(*id));
                let _ = write!(
                    svg,
                    r##"<text x="{xi:.0}" y="{:.0}" text-anchor="middle" fill="#c00" font-size="18" font-weight="bold">✕</text><text x="{:.0}" y="{:.0}" fill="#c00">{}</text>
"##,
                    yk + 6.0,
                    xi + 10.0,
                    yk + 4.0,
                    if m.cfg.crash_down {
                        "crash"
                    } else {
                        "crash + restart"
                    }
                );
            }
            ActorModelAction::Recover(id) => {
                let xi = x(usize::from(*id));
                let _ = write!(
                    svg,
                    r##"<rect x="{:.0}" y="{:.0}" width="16" height="6" fill="#2a9d3a"/><text x="{:.0}" y="{:.0}" fill="#2a9d3a">restart</text>
"##,
                    xi - 8.0,
                    yk - 3.0,
                    xi + 10.0,
                    yk + 4.0
                );
            }
            ActorModelAction::SelectRandom { .. } => {}
        }
        // Messages sent by this step start at this row.
        let (cb, ca) = (count(s), count(next));
        for (key, c) in ca {
            let mut before = cb.get(&key).copied().unwrap_or(0);
            if consumed.as_ref() == Some(&key) {
                before = before.saturating_sub(1);
            }
            if c > before {
                sent.entry(key)
                    .or_default()
                    .extend(std::iter::repeat_n(k + 1, c - before));
            }
        }
        if !st.effects.is_empty() {
            let color = if *warm { "#aaa" } else { "#000" };
            let _ = write!(
                svg,
                r##"<text x="{:.0}" y="{:.0}" fill="{color}">{}</text>
"##,
                x(n) + 10.0,
                yk + 4.0,
                esc(&st.effects.join(" | "))
            );
        }
        for (j, v) in st.violations.iter().enumerate() {
            let _ = write!(
                svg,
                r##"<text x="{:.0}" y="{:.0}" fill="#c00" font-weight="bold">VIOLATION {}</text>
"##,
                x(n) + 10.0,
                yk + 18.0 + 14.0 * j as f64,
                esc(v)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Outcome text (re-exported for reports).
pub fn outcome_text(o: &Outcome) -> String {
    fmt_outcome(o)
}
