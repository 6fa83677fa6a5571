//! A message sequence (Lamport) diagram of a short window of the message log, hand-drawn SVG:
//! one vertical lifeline per endpoint, time flowing down, one arrow per message from its send
//! to its delivery; dropped messages end in a red cross.

use crate::html::esc;
use crate::metrics::{endpoint_name, MS};
use crate::style::{self, hex};
use quorumlab_sim::MsgRecord;
use quorumlab_workloads::{FaultRecord, LeaderChange};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Most messages drawn.
pub const MAX_MESSAGES: usize = 300;

/// Maps virtual time to the vertical axis, compressing idle stretches (gaps between message
/// events longer than [`IDLE_NS`]) to a fixed height, so that a window with a long quiet
/// period stays readable.
struct TimeMap {
    /// (time, y) knots; linear in between.
    knots: Vec<(u64, f64)>,
    /// (y from, y to, idle ns) of each compressed stretch.
    breaks: Vec<(f64, f64, u64)>,
    /// Pixels per ns in uncompressed stretches.
    scale: f64,
}

/// Gaps longer than this are drawn compressed.
const IDLE_NS: u64 = 8 * MS;
const BREAK_PX: f64 = 30.0;

impl TimeMap {
    fn new(mut times: Vec<u64>, top: f64, body_h: f64) -> Self {
        times.sort_unstable();
        times.dedup();
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let busy: u64 = gaps.iter().filter(|&&g| g <= IDLE_NS).sum();
        let idle = gaps.iter().filter(|&&g| g > IDLE_NS).count() as f64;
        let room = (body_h - idle * BREAK_PX).max(body_h * 0.3);
        // Between 8 and 120 px per ms.
        let scale = (room / (busy.max(1) as f64)).clamp(8.0 / MS as f64, 120.0 / MS as f64);
        let mut knots = Vec::with_capacity(times.len());
        let mut breaks = Vec::new();
        let mut y = top;
        for (i, &t) in times.iter().enumerate() {
            if i > 0 {
                let g = gaps[i - 1];
                if g > IDLE_NS {
                    breaks.push((y, y + BREAK_PX, g));
                    y += BREAK_PX;
                } else {
                    y += g as f64 * scale;
                }
            }
            knots.push((t, y));
        }
        TimeMap {
            knots,
            breaks,
            scale,
        }
    }

    fn y(&self, t: u64) -> f64 {
        let Some(&(t0, y0)) = self.knots.first() else {
            return 0.0;
        };
        if t <= t0 {
            return y0 - (t0 - t) as f64 * self.scale;
        }
        let i = self.knots.partition_point(|k| k.0 <= t);
        if i >= self.knots.len() {
            let (tl, yl) = *self.knots.last().expect("non-empty");
            return yl + (t - tl) as f64 * self.scale;
        }
        let (ta, ya) = self.knots[i - 1];
        let (tb, yb) = self.knots[i];
        ya + (yb - ya) * (t - ta) as f64 / (tb - ta).max(1) as f64
    }

    fn bottom(&self) -> f64 {
        self.knots.last().map(|k| k.1).unwrap_or(0.0)
    }

    fn in_break(&self, y: f64) -> bool {
        self.breaks
            .iter()
            .any(|&(a, b, _)| y > a - 1.0 && y < b + 1.0)
    }
}

/// The window drawn: (from ns, to ns).
pub fn pick_window(messages: &[MsgRecord], faults: &[FaultRecord]) -> Option<(u64, u64)> {
    if messages.is_empty() {
        return None;
    }
    let first = messages.iter().map(|m| m.sent).min().unwrap_or(0);
    let last = messages.iter().map(|m| m.sent).max().unwrap_or(0);
    let anchor = faults
        .iter()
        .map(|f| f.time_ns)
        .find(|&t| t >= first && t <= last)
        .unwrap_or(first + (last - first) / 2);
    let a = anchor.saturating_sub(5 * MS).max(first);
    let mut b = last.max(a + MS);
    let mut sent: Vec<u64> = messages
        .iter()
        .map(|m| m.sent)
        .filter(|&t| t >= a && t <= b)
        .collect();
    sent.sort_unstable();
    if sent.len() > MAX_MESSAGES {
        b = sent[MAX_MESSAGES - 1];
    }
    Some((a, b.max(a + MS)))
}

