//! A small, complete-enough EDN reader for Jepsen / Knossos histories.
//!
//! Supports the whole EDN syntax a history may contain: `nil`, booleans, integers (with `N`
//! suffix), floats (with `M` suffix), ratios, strings with escapes, characters, keywords,
//! symbols, lists, vectors, maps, sets, tagged literals (`#inst "…"`, `#uuid "…"`, records),
//! `#_` discards and `;` comments. Commas are whitespace. Every value knows the 1-based line it
//! starts on, so errors and history events can name their line.

use std::fmt::Write as _;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer that does not fit in i64 (kept as its digits).
    BigInt(String),
    Float(f64),
    Str(String),
    Char(char),
    /// A keyword, without its leading `:`.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    /// A map, in source order, with the line each entry's key starts on.
    Map(Vec<(Edn, Edn)>),
    Set(Vec<Edn>),
    Tagged(String, Box<Edn>),
}

/// A syntax error at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdnError {
    pub line: usize,
    pub msg: String,
}

impl Edn {
    /// The entry of a map whose key is the keyword `:name`.
    pub fn get_kw(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(s) if s == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Elements of a list or vector.
    pub fn as_seq(&self) -> Option<&[Edn]> {
        match self {
            Edn::List(v) | Edn::Vector(v) => Some(v),
            _ => None,
        }
    }

    /// The EDN text of this value (compact, `{:a 1, :b 2}` style).
    pub fn to_edn_string(&self) -> String {
        let mut s = String::new();
        self.write_edn(&mut s);
        s
    }

    fn write_edn(&self, s: &mut String) {
        match self {
            Edn::Nil => s.push_str("nil"),
            Edn::Bool(b) => {
                let _ = write!(s, "{b}");
            }
            Edn::Int(i) => {
                let _ = write!(s, "{i}");
            }
            Edn::BigInt(d) => {
                s.push_str(d);
                s.push('N');
            }
            Edn::Float(f) => {
                let _ = write!(s, "{f:?}");
            }
            Edn::Str(t) => {
                let _ = write!(s, "{t:?}");
            }
            Edn::Char(c) => {
                s.push('\\');
                s.push(*c);
            }
            Edn::Keyword(k) => {
                s.push(':');
                s.push_str(k);
            }
            Edn::Symbol(k) => s.push_str(k),
            Edn::List(v) => write_seq(s, "(", ")", v),
            Edn::Vector(v) => write_seq(s, "[", "]", v),
            Edn::Set(v) => write_seq(s, "#{", "}", v),
            Edn::Map(entries) => {
                s.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    k.write_edn(s);
                    s.push(' ');
                    v.write_edn(s);
                }
                s.push('}');
            }
            Edn::Tagged(tag, v) => {
                s.push('#');
                s.push_str(tag);
                s.push(' ');
                v.write_edn(s);
            }
        }
    }

    /// Converts to JSON: nil → null, keywords → `":name"` strings, symbols → strings,
    /// sequences and sets → arrays, maps → objects (non-string keys by their EDN text),
    /// tagged literals → their value, big integers → strings of digits.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Edn::Nil => J::Null,
            Edn::Bool(b) => J::Bool(*b),
            Edn::Int(i) => J::from(*i),
            Edn::BigInt(d) => J::String(d.clone()),
            Edn::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(format!("{f}"))),
            Edn::Str(s) => J::String(s.clone()),
            Edn::Char(c) => J::String(c.to_string()),
            Edn::Keyword(k) => J::String(format!(":{k}")),
            Edn::Symbol(s) => J::String(s.clone()),
            Edn::List(v) | Edn::Vector(v) | Edn::Set(v) => {
                J::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(entries) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    let key = match k {
                        Edn::Str(s) => s.clone(),
                        other => other.to_edn_string(),
                    };
                    m.insert(key, v.to_json());
                }
                J::Object(m)
            }
            Edn::Tagged(_, v) => v.to_json(),
        }
    }
}

fn write_seq(s: &mut String, open: &str, close: &str, v: &[Edn]) {
    s.push_str(open);
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        x.write_edn(s);
    }
    s.push_str(close);
}

/// Parses every top-level form of `text`, each with the 1-based line it starts on.
pub fn parse_all(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
        depth: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_ws()?;
        if p.pos >= p.s.len() {
            return Ok(out);
        }
        let line = p.line;
        match p.value()? {
            Some(v) => out.push((line, v)),
            None => {
                let c = p.s[p.pos] as char;
                return Err(p.err(format!("unexpected '{c}' at top level")));
            }
        }
    }
}

