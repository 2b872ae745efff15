//! The kind of custom key store: the one enum every part of cks-doctor uses for it (check
//! metadata, the codes table, a report's target, `iam-policy --kind`).

use serde::{Deserialize, Serialize};

/// A custom key store kind, or `Any` for what applies to both kinds (request and account
/// rules, codes of both kinds, a scan row that is about a Region rather than one store).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// An AWS CloudHSM key store (`CustomKeyStoreType` `AWS_CLOUDHSM`).
    #[default]
    Cloudhsm,
    /// An external key store (`EXTERNAL_KEY_STORE`, XKS).
    Xks,
    /// Both kinds (`iam-policy --kind all`).
    #[value(name = "all")]
    Any,
}

impl StoreKind {
    /// The kind of a store as `DescribeCustomKeyStores` reports it.
    pub fn of_type(custom_key_store_type: Option<&str>) -> StoreKind {
        match custom_key_store_type {
            Some("EXTERNAL_KEY_STORE") => StoreKind::Xks,
            _ => StoreKind::Cloudhsm,
        }
    }

    /// The lowercase name reports print (`cloudhsm`, `xks`, `any`).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Cloudhsm => "cloudhsm",
            StoreKind::Xks => "xks",
            StoreKind::Any => "any",
        }
    }

    /// True when something of this kind applies to a store of kind `other` (`Any` applies to
    /// every kind and every kind applies to `Any`).
    pub fn applies_to(self, other: StoreKind) -> bool {
        self == StoreKind::Any || other == StoreKind::Any || self == other
    }

    /// The name the codes table has always serialized (`cloud_hsm`, `external`, `both`).
    pub fn code_table_name(self) -> &'static str {
        match self {
            StoreKind::Cloudhsm => "cloud_hsm",
            StoreKind::Xks => "external",
            StoreKind::Any => "both",
        }
    }

    /// A human label for one store of this kind.
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::Cloudhsm => "AWS CloudHSM key store",
            StoreKind::Xks => "external key store (XKS)",
            StoreKind::Any => "both (AWS CloudHSM and external key stores)",
        }
    }

    /// A label for every store of this kind (the check catalogue).
    pub fn plural_label(self) -> &'static str {
        match self {
            StoreKind::Cloudhsm => "AWS CloudHSM key stores",
            StoreKind::Xks => "external key stores (XKS)",
            StoreKind::Any => "every key store kind",
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::StoreKind;
    use clap::ValueEnum;

    #[test]
    fn names_stay_what_every_output_already_prints() {
        let json = |k: StoreKind| serde_json::to_value(k).unwrap();
        assert_eq!(json(StoreKind::Cloudhsm), "cloudhsm");
        assert_eq!(json(StoreKind::Xks), "xks");
        assert_eq!(json(StoreKind::Any), "any");
        // `iam-policy --kind all` keeps its command-line name.
        assert_eq!(StoreKind::from_str("all", true), Ok(StoreKind::Any));
        assert_eq!(StoreKind::Xks.code_table_name(), "external");
        assert!(StoreKind::Any.applies_to(StoreKind::Xks));
        assert!(StoreKind::Cloudhsm.applies_to(StoreKind::Any));
        assert!(!StoreKind::Cloudhsm.applies_to(StoreKind::Xks));
    }
}
