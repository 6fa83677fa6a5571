//! `violation.html`: a self-contained page (inline CSS and SVG, no external assets) showing,
//! for each key that is not linearizable, its ops as bars per process on a time axis, the
//! longest partial linearization numbered in order, and the op that cannot be linearized.

use crate::report::{CheckReport, OpOutcome, OpView, Violation};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

/// Most ops drawn per key; a larger key shows the ops around the failing op.
const MAX_DRAWN: usize = 300;
/// Most violating keys drawn on the page.
const MAX_KEYS: usize = 5;
/// Most rows of the linearization table.
const MAX_ROWS: usize = 200;

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn val(j: &Json) -> String {
    match j {
        Json::Null => "absent".into(),
        other => other.to_string(),
    }
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 8px} h2{font-size:18px;margin:28px 0 6px}
pre.explain{background:#f6f6f6;border:1px solid #ddd;padding:10px;white-space:pre-wrap;font-size:13px}
.legend span{display:inline-block;margin-right:16px;font-size:13px}
.sw{display:inline-block;width:22px;height:12px;vertical-align:middle;margin-right:5px;border:1.5px solid}
.scroll{overflow-x:auto;border:1px solid #ddd;background:#fff;margin:8px 0}
table{border-collapse:collapse;font-size:13px;margin-top:8px}
td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace}
th{font-family:inherit;background:#fafafa}
tr.fail td{background:#ffe3e3;font-weight:600}
.note{color:#666;font-size:13px}
svg text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}
"#;

pub(crate) fn violation_page(r: &CheckReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>quorumlab: not linearizable</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = writeln!(s, "<h1>History is not linearizable</h1>");
    let _ = writeln!(s, "<pre class=\"explain\">{}</pre>", esc(&r.explain()));
    let _ = writeln!(
        s,
        "<p class=\"note\">A history is linearizable if every operation can be given one \
         instant between its invocation and its completion such that, in that order, the \
         operations are those of a single copy of the data. Each key is checked on its own. \
         Below, for each key that has no linearization: its operations as bars (one row per \
         client process, invocation to completion), the longest prefix of a linearization \
         the checker could build (numbered in order), and the operation that cannot be \
         placed after it. The time axis keeps the real-time order of invocations and \
         completions but not their spacing; hover over a bar for its exact times.</p>"
    );
    let _ = writeln!(
        s,
        "<div class=\"legend\">\
         <span><i class=\"sw\" style=\"background:#d4efd4;border-color:#2e7d32\"></i>in the partial linearization (numbered)</span>\
         <span><i class=\"sw\" style=\"background:#ffd0d0;border-color:#c62828\"></i>cannot be linearized</span>\
         <span><i class=\"sw\" style=\"background:#ececec;border-color:#999\"></i>not linearized yet</span>\
         <span><i class=\"sw\" style=\"background:#fff;border-color:#999;border-style:dashed\"></i>info: may take effect any time after invocation, or never</span>\
         <span><i class=\"sw\" style=\"background:#fff3cd;border-color:#b58900\"></i>failed precondition (observation, no effect)</span>\
         </div>"
    );
    if r.violations.len() > MAX_KEYS {
        let _ = writeln!(
            s,
            "<p class=\"note\">{} keys are not linearizable; the first {MAX_KEYS} are shown \
             (all are in check.json).</p>",
            r.violations.len()
        );
    }
    for v in r.violations.iter().take(MAX_KEYS) {
        section(&mut s, v);
    }
    s.push_str("</body></html>\n");
    s
}

/// The ops to draw: those that can matter to the violation. Ops invoked after the failing
/// op completed are left out, and so are ops that completed before the last
/// `FOCUS` steps of the partial linearization began; at most `MAX_DRAWN`, nearest the failing
/// op first.
fn drawn_ops(v: &Violation) -> Vec<usize> {
    const FOCUS: usize = 30;
    let mut focus: Vec<usize> = v.linearization.iter().rev().take(FOCUS).copied().collect();
    focus.extend(v.failing_op);
    if focus.is_empty() {
        return (0..v.ops.len().min(MAX_DRAWN)).collect();
    }
    let t0 = focus
        .iter()
        .map(|&i| v.ops[i].invoke_time)
        .min()
        .unwrap_or(0);
    let t1 = match v.failing_op {
        Some(f) => v.ops[f].complete_time.unwrap_or(u64::MAX),
        None => u64::MAX,
    };
    let mut ids: Vec<usize> = v
        .ops
        .iter()
        .filter(|o| o.invoke_time <= t1 && o.complete_time.is_none_or(|c| c >= t0))
        .map(|o| o.id)
        .collect();
    ids.extend(&focus);
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_DRAWN {
        let center = v.failing_op.map(|i| v.ops[i].invoke_time).unwrap_or(t1);
        ids.sort_by_key(|&i| v.ops[i].invoke_time.abs_diff(center));
        let keep: HashSet<usize> = focus.iter().copied().collect();
        let mut chosen: Vec<usize> = focus;
        for i in ids {
            if chosen.len() >= MAX_DRAWN {
                break;
            }
            if !keep.contains(&i) {
                chosen.push(i);
            }
        }
        ids = chosen;
        ids.sort_unstable();
        ids.dedup();
    }
    ids
}

fn section(s: &mut String, v: &Violation) {
    let title = match &v.key {
        Some(k) => format!("Key {k}"),
        None => "The register".to_string(),
    };
    let _ = writeln!(s, "<h2>{}</h2>", esc(&title));
    if let (Some(f), Some(why)) = (v.failing_op.and_then(|i| v.ops.get(i)), &v.reason) {
        let _ = writeln!(
            s,
            "<p><b>{}</b> by process {} {} cannot be linearized: {}.</p>",
            esc(&f.describe()),
            esc(&f.process_name()),
            esc(&f.interval()),
            esc(why)
        );
    } else if let Some(f) = v.failing_op.and_then(|i| v.ops.get(i)) {
        let _ = writeln!(
            s,
            "<p><b>{}</b> by process {} {} cannot be linearized: after the longest partial \
             linearization ({} of {} ops) the value is <b>{}</b>, and no other order of the \
             earlier ops lets this op take effect before it completes.</p>",
            esc(&f.describe()),
            esc(&f.process_name()),
            esc(&f.interval()),
            v.linearization.len(),
            v.ops.len(),
            esc(&val(&v.value_before_failing_op))
        );
    }
    let ids = drawn_ops(v);
    if ids.len() < v.ops.len() {
        let _ = writeln!(
            s,
            "<p class=\"note\">Showing {} of the key's {} ops: those that overlap the end of \
             the partial linearization and were invoked before the failing op completed (ops \
             invoked later cannot help it; earlier ops are summed up by the partial \
             linearization; all ops are in check.json).</p>",
            ids.len(),
            v.ops.len()
        );
    }
    timeline(s, v, &ids);
    table(s, v);
}

fn timeline(s: &mut String, v: &Violation, ids: &[usize]) {
    let ops: Vec<&OpView> = ids.iter().map(|&i| &v.ops[i]).collect();
    // ordinal time axis
    let mut times: Vec<u64> = ops
        .iter()
        .flat_map(|o| [Some(o.invoke_time), o.complete_time])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    let rank: HashMap<u64, usize> = times.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let mut procs: Vec<String> = ops.iter().map(|o| o.process_name()).collect();
    procs.sort_by(|a, b| crate::prepare::natural_cmp(a, b));
    procs.dedup();
    let row: BTreeMap<&str, usize> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let order: HashMap<usize, usize> = v
        .linearization
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i))
        .collect();

    let unit = 58.0_f64;
    let left = 110.0_f64;
    let top = 36.0_f64;
    let row_h = 34.0_f64;
    let bar_h = 22.0_f64;
    let right_edge = left + (times.len() as f64 + 1.0) * unit;
    let width = right_edge + 30.0;
    let height = top + procs.len() as f64 * row_h + 14.0;
    let x = |t: u64| left + rank[&t] as f64 * unit + unit / 2.0;

    let _ = writeln!(
        s,
        "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">"
    );
    // axis ticks with real times, about every 110 px
    let every = ((110.0 / unit).ceil() as usize).max(1);
    for (i, t) in times.iter().enumerate() {
        let tx = left + i as f64 * unit + unit / 2.0;
        let _ = writeln!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#f0f0f0\"/>",
            top - 6.0,
            height - 8.0
        );
        if i % every == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#777\">{t}</text>",
                top - 12.0
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"6\" y=\"{:.1}\" fill=\"#777\">time</text>",
        top - 12.0
    );
    for (i, p) in procs.iter().enumerate() {
        let y = top + i as f64 * row_h;
        if i % 2 == 1 {
            let _ = writeln!(
                s,
                "<rect x=\"0\" y=\"{y:.1}\" width=\"{width:.0}\" height=\"{row_h:.0}\" fill=\"#fafafa\"/>"
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"8\" y=\"{:.1}\" fill=\"#333\">process {}</text>",
            y + row_h / 2.0 + 4.0,
            esc(p)
        );
    }
    for o in &ops {
        let r = row[o.process_name().as_str()];
        let y = top + r as f64 * row_h + (row_h - bar_h) / 2.0;
        let x1 = x(o.invoke_time) - unit * 0.3;
        let x2 = match o.complete_time {
            Some(c) => x(c) + unit * 0.3,
            None => right_edge,
        };
        let w = (x2 - x1).max(unit * 0.6);
        let failing = v.failing_op == Some(o.id);
        let lin = order.get(&o.id).copied();
        let (fill, stroke, sw) = if failing {
            ("#ffd0d0", "#c62828", 2.5)
        } else if lin.is_some() {
            ("#d4efd4", "#2e7d32", 1.5)
        } else if o.outcome == OpOutcome::PreconditionFailed {
            ("#fff3cd", "#b58900", 1.5)
        } else {
            ("#ececec", "#999", 1.2)
        };
        let dash = if o.outcome == OpOutcome::Info {
            " stroke-dasharray=\"5 3\" fill-opacity=\"0.55\""
        } else {
            ""
        };
        let mut tip = format!(
            "{} by process {}\ninvoked {}, {}",
            o.describe(),
            o.process_name(),
            o.invoke_time,
            match o.complete_time {
                Some(c) => format!("completed {c}"),
                None => "never completed (info)".into(),
            }
        );
        if let Some(k) = lin {
            let _ = write!(
                tip,
                "\nlinearized #{}; value then {}",
                k + 1,
                val(&v.values_after[k])
            );
        }
        if failing {
            let _ = write!(
                tip,
                "\ncannot be linearized after the partial linearization (value {})",
                val(&v.value_before_failing_op)
            );
        }
        let _ = writeln!(
            s,
            "<g><title>{}</title><rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h:.0}\" \
             rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"{dash}/>",
            esc(&tip)
        );
        let mut tx = x1 + 5.0;
        if let Some(k) = lin {
            let label = (k + 1).to_string();
            let rw = 8.0 + 6.6 * label.len() as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{rw:.1}\" height=\"14\" rx=\"7\" fill=\"#2e7d32\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#fff\" text-anchor=\"middle\">{label}</text>",
                x1 + 3.0,
                y + 4.0,
                x1 + 3.0 + rw / 2.0,
                y + 15.0
            );
            tx += rw + 2.0;
        }
        if failing {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c62828\" font-weight=\"bold\">✗</text>",
                tx - 1.0,
                y + 15.0
            );
            tx += 10.0;
        }
        let room = ((x1 + w - tx - 3.0) / 6.7).floor().max(0.0) as usize;
        let mut label = o.describe();
        if label.chars().count() > room {
            label = if room >= 2 {
                let mut t: String = label.chars().take(room - 1).collect();
                t.push('…');
                t
            } else {
                String::new()
            };
        }
        let _ = writeln!(
            s,
            "<text x=\"{tx:.1}\" y=\"{:.1}\" fill=\"#222\">{}</text></g>",
            y + 15.0,
            esc(&label)
        );
    }
    s.push_str("</svg></div>\n");
}

