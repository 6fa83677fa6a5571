//! Minimal CSV writing (RFC 4180 quoting), for notebooks.

use std::fmt::Write as _;

/// A CSV table built in memory.
#[derive(Clone, Debug, Default)]
pub struct Csv {
    out: String,
    columns: usize,
}

/// Quotes a field when it needs it.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number for CSV: integers without a fraction, others with up to 6 decimals, empty for
/// NaN/None.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        String::new()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.6}");
        let s = s.trim_end_matches('0');
        s.trim_end_matches('.').to_string()
    }
}

pub fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

impl Csv {
    pub fn new<S: AsRef<str>>(header: &[S]) -> Self {
        let mut c = Csv {
            out: String::new(),
            columns: header.len(),
        };
        c.row(header);
        c
    }

    /// Appends a row (its length should match the header).
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        debug_assert!(self.columns == 0 || cells.len() == self.columns);
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{}", field(c.as_ref()));
        }
        self.out.push('\n');
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_numbers() {
        let mut c = Csv::new(&["a", "b"]);
        c.row(&["x,y", "say \"hi\""]);
        assert_eq!(c.into_string(), "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(f64::NAN), "");
        assert_eq!(num(1.0 / 3.0), "0.333333");
    }
}
