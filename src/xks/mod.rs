//! External key stores: the XKS proxy probe and TLS trust evaluation.

pub mod address;
pub mod api;
pub mod conformance;
pub mod probe;
pub mod trust;