/// Parses a history: either a sequence of top-level forms (Jepsen's `history.edn`, one map
/// per line) or one top-level vector or list whose elements are the events (Knossos's test
/// data). Returns the events with the 1-based line each starts on.
pub fn parse_events(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
        depth: 0,
    };
    p.skip_ws()?;
    let close = match p.s.get(p.pos) {
        Some(b'[') => b']',
        Some(b'(') => b')',
        _ => return parse_all(text),
    };
    let open_line = p.line;
    p.pos += 1;
    let mut out = Vec::new();
    loop {
        p.skip_ws()?;
        match p.s.get(p.pos) {
            None => {
                return Err(EdnError {
                    line: open_line,
                    msg: format!("'{}' opened here is never closed", open_of(close)),
                })
            }
            Some(&c) if c == close => {
                p.pos += 1;
                break;
            }
            Some(_) => {
                let line = p.line;
                match p.value()? {
                    Some(v) => out.push((line, v)),
                    None => {
                        let c = p.s[p.pos] as char;
                        return Err(p.err(format!(
                            "'{c}' closes a '{}' opened on line {open_line}",
                            open_of(close)
                        )));
                    }
                }
            }
        }
    }
    p.skip_ws()?;
    if p.pos < p.s.len() {
        return Err(p.err("unexpected form after the top-level collection of events"));
    }
    Ok(out)
}

const MAX_DEPTH: usize = 512;

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
    depth: usize,
}

