//! Reading histories: quorumlab JSONL (via `quorumlab_kv::history::read_jsonl`) and Jepsen /
//! Knossos EDN, with format auto-detection. Both end up as `Vec<Event>` plus the 1-based line of
//! each event, so every later error can name its line.

use crate::edn::{self, Edn};
use crate::CheckError;
use quorumlab_kv::history::{read_jsonl, Event, EventType, HistoryError, ProcessId};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// quorumlab's JSON Lines (DESIGN.md, "History format").
    Jsonl,
    /// Jepsen `history.edn` (one map per line) or Knossos test data (one vector/list of maps).
    Edn,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            other => Err(format!(
                "unknown history format '{other}' (expected jsonl or edn)"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
        })
    }
}

/// A parsed history: events in file order and the 1-based line each one starts on.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
    /// `lines[i]` is the line of `events[i]`.
    pub lines: Vec<usize>,
}

/// Guesses the format from the first non-blank, non-comment character: `{"` → JSONL; `{:`,
/// `[` or `(` → EDN. An empty (or comment-only) text is an empty JSONL history. `None` when
/// the text starts with anything else.
pub fn detect_format(text: &str) -> Option<Format> {
    let b = text.as_bytes();
    let mut i = 0;
    if text.starts_with('\u{feff}') {
        i = 3;
    }
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i < b.len() && b[i] == b';' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        break;
    }
    match b.get(i) {
        None => Some(Format::Jsonl),
        Some(b'[') | Some(b'(') => Some(Format::Edn),
        Some(b'{') => {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b',') {
                j += 1;
            }
            match b.get(j) {
                Some(b'"') => Some(Format::Jsonl),
                Some(b':') => Some(Format::Edn),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Parses a history text in `format`, or in the detected format when `None`.
pub fn parse_history(text: &str, format: Option<Format>) -> Result<History, CheckError> {
    let format = match format.or_else(|| detect_format(text)) {
        Some(f) => f,
        None => {
            return Err(CheckError::UnknownFormat(
                "cannot tell the history format from its first character (expected '{\"' for \
                 JSONL, or '{:', '[' or '(' for EDN); pass --format jsonl|edn"
                    .into(),
            ))
        }
    };
    match format {
        Format::Jsonl => parse_jsonl(text),
        Format::Edn => parse_edn(text),
    }
}

/// Reads and parses a history file. Without a format, detects it from the content, then from
/// the extension (`.edn`, `.jsonl`/`.json`).
pub fn read_history(path: &Path, format: Option<Format>) -> Result<History, CheckError> {
    let bytes = std::fs::read(path).map_err(|e| CheckError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
            return Err(CheckError::Malformed {
                line,
                msg: "invalid UTF-8".into(),
            });
        }
    };
    let format = format.or_else(|| detect_format(text)).or_else(|| {
        match path.extension().and_then(|e| e.to_str()) {
            Some("edn") => Some(Format::Edn),
            Some("jsonl") | Some("json") | Some("ndjson") => Some(Format::Jsonl),
            _ => None,
        }
    });
    parse_history(text, format)
}

/// JSONL, parsed in parallel chunks (each through `read_jsonl`), line numbers kept exact.
pub fn parse_jsonl(text: &str) -> Result<History, CheckError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chunks = split_lines(text, rayon::current_num_threads().max(1) * 4, 1 << 20);
    type Part = Result<(Vec<Event>, Vec<usize>), CheckError>;
    let parts: Vec<Part> = chunks
        .par_iter()
        .map(|&(start_line, chunk)| {
            let events = read_jsonl(chunk.as_bytes()).map_err(|e| match e {
                HistoryError::Malformed { line, msg } => CheckError::Malformed {
                    line: line + start_line - 1,
                    msg,
                },
                HistoryError::Io(e) => CheckError::Malformed {
                    line: start_line,
                    msg: e.to_string(),
                },
            })?;
            // the same rule as read_jsonl: blank lines are skipped
            let lines: Vec<usize> = chunk
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, _)| start_line + i)
                .collect();
            debug_assert_eq!(lines.len(), events.len());
            Ok((events, lines))
        })
        .collect();
    let mut h = History::default();
    for p in parts {
        let (e, l) = p?;
        h.events.extend(e);
        h.lines.extend(l);
    }
    Ok(h)
}

