//! Expectations: assertions on summary figures that an experiment carries, as FoundationDB's
//! test specs do (`linearizable == true`, `availability.ok_fraction >= 0.5`, ...).

use crate::spec::Expectation;
use serde::Serialize;
use serde_json::Value as Json;

/// The verdict on one expectation for one protocol's run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExpectOutcome {
    pub protocol: String,
    pub metric: String,
    pub op: String,
    pub expected: Json,
    /// The figure found (`None` if the summary has no such metric).
    pub actual: Option<Json>,
    pub holds: bool,
}

impl std::fmt::Display for ExpectOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let actual = self
            .actual
            .as_ref()
            .map_or("missing".to_string(), |a| a.to_string());
        write!(
            f,
            "{} {}: {} {} {} (actual {actual})",
            if self.holds { "holds " } else { "FAILED" },
            self.protocol,
            self.metric,
            self.op,
            self.expected
        )
    }
}

fn lookup<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn toml_to_json(v: &toml::Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

fn compare(actual: &Json, op: &str, expected: &Json) -> bool {
    if let (Some(a), Some(b)) = (actual.as_f64(), expected.as_f64()) {
        return match op {
            "==" => a == b,
            "!=" => a != b,
            "<" => a < b,
            "<=" => a <= b,
            ">" => a > b,
            ">=" => a >= b,
            _ => false,
        };
    }
    match op {
        "==" => actual == expected,
        "!=" => actual != expected,
        _ => false,
    }
}

/// Evaluates the expectations that apply to `protocol` against its `summary.json` value.
pub fn evaluate(exps: &[Expectation], protocol: &str, summary: &Json) -> Vec<ExpectOutcome> {
    exps.iter()
        .filter(|e| e.protocols.is_empty() || e.protocols.iter().any(|p| p == protocol))
        .map(|e| {
            let expected = toml_to_json(&e.value);
            let actual = lookup(summary, &e.metric).cloned();
            let holds = actual
                .as_ref()
                .is_some_and(|a| compare(a, &e.op, &expected));
            ExpectOutcome {
                protocol: protocol.to_string(),
                metric: e.metric.clone(),
                op: e.op.clone(),
                expected,
                actual,
                holds,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exp(metric: &str, op: &str, value: toml::Value, protocols: &[&str]) -> Expectation {
        Expectation {
            metric: metric.into(),
            op: op.into(),
            value,
            protocols: protocols.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn numbers_bools_and_filters() {
        let s = json!({"linearizable": true, "availability": {"ok_fraction": 0.8}});
        let e = vec![
            exp("linearizable", "==", toml::Value::Boolean(true), &[]),
            exp(
                "availability.ok_fraction",
                ">=",
                toml::Value::Float(0.9),
                &["raft"],
            ),
            exp(
                "availability.ok_fraction",
                ">",
                toml::Value::Integer(0),
                &[],
            ),
            exp("no.such", "==", toml::Value::Integer(1), &[]),
        ];
        let r = evaluate(&e, "raft", &s);
        assert_eq!(
            r.iter().map(|o| o.holds).collect::<Vec<_>>(),
            vec![true, false, true, false]
        );
        assert_eq!(
            evaluate(&e, "ensemble", &s).len(),
            3,
            "the raft-only one is skipped"
        );
        assert!(r[1].to_string().contains("FAILED raft"));
    }
}