fn is_delim(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
    ) || c == 0x0c
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl Into<String>) -> EdnError {
        EdnError {
            line: self.line,
            msg: msg.into(),
        }
    }

    /// Skips whitespace, commas and comments (`;` to end of line, `#_ form`).
    fn skip_ws(&mut self) -> Result<(), EdnError> {
        loop {
            while self.pos < self.s.len() {
                match self.s[self.pos] {
                    b'\n' => {
                        self.line += 1;
                        self.pos += 1;
                    }
                    b' ' | b'\t' | b'\r' | b',' | 0x0c => self.pos += 1,
                    b';' => {
                        while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                            self.pos += 1;
                        }
                    }
                    _ => break,
                }
            }
            if self.s[self.pos..].starts_with(b"#_") {
                self.pos += 2;
                if self.value()?.is_none() {
                    return Err(self.err("#_ must be followed by a form"));
                }
                continue;
            }
            return Ok(());
        }
    }

    /// One value; `None` if the next character closes a collection (left unconsumed).
    fn value(&mut self) -> Result<Option<Edn>, EdnError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let r = self.value_inner();
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self) -> Result<Option<Edn>, EdnError> {
        self.skip_ws()?;
        let Some(&c) = self.s.get(self.pos) else {
            return Err(self.err("unexpected end of input"));
        };
        let v = match c {
            b')' | b']' | b'}' => return Ok(None),
            b'(' => {
                self.pos += 1;
                Edn::List(self.seq(b')')?)
            }
            b'[' => {
                self.pos += 1;
                Edn::Vector(self.seq(b']')?)
            }
            b'{' => {
                let start_line = self.line;
                self.pos += 1;
                let items = self.seq(b'}')?;
                if items.len() % 2 != 0 {
                    return Err(EdnError {
                        line: start_line,
                        msg: "map has an odd number of forms".into(),
                    });
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Edn::Map(entries)
            }
            b'"' => Edn::Str(self.string()?),
            b'\\' => self.character()?,
            b'#' => self.dispatch()?,
            _ => self.atom()?,
        };
        Ok(Some(v))
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Edn>, EdnError> {
        let open_line = self.line;
        let mut out = Vec::new();
        loop {
            self.skip_ws()?;
            match self.s.get(self.pos) {
                None => {
                    return Err(EdnError {
                        line: open_line,
                        msg: format!("'{}' opened here is never closed", open_of(close)),
                    })
                }
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(&c @ (b')' | b']' | b'}')) => {
                    return Err(self.err(format!(
                        "'{}' closes a '{}' opened on line {open_line}",
                        c as char,
                        open_of(close)
                    )))
                }
                Some(_) => match self.value()? {
                    Some(v) => out.push(v),
                    None => unreachable!("closing delimiters handled above"),
                },
            }
        }
    }

    fn dispatch(&mut self) -> Result<Edn, EdnError> {
        // at '#'
        match self.s.get(self.pos + 1) {
            Some(b'{') => {
                self.pos += 2;
                Ok(Edn::Set(self.seq(b'}')?))
            }
            Some(b'#') => {
                // ##Inf, ##-Inf, ##NaN
                self.pos += 2;
                let tok = self.token();
                match tok {
                    "Inf" => Ok(Edn::Float(f64::INFINITY)),
                    "-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Edn::Float(f64::NAN)),
                    _ => Err(self.err(format!("unknown symbolic value ##{tok}"))),
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                self.pos += 1;
                let tag = self.token().to_string();
                match self.value()? {
                    Some(v) => Ok(Edn::Tagged(tag, Box::new(v))),
                    None => Err(self.err(format!("tag #{tag} has no value"))),
                }
            }
            _ => Err(self.err("unsupported '#' dispatch")),
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.pos < self.s.len() && !is_delim(self.s[self.pos]) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn atom(&mut self) -> Result<Edn, EdnError> {
        let tok = self.token();
        if tok.is_empty() {
            let c = self.text[self.pos..].chars().next().unwrap_or(' ');
            return Err(self.err(format!("unexpected character '{c}'")));
        }
        let b = tok.as_bytes();
        if b[0] == b':' {
            let name = &tok[1..];
            if name.is_empty() || name == ":" {
                return Err(self.err(format!("invalid keyword '{tok}'")));
            }
            return Ok(Edn::Keyword(name.trim_start_matches(':').to_string()));
        }
        let numeric = b[0].is_ascii_digit()
            || ((b[0] == b'-' || b[0] == b'+') && b.len() > 1 && b[1].is_ascii_digit());
        if numeric {
            return self.number(tok);
        }
        Ok(match tok {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => Edn::Symbol(tok.to_string()),
        })
    }

    fn number(&self, tok: &str) -> Result<Edn, EdnError> {
        let bad = || self.err(format!("invalid number '{tok}'"));
        if let Some(d) = tok.strip_suffix('N') {
            return match d.parse::<i64>() {
                Ok(i) => Ok(Edn::Int(i)),
                Err(_) if is_int(d) => Ok(Edn::BigInt(d.trim_start_matches('+').to_string())),
                Err(_) => Err(bad()),
            };
        }
        if let Some((n, d)) = tok.split_once('/') {
            let (n, d) = (
                n.parse::<f64>().map_err(|_| bad())?,
                d.parse::<f64>().map_err(|_| bad())?,
            );
            return Ok(Edn::Float(n / d));
        }
        if is_int(tok) {
            return match tok.parse::<i64>() {
                Ok(i) => Ok(Edn::Int(i)),
                Err(_) => Ok(Edn::BigInt(tok.trim_start_matches('+').to_string())),
            };
        }
        let f = tok.strip_suffix('M').unwrap_or(tok);
        f.parse::<f64>().map(Edn::Float).map_err(|_| bad())
    }

    fn string(&mut self) -> Result<String, EdnError> {
        let start_line = self.line;
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self.pos < self.s.len() && !matches!(self.s[self.pos], b'"' | b'\\' | b'\n') {
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.s.get(self.pos) {
                None => {
                    return Err(EdnError {
                        line: start_line,
                        msg: "string opened here is never closed".into(),
                    })
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                    out.push('\n');
                }
                Some(_) => {
                    // backslash
                    let Some(&e) = self.s.get(self.pos + 1) else {
                        return Err(self.err("string ends in a backslash"));
                    };
                    self.pos += 2;
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'u' => {
                            let hex = self
                                .text
                                .get(self.pos..self.pos + 4)
                                .ok_or_else(|| self.err("truncated \\u escape"))?;
                            let cp = u32::from_str_radix(hex, 16)
                                .map_err(|_| self.err(format!("invalid \\u{hex} escape")))?;
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                            self.pos += 4;
                        }
                        other => {
                            return Err(
                                self.err(format!("invalid escape '\\{}' in string", other as char))
                            )
                        }
                    }
                }
            }
        }
    }

    fn character(&mut self) -> Result<Edn, EdnError> {
        self.pos += 1; // backslash
        let start = self.pos;
        // the first character is taken even if it is a delimiter (e.g. `\(` or `\ `)
        let Some(first) = self.text[start..].chars().next() else {
            return Err(self.err("character literal at end of input"));
        };
        self.pos += first.len_utf8();
        while self.pos < self.s.len() && !is_delim(self.s[self.pos]) {
            self.pos += 1;
        }
        let tok = &self.text[start..self.pos];
        let c = match tok {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            t if t.chars().count() == 1 => first,
            t if t.starts_with('u') && t.len() == 5 => u32::from_str_radix(&t[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| self.err(format!("invalid character literal \\{t}")))?,
            t => return Err(self.err(format!("invalid character literal \\{t}"))),
        };
        if first == '\n' {
            self.line += 1;
        }
        Ok(Edn::Char(c))
    }
}

fn is_int(s: &str) -> bool {
    let d = s.strip_prefix(['-', '+']).unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

fn open_of(close: u8) -> char {
    match close {
        b')' => '(',
        b']' => '[',
        _ => '{',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jepsen_maps_with_comments_and_nesting() {
        let text = "; a comment\n{:type :invoke, :f :read, :value nil, :process 0, :time 1}\n\
                    {:type :fail, :f :cas, :value [1 2], :process 1, :error {:why \"x\" :at [1 (2 3)]}}\n\
                    #_ {:ignored true}\n{:type :info :f :start :process :nemesis :value #{1 2} :t #inst \"2020\"}";
        let forms = parse_all(text).unwrap();
        assert_eq!(forms.len(), 3);
        assert_eq!(forms[0].0, 2);
        assert_eq!(forms[1].0, 3);
        assert_eq!(forms[2].0, 5);
        assert_eq!(forms[0].1.get_kw("f"), Some(&Edn::Keyword("read".into())));
        assert_eq!(forms[0].1.get_kw("value"), Some(&Edn::Nil));
        assert_eq!(
            forms[1].1.get_kw("value"),
            Some(&Edn::Vector(vec![Edn::Int(1), Edn::Int(2)]))
        );
        assert_eq!(
            forms[2].1.get_kw("process"),
            Some(&Edn::Keyword("nemesis".into()))
        );
    }

    #[test]
    fn vector_layout_gives_each_event_its_line() {
        let text = "; knossos data\n[{:process 0 :type :invoke :f :read}\n {:process 0 :type :ok :f :read :value 1}\n]\n";
        let ev = parse_events(text).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].0, 2);
        assert_eq!(ev[1].0, 3);
        assert!(parse_events("[{:a 1}] {:b 2}").is_err());
        let ev = parse_events("({:a 1}\n{:a 2})").unwrap();
        assert_eq!(ev[1].0, 2);
    }

    #[test]
    fn scalars() {
        let f = parse_all(r#"-5 +3 12N 99999999999999999999 1.5 2.0M 1/2 "a\"b\n" \a \newline :ns/k sym true nil ##Inf"#)
            .unwrap();
        let v: Vec<Edn> = f.into_iter().map(|(_, v)| v).collect();
        assert_eq!(v[0], Edn::Int(-5));
        assert_eq!(v[1], Edn::Int(3));
        assert_eq!(v[2], Edn::Int(12));
        assert_eq!(v[3], Edn::BigInt("99999999999999999999".into()));
        assert_eq!(v[4], Edn::Float(1.5));
        assert_eq!(v[5], Edn::Float(2.0));
        assert_eq!(v[6], Edn::Float(0.5));
        assert_eq!(v[7], Edn::Str("a\"b\n".into()));
        assert_eq!(v[8], Edn::Char('a'));
        assert_eq!(v[9], Edn::Char('\n'));
        assert_eq!(v[10], Edn::Keyword("ns/k".into()));
        assert_eq!(v[11], Edn::Symbol("sym".into()));
        assert_eq!(v[12], Edn::Bool(true));
        assert_eq!(v[13], Edn::Nil);
        assert_eq!(v[14], Edn::Float(f64::INFINITY));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_all("{:a 1}\n{:b 2\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        let e = parse_all("{:a 1}\n\n[1 2}\n").unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        let e = parse_all("{:a 1 :b}").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_all("\n\"abc").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_all("\n\n)").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_all("{:a 1e}").unwrap_err();
        assert!(e.msg.contains("invalid number"), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(10_000);
        assert!(parse_all(&text).is_err());
        let text = "#_ ".repeat(10_000);
        assert!(parse_all(&text).is_err());
    }
}