/// Splits `text` into about `n` chunks ending at line ends (none smaller than `min_len`
/// bytes unless it is the last), each with its first 1-based line number.
fn split_lines(text: &str, n: usize, min_len: usize) -> Vec<(usize, &str)> {
    let target = (text.len() / n.max(1)).max(min_len);
    let mut out = Vec::new();
    let mut start = 0;
    let mut line = 1;
    let b = text.as_bytes();
    while start < text.len() {
        let mut end = (start + target).min(text.len());
        while end < text.len() && b[end - 1] != b'\n' {
            end += 1;
        }
        let chunk = &text[start..end];
        out.push((line, chunk));
        line += chunk.bytes().filter(|&c| c == b'\n').count();
        start = end;
    }
    out
}

fn malformed(line: usize, msg: impl Into<String>) -> CheckError {
    CheckError::Malformed {
        line,
        msg: msg.into(),
    }
}

/// The fields of one EDN operation map, before conversion.
struct RawEdn<'a> {
    line: usize,
    kind: EventType,
    f: String,
    process: ProcessId,
    time: Option<u64>,
    index: Option<u64>,
    value: Option<&'a Edn>,
    key: Option<&'a Edn>,
}

fn edn_name(v: &Edn) -> Option<String> {
    match v {
        Edn::Keyword(s) | Edn::Symbol(s) | Edn::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// The text of an EDN key: strings as themselves, anything else as EDN (`:a`, `3`, `[1 2]`).
pub(crate) fn edn_key_text(k: &Edn) -> String {
    match k {
        Edn::Str(s) => s.clone(),
        other => other.to_edn_string(),
    }
}

fn pair(v: &Edn) -> Option<(&Edn, &Edn)> {
    match v.as_seq() {
        Some([a, b]) => Some((a, b)),
        _ => None,
    }
}

/// Jepsen / Knossos EDN. `:process :nemesis` events are kept (the checker skips them);
/// `:error` and other unknown keys are ignored; every `:fail` is plain (never a precondition
/// observation). Histories whose client ops all carry `[key value]` tuples (Jepsen's
/// `independent`) are split by key.
pub fn parse_edn(text: &str) -> Result<History, CheckError> {
    let forms = edn::parse_events(text).map_err(|e| malformed(e.line, e.msg))?;
    let mut raws = Vec::with_capacity(forms.len());
    for (line, form) in &forms {
        let line = *line;
        if !matches!(form, Edn::Map(_)) {
            return Err(malformed(
                line,
                format!(
                    "expected an operation map like {{:type :invoke, :f :read, ...}}, found {}",
                    truncate(&form.to_edn_string(), 60)
                ),
            ));
        }
        let kind = match form.get_kw("type").and_then(edn_name).as_deref() {
            Some("invoke") => EventType::Invoke,
            Some("ok") => EventType::Ok,
            Some("fail") => EventType::Fail,
            Some("info") => EventType::Info,
            Some(other) => {
                return Err(malformed(
                    line,
                    format!(":type must be :invoke, :ok, :fail or :info, not {other}"),
                ))
            }
            None => return Err(malformed(line, "operation has no :type")),
        };
        let process = match form.get_kw("process") {
            Some(Edn::Int(n)) if *n >= 0 => ProcessId::Client(*n as u64),
            Some(Edn::Int(n)) => ProcessId::Named(n.to_string()),
            Some(Edn::Keyword(s)) | Some(Edn::Str(s)) | Some(Edn::Symbol(s)) => {
                ProcessId::Named(s.clone())
            }
            Some(Edn::Nil) | None => return Err(malformed(line, "operation has no :process")),
            Some(other) => ProcessId::Named(other.to_edn_string()),
        };
        let f = match form.get_kw("f") {
            Some(v) => edn_name(v).unwrap_or_else(|| v.to_edn_string()),
            None if process.is_nemesis() => String::new(),
            None => return Err(malformed(line, "operation has no :f")),
        };
        let num = |name: &str| -> Result<Option<u64>, CheckError> {
            match form.get_kw(name) {
                None | Some(Edn::Nil) => Ok(None),
                Some(Edn::Int(n)) if *n >= 0 => Ok(Some(*n as u64)),
                Some(other) => Err(malformed(
                    line,
                    format!(
                        ":{name} must be a non-negative integer, not {}",
                        truncate(&other.to_edn_string(), 40)
                    ),
                )),
            }
        };
        let (time, index) = (num("time")?, num("index")?);
        raws.push(RawEdn {
            line,
            kind,
            f,
            process,
            time,
            index,
            value: form.get_kw("value"),
            key: form.get_kw("key"),
        });
    }

    let clients = || raws.iter().filter(|r| !r.process.is_nemesis());
    // Jepsen's independent histories: every client op carries a [key value] tuple.
    let independent = clients().next().is_some()
        && clients().all(|r| {
            r.key.is_none()
                && match r.value.and_then(pair) {
                    None => false,
                    Some((_, v)) => r.f != "cas" || matches!(v, Edn::Nil) || v.as_seq().is_some(),
                }
        });
    let use_time = clients().all(|r| r.time.is_some());

    let mut h = History {
        events: Vec::with_capacity(raws.len()),
        lines: Vec::with_capacity(raws.len()),
    };
    for (pos, r) in raws.into_iter().enumerate() {
        let (key, value) = if independent && !r.process.is_nemesis() {
            let (k, v) = r.value.and_then(pair).expect("checked above");
            (Some(edn_key_text(k)), v.to_json())
        } else {
            (
                r.key.map(edn_key_text),
                r.value.map_or(serde_json::Value::Null, Edn::to_json),
            )
        };
        h.events.push(Event {
            index: r.index.unwrap_or(pos as u64),
            time: if use_time {
                r.time.unwrap_or(pos as u64)
            } else {
                pos as u64
            },
            process: r.process,
            kind: r.kind,
            f: r.f,
            key,
            value,
            // every EDN :fail is plain "not applied" (as Knossos does)
            error: None,
        });
        h.lines.push(r.line);
    }
    Ok(h)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert_eq!(detect_format("{\"index\":0}"), Some(Format::Jsonl));
        assert_eq!(detect_format("\n  {:type :invoke}"), Some(Format::Edn));
        assert_eq!(
            detect_format("; comment\n[{:type :invoke}]"),
            Some(Format::Edn)
        );
        assert_eq!(detect_format("(\n{:type :ok})"), Some(Format::Edn));
        assert_eq!(detect_format(""), Some(Format::Jsonl));
        assert_eq!(detect_format("hello"), None);
        assert_eq!(detect_format("{ \"a\": 1}"), Some(Format::Jsonl));
    }

    #[test]
    fn jsonl_chunks_keep_line_numbers() {
        let mut text = String::new();
        for i in 0..30_000 {
            if i % 7 == 0 {
                text.push('\n');
            }
            text.push_str(&format!(
                "{{\"index\":{i},\"time\":{i},\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n"
            ));
        }
        let h = parse_jsonl(&text).unwrap();
        assert_eq!(h.events.len(), 30_000);
        let all: Vec<&str> = text.lines().collect();
        for (e, l) in h.events.iter().zip(&h.lines) {
            let line = all[l - 1];
            assert!(line.contains(&format!("\"index\":{},", e.index)));
        }
        // an error deep in the file names its line
        let mut bad = text.clone();
        bad.push_str("{\"index\":1,\n");
        let n = bad.lines().count();
        match parse_jsonl(&bad) {
            Err(CheckError::Malformed { line, .. }) => assert_eq!(line, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn edn_independent_tuples_become_keys() {
        let text = "{:type :invoke, :f :cas, :value [:a [1 2]], :process 1, :time 5}\n\
                    {:type :info, :f :start, :process :nemesis, :time 6}\n\
                    {:type :ok, :f :cas, :value [:a [1 2]], :process 1, :time 15}\n";
        let h = parse_edn(text).unwrap();
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.events[0].key.as_deref(), Some(":a"));
        assert_eq!(h.events[0].value, serde_json::json!([1, 2]));
        assert!(h.events[1].process.is_nemesis());
        assert_eq!(h.lines, vec![1, 2, 3]);
    }

    #[test]
    fn edn_plain_cas_is_not_mistaken_for_tuples() {
        let text = "[{:type :invoke, :f :cas, :value [1 2], :process 1}\n\
                     {:type :fail, :f :cas, :value [1 2], :process 1, :error :mismatch}]";
        let h = parse_edn(text).unwrap();
        assert_eq!(h.events[0].key, None);
        assert_eq!(h.events[0].value, serde_json::json!([1, 2]));
        // no :time: positions are the time
        assert_eq!(h.events[1].time, 1);
        assert_eq!(h.events[1].error, None);
    }

    #[test]
    fn edn_errors_name_the_line() {
        let text = "{:type :invoke, :f :read, :process 0}\n{:type :weird, :f :read, :process 0}\n";
        match parse_edn(text) {
            Err(CheckError::Malformed { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        match parse_edn("{:type :invoke, :f :read, :process 0}\n\n{:type :ok :f :read}") {
            Err(CheckError::Malformed { line, msg }) => {
                assert_eq!(line, 3);
                assert!(msg.contains(":process"));
            }
            other => panic!("{other:?}"),
        }
    }
}