fn table(s: &mut String, v: &Violation) {
    let n = v.linearization.len();
    let _ = writeln!(
        s,
        "<table><tr><th>#</th><th>process</th><th>op</th><th>invoked</th><th>completed</th><th>value after</th></tr>"
    );
    if n > MAX_ROWS {
        let _ = writeln!(
            s,
            "<tr><td colspan=\"6\" class=\"note\">… {} earlier steps (all in check.json)</td></tr>",
            n - MAX_ROWS
        );
    }
    for (k, &id) in v
        .linearization
        .iter()
        .enumerate()
        .skip(n.saturating_sub(MAX_ROWS))
    {
        let o = &v.ops[id];
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            k + 1,
            esc(&o.process_name()),
            esc(&o.describe()),
            o.invoke_time,
            o.complete_time.map_or("never".into(), |c| c.to_string()),
            esc(&val(&v.values_after[k]))
        );
    }
    if let Some(o) = v.failing_op.and_then(|i| v.ops.get(i)) {
        let _ = writeln!(
            s,
            "<tr class=\"fail\"><td>✗</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>cannot be linearized (value is {})</td></tr>",
            esc(&o.process_name()),
            esc(&o.describe()),
            o.invoke_time,
            o.complete_time.map_or("never".into(), |c| c.to_string()),
            esc(&val(&v.value_before_failing_op))
        );
    }
    s.push_str("</table>\n");
}