/// The diagram as an SVG string (or a note when there is nothing to draw).
pub fn sequence_diagram(
    messages: &[MsgRecord],
    faults: &[FaultRecord],
    leaders: &[LeaderChange],
    nodes: usize,
) -> String {
    let Some((a, b)) = pick_window(messages, faults) else {
        return crate::plots::note(
            "No messages were logged. The message log covers ±100 ms around the first fault; \
             this run has no fault (or logged nothing).",
        );
    };
    let msgs: Vec<&MsgRecord> = messages
        .iter()
        .filter(|m| m.sent >= a && m.sent <= b)
        .take(MAX_MESSAGES)
        .collect();
    if msgs.is_empty() {
        return crate::plots::note("No message was sent in the window around the first fault.");
    }
    let endpoints: Vec<usize> = msgs
        .iter()
        .flat_map(|m| [m.from, m.to])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let kinds: Vec<&str> = msgs
        .iter()
        .map(|m| m.kind)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let kind_color = |k: &str| -> String {
        let i = kinds.iter().position(|x| *x == k).unwrap_or(0);
        hex(style::category_color(i))
    };
    // Leaders at the start of the window, per endpoint.
    let mut leads: Vec<(usize, usize)> = Vec::new(); // (node, group)
    {
        let mut cur: std::collections::BTreeMap<usize, Option<usize>> = Default::default();
        for l in leaders.iter().filter(|l| l.time_ns <= a) {
            cur.insert(l.group, l.leader);
        }
        for (g, n) in cur {
            if let Some(n) = n {
                leads.push((n, g));
            }
        }
    }

    let width = style::WIDTH as f64;
    let left = 110.0;
    let right = 40.0;
    let legend_rows = kinds.len().div_ceil(6).max(1) as f64;
    let top = 36.0 + legend_rows * 22.0 + 44.0;
    let mut times: Vec<u64> = msgs.iter().map(|m| m.sent).collect();
    times.extend(msgs.iter().filter_map(|m| m.delivered));
    times.extend(
        faults
            .iter()
            .map(|f| f.time_ns)
            .filter(|&t| t >= a && t <= b),
    );
    let tm = TimeMap::new(times, top, 900.0);
    let y = |t: u64| tm.y(t);
    let body_end = tm.bottom() + 10.0;
    let height = body_end + 30.0;
    let n = endpoints.len();
    let col = |e: usize| -> f64 {
        let i = endpoints.iter().position(|&x| x == e).unwrap_or(0) as f64;
        if n <= 1 {
            left + (width - left - right) / 2.0
        } else {
            left + i * (width - left - right) / (n - 1) as f64
        }
    };

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\">\n<rect width=\"100%\" \
         height=\"100%\" fill=\"white\"/>\n<defs>"
    );
    for (i, k) in kinds.iter().enumerate() {
        let _ = write!(
            s,
            "<marker id=\"ah{i}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
             markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
             fill=\"{}\"/></marker>",
            kind_color(k)
        );
    }
    s.push_str("</defs>\n");
    let _ = writeln!(
        s,
        "<text x=\"14\" y=\"24\" font-size=\"16\" font-weight=\"bold\" fill=\"#222\">Message \
         sequence diagram: {} messages sent from {:.3} s to {:.3} s (virtual time flows down)</text>",
        msgs.len(),
        a as f64 / 1e9,
        b as f64 / 1e9
    );
    // Legend: message kinds, dropped.
    let mut lx = 14.0;
    let mut ly = 48.0;
    let items: Vec<(String, String, bool)> = kinds
        .iter()
        .map(|k| (k.to_string(), kind_color(k), false))
        .chain(std::iter::once((
            "dropped (lost, cut)".to_string(),
            hex(style::FAIL),
            true,
        )))
        .collect();
    for (i, (label, c, dropped)) in items.iter().enumerate() {
        if i > 0 && i % 6 == 0 {
            lx = 14.0;
            ly += 22.0;
        }
        if *dropped {
            let _ = write!(
                s,
                "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"#888\" \
                 stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{}\" \
                 font-size=\"14\" fill=\"{c}\" text-anchor=\"middle\">✕</text>",
                lx + 22.0,
                lx + 24.0,
                ly + 5.0
            );
        } else {
            let _ = write!(
                s,
                "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{c}\" \
                 stroke-width=\"2.5\"/>",
                lx + 24.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#222\">{}</text>",
            lx + 32.0,
            ly + 4.5,
            esc(label)
        );
        lx += 40.0 + label.chars().count() as f64 * 7.2 + 18.0;
    }
    // Compressed idle stretches.
    for &(y0, y1, g) in &tm.breaks {
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{y0:.1}\" width=\"{}\" height=\"{:.1}\" fill=\"#f3f3f3\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"12\" fill=\"#666\" \
             text-anchor=\"end\">{} ms without a message (compressed)</text>",
            left - 30.0,
            width - left - right + 40.0,
            y1 - y0,
            width - right + 10.0,
            (y0 + y1) / 2.0 + 4.0,
            crate::html::num(g as f64 / MS as f64)
        );
    }
    // Time ticks on the left: nice steps where time is not compressed, at least 26 px apart.
    let step = crate::metrics::nice_step((60.0 / tm.scale) as u64, 1);
    let mut t = a.div_ceil(step) * step;
    let mut last_label = f64::NEG_INFINITY;
    let mut ticks: Vec<u64> = Vec::new();
    let t_end = tm.knots.last().map(|k| k.0).unwrap_or(b).max(b);
    while t <= t_end {
        ticks.push(t);
        t += step;
    }
    // Also label the end of each compressed stretch.
    for k in tm.knots.windows(2) {
        if k[1].0 - k[0].0 > IDLE_NS {
            ticks.push(k[1].0);
        }
    }
    ticks.sort_unstable();
    for t in ticks {
        let yy = y(t);
        if tm.in_break(yy) || yy - last_label < 26.0 || yy > body_end {
            continue;
        }
        last_label = yy;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"12.5\" fill=\"#555\" \
             text-anchor=\"end\">{:.4} s</text>",
            left - 30.0,
            width - right + 10.0,
            left - 36.0,
            yy + 4.0,
            t as f64 / 1e9
        );
    }
    // Lifelines.
    for &e in &endpoints {
        let x = col(e);
        let name = endpoint_name(e, nodes);
        let lead: Vec<String> = leads
            .iter()
            .filter(|(n, _)| *n == e)
            .map(|(_, g)| format!("g{g}"))
            .collect();
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"{}\" \
             stroke-width=\"1.5\"/><text x=\"{x:.1}\" y=\"{}\" font-size=\"14\" \
             font-weight=\"bold\" text-anchor=\"middle\" fill=\"#222\">{name}</text>",
            top - 6.0,
            body_end,
            if e < nodes { "#666" } else { "#aaa" },
            top - 22.0,
        );
        if !lead.is_empty() {
            let label = if lead.len() > 2 {
                format!("leads {} groups", lead.len())
            } else {
                format!("leader {}", lead.join(","))
            };
            let _ = writeln!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11.5\" text-anchor=\"middle\" \
                 fill=\"#555\">{}</text>",
                top - 9.0,
                esc(&label)
            );
        }
    }
    // Faults in the window.
    for f in faults.iter().filter(|f| f.time_ns >= a && f.time_ns <= b) {
        let yy = y(f.time_ns);
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"{}\" \
             stroke-width=\"2\" stroke-dasharray=\"8 4\"/><text x=\"{}\" y=\"{:.1}\" \
             font-size=\"13\" fill=\"{}\" text-anchor=\"end\" paint-order=\"stroke\" \
             stroke=\"white\" stroke-width=\"4\">{}</text>",
            left - 30.0,
            width - right + 10.0,
            hex(style::FAULT),
            width - right + 10.0,
            yy - 5.0,
            hex(style::FAULT),
            esc(&format!(
                "{} at {:.3} s",
                f.description,
                f.time_ns as f64 / 1e9
            ))
        );
    }
    // Messages.
    for m in &msgs {
        let (x1, y1) = (col(m.from), y(m.sent));
        let ki = kinds.iter().position(|x| *x == m.kind).unwrap_or(0);
        let c = kind_color(m.kind);
        match m.delivered {
            Some(d) => {
                let (x2, y2) = (col(m.to), y(d));
                if m.from == m.to {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" \
                     stroke=\"{c}\" stroke-width=\"1.3\" marker-end=\"url(#ah{ki})\"><title>{} \
                     {}→{} sent {:.3} ms, delivered {:.3} ms</title></line>",
                    esc(m.kind),
                    endpoint_name(m.from, nodes),
                    endpoint_name(m.to, nodes),
                    m.sent as f64 / 1e6,
                    d as f64 / 1e6
                );
            }
            None => {
                let xt = col(m.to);
                let x2 = x1 + (xt - x1) * 0.4;
                let y2 = y1 + 6.0;
                let _ = writeln!(
                    s,
                    "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" \
                     stroke=\"{c}\" stroke-width=\"1.3\" stroke-dasharray=\"4 3\"><title>{} \
                     {}→{} sent {:.3} ms, dropped</title></line><text x=\"{x2:.1}\" \
                     y=\"{:.1}\" font-size=\"13\" fill=\"{}\" text-anchor=\"middle\">✕</text>",
                    esc(m.kind),
                    endpoint_name(m.from, nodes),
                    endpoint_name(m.to, nodes),
                    m.sent as f64 / 1e6,
                    y2 + 4.5,
                    hex(style::FAIL)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
