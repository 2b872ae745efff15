//! Compliance mappings: one JSON file per framework in `compliance/`, embedded at build time,
//! mapping a framework's requirement ids to check ids or id prefixes. Data, like the checks'
//! metadata; the findings formats (ASFF, OCSF), the HTML report and `explain` show them, and
//! `tests/it/findings.rs` ties every id and prefix to existing checks.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/compliance_embedded.rs"));
}

/// How a requirement is supported by its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The checks observe the very mechanism the requirement names.
    Direct,
    /// The checks support the requirement in cks-doctor's judgement (the note says how far).
    Judgement,
}

impl Basis {
    pub fn label(self) -> &'static str {
        match self {
            Basis::Direct => "direct",
            Basis::Judgement => "judgement",
        }
    }
}

/// One requirement of a framework and the checks that support it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub title: String,
    /// Check ids or id prefixes (`cloudhsm.hsms` covers `cloudhsm.hsms.two-az`), as `--only`.
    pub checks: Vec<String>,
    pub basis: Basis,
    pub note: String,
}

/// One framework file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// The file name without `.json`.
    pub id: String,
    pub name: String,
    pub version: String,
    pub url: String,
    /// What a requirement id is prefixed with in findings: `NIST.800-53.r5` gives
    /// `NIST.800-53.r5 SC-12`, as AWS's own standards write it.
    pub requirement_prefix: String,
    /// The ASFF finding type (`Types`) a finding of a mapped check also gets, from Security
    /// Hub's type taxonomy (`Software and Configuration Checks/Industry and Regulatory
    /// Standards/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asff_type: Option<String>,
    /// Requirement id → mapping, in the file's order.
    #[serde(with = "ordered")]
    pub mappings: Vec<(String, Mapping)>,
}

/// A JSON object kept in its order (serde_json's `preserve_order` is on).
mod ordered {
    use super::Mapping;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[(String, Mapping)], s: S) -> Result<S::Ok, S::Error> {
        let mut m = serde_json::Map::new();
        for (k, x) in v {
            m.insert(
                k.clone(),
                serde_json::to_value(x).map_err(serde::ser::Error::custom)?,
            );
        }
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, Mapping)>, D::Error> {
        let m = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| {
                serde_json::from_value(v)
                    .map(|x| (k.clone(), x))
                    .map_err(|e| serde::de::Error::custom(format!("{k}: {e}")))
            })
            .collect()
    }
}

/// A requirement a check supports.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub framework: &'static Framework,
    pub id: &'static str,
    pub mapping: &'static Mapping,
}

impl Requirement {
    /// `NIST.800-53.r5 SC-12`.
    pub fn label(&self) -> String {
        format!("{} {}", self.framework.requirement_prefix, self.id)
    }
}

/// Whether a check id is named by a mapping entry (the id itself or a prefix of it).
pub fn matches(check_id: &str, pattern: &str) -> bool {
    check_id == pattern
        || (check_id.starts_with(pattern) && check_id[pattern.len()..].starts_with('.'))
}

/// Parses and validates every embedded framework file.
pub fn load_all() -> Result<Vec<Framework>, String> {
    let mut out = Vec::new();
    for (file, text) in embedded::EMBEDDED {
        let f: Framework =
            serde_json::from_str(text).map_err(|e| format!("compliance/{file}: {e}"))?;
        if format!("{}.json", f.id) != *file {
            return Err(format!(
                "compliance/{file}: id {:?} does not match the file name",
                f.id
            ));
        }
        for (field, v) in [
            ("name", &f.name),
            ("version", &f.version),
            ("requirement_prefix", &f.requirement_prefix),
        ] {
            if v.trim().is_empty() {
                return Err(format!("compliance/{file}: {field} is empty"));
            }
        }
        if !f.url.starts_with("https://") {
            return Err(format!("compliance/{file}: url must be https"));
        }
        for (id, m) in &f.mappings {
            if id.trim().is_empty() || id.contains(char::is_whitespace) {
                return Err(format!("compliance/{file}: requirement id {id:?}"));
            }
            if m.title.trim().is_empty() || m.note.trim().is_empty() || m.checks.is_empty() {
                return Err(format!(
                    "compliance/{file}: {id} needs a title, a note and at least one check"
                ));
            }
        }
        out.push(f);
    }
    Ok(out)
}

/// Every framework, loaded once. The files are validated by the test suite, so a failure here
/// means a broken build.
pub fn frameworks() -> &'static [Framework] {
    static ALL: OnceLock<Vec<Framework>> = OnceLock::new();
    ALL.get_or_init(|| {
        load_all().unwrap_or_else(|e| panic!("invalid embedded compliance mapping: {e}"))
    })
}

/// The requirements a check supports, framework by framework in file order.
pub fn for_check(check_id: &str) -> Vec<Requirement> {
    let mut out = Vec::new();
    for f in frameworks() {
        for (id, m) in &f.mappings {
            if m.checks.iter().any(|p| matches(check_id, p)) {
                out.push(Requirement {
                    framework: f,
                    id,
                    mapping: m,
                });
            }
        }
    }
    out
}

/// `NIST.800-53.r5 SC-12, NIST.800-53.r5 SC-13`, or empty.
pub fn labels(check_id: &str) -> Vec<String> {
    for_check(check_id).iter().map(Requirement::label).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(matches("cloudhsm.hsms.two-az", "cloudhsm.hsms"));
        assert!(matches("cloudhsm.hsms", "cloudhsm.hsms"));
        assert!(!matches("cloudhsm.hsmsx", "cloudhsm.hsms"));
        assert!(!matches("key2.x", "key"));
        assert!(matches("key.quota", "key"));
    }

    #[test]
    fn the_embedded_files_load() {
        let all = load_all().unwrap();
        assert!(all.iter().any(|f| f.id == "nist-800-53-r5"));
        assert!(labels("cloudhsm.hsms.two-az").contains(&"NIST.800-53.r5 SC-36".to_string()));
    }
}
