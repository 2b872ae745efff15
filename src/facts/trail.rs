//! CloudTrail events of custom key stores as a fact (`FactKind::Trail`, docs/cloudtrail.md).
//!
//! LookupEvents takes ONE lookup attribute a call and is rate limited (2 requests a second per
//! account per Region), so one read makes the fewest calls that answer both trail checks, for
//! every store of the Region at once (none of the lookups names a store):
//!
//! * one `EventName` lookup per custom key store management event ([`MANAGEMENT_EVENTS`]:
//!   Create, Connect, Disconnect, Update, DeleteCustomKeyStore) over the `--since` window,
//!   every page (at most [`MANAGEMENT_PAGE_CAP`] pages each, a safety bound said when hit);
//! * one `EventSource = kms.amazonaws.com` lookup for failed calls against the stores' keys,
//!   bounded: the [`KMS_PAGE_CAP`] most recent pages (50 events a page), newest first. Every
//!   KMS call of the account in the Region is in that lookup, so a busy account reaches the
//!   cap long before the window's start; the check then says how far back it read.
//!
//! The calls are made one after another, at most [`CALLS_PER_SECOND`] a second ([`Pace`]).
//! A snapshot holds what `aws cloudtrail lookup-events` prints (`{"Events": [...]}`), the
//! lookups' events joined; it does not record the window or whether a bound was hit.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The custom key store management events, each looked up by name.
pub const MANAGEMENT_EVENTS: [&str; 5] = [
    "CreateCustomKeyStore",
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
];
/// The event source of KMS's events.
pub const KMS_EVENT_SOURCE: &str = "kms.amazonaws.com";
/// LookupEvents answers at most 50 events a page.
pub const PAGE_SIZE: i32 = 50;
/// Pages read of the KMS event source lookup (the 500 most recent KMS events).
pub const KMS_PAGE_CAP: usize = 10;
/// Pages read of each management event lookup (a bound that a store's own changes never reach
/// in practice; said when hit).
pub const MANAGEMENT_PAGE_CAP: usize = 20;
/// LookupEvents' quota: 2 requests a second per account per Region.
pub const CALLS_PER_SECOND: usize = 2;

/// The window a read asks for: the last `since` (the metrics' `--since`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailWindow {
    pub since: Duration,
}

/// One LookupEvents lookup (one attribute, every page up to its cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    EventName(&'static str),
    KmsEvents,
}

impl Lookup {
    /// Every lookup one read makes, in order.
    pub fn all() -> Vec<Lookup> {
        MANAGEMENT_EVENTS
            .iter()
            .map(|n| Lookup::EventName(n))
            .chain([Lookup::KmsEvents])
            .collect()
    }
    /// The lookup attribute: (AttributeKey, AttributeValue).
    pub fn attribute(self) -> (&'static str, &'static str) {
        match self {
            Lookup::EventName(n) => ("EventName", n),
            Lookup::KmsEvents => ("EventSource", KMS_EVENT_SOURCE),
        }
    }
    pub fn page_cap(self) -> usize {
        match self {
            Lookup::EventName(_) => MANAGEMENT_PAGE_CAP,
            Lookup::KmsEvents => KMS_PAGE_CAP,
        }
    }
    pub fn describe(self) -> String {
        let (k, v) = self.attribute();
        format!("{k}={v}")
    }
}

/// What one lookup of a live read did.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupSummary {
    pub lookup: Lookup,
    pub pages: usize,
    pub events: usize,
    /// More pages were left unread (the page cap was hit).
    pub truncated: bool,
    /// The oldest event read (seconds since the epoch).
    pub oldest: Option<i64>,
}

/// `aws cloudtrail lookup-events --output json` (every page: the CLI joins them; several
/// lookups joined with `jq -s '{Events: map(.Events) | add}'`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsOutput {
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event as LookupEvents returns it; `CloudTrailEvent` is the JSON record as a string.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// As the CLI prints it (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_trail_event: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

/// The window a live read covered (a snapshot does not record it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWindow {
    pub start: i64,
    pub end: i64,
    pub since: Duration,
}

/// One read: every event of every lookup (each event once), and how each lookup went.
#[derive(Debug, Clone)]
pub struct TrailData {
    pub output: Arc<LookupEventsOutput>,
    pub window: Option<ReadWindow>,
    /// Empty for a snapshot.
    pub lookups: Vec<LookupSummary>,
}

impl TrailData {
    /// Joins the lookups' events, each event once (by EventId).
    pub fn join(parts: Vec<Vec<Event>>) -> LookupEventsOutput {
        let mut seen = std::collections::BTreeSet::new();
        let mut events = Vec::new();
        for e in parts.into_iter().flatten() {
            if let Some(id) = &e.event_id {
                if !seen.insert(id.clone()) {
                    continue;
                }
            }
            events.push(e);
        }
        LookupEventsOutput { events }
    }

    /// The KMS event source lookup's summary, when this read made it.
    pub fn kms_lookup(&self) -> Option<&LookupSummary> {
        self.lookups.iter().find(|l| l.lookup == Lookup::KmsEvents)
    }

    /// The window in words.
    pub fn window_text(&self) -> String {
        match self.window {
            Some(w) => format!(
                "the last {} ({} to {})",
                super::metrics::show_duration(w.since),
                super::metrics::format_time(w.start),
                super::metrics::format_time(w.end)
            ),
            None => "the recorded events".to_string(),
        }
    }
}

/// At most [`CALLS_PER_SECOND`] calls in any second: waits before a call that would exceed it.
#[derive(Debug, Default)]
pub struct Pace {
    sent: std::collections::VecDeque<tokio::time::Instant>,
}

impl Pace {
    pub async fn wait(&mut self) {
        let second = Duration::from_secs(1);
        if self.sent.len() >= CALLS_PER_SECOND {
            if let Some(first) = self.sent.pop_front() {
                tokio::time::sleep_until(first + second).await;
            }
        }
        self.sent.push_back(tokio::time::Instant::now());
    }
}

/// What the checks read of one event: its LookupEvents fields and its JSON record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrailEvent {
    pub event_id: String,
    pub event_name: String,
    pub event_source: String,
    /// Seconds since the epoch (the record's eventTime, else LookupEvents').
    pub time: Option<i64>,
    /// userIdentity.arn, else its type (e.g. AWSService) or invokedBy.
    pub who: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// requestParameters.customKeyStoreId, responseElements.customKeyStoreId (Create) or
    /// additionalEventData.customKeyStoreId (calls with a key in a custom key store).
    pub custom_key_store_id: Option<String>,
    /// requestParameters.customKeyStoreName (a failed Create names no id).
    pub custom_key_store_name: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub request_id: Option<String>,
    /// resources[].ARN of the record and ResourceName of LookupEvents, plus
    /// requestParameters.keyId.
    pub keys: Vec<String>,
    /// The names (never the values) of requestParameters, customKeyStoreId aside.
    pub parameter_names: Vec<String>,
    /// responseElements is null (ConnectCustomKeyStore: the outcome is not recorded).
    pub response_null: bool,
}

impl TrailEvent {
    /// Reads an event; `Err` names what could not be read (the event is then left out).
    pub fn parse(e: &Event) -> Result<TrailEvent, String> {
        use serde_json::Value;
        let record: Value = match &e.cloud_trail_event {
            Some(t) => serde_json::from_str(t).map_err(|err| {
                format!(
                    "event {}: CloudTrailEvent is not JSON ({err})",
                    e.event_id.as_deref().unwrap_or("?")
                )
            })?,
            None => Value::Null,
        };
        let s = |v: &Value| v.as_str().map(str::to_string).filter(|s| !s.is_empty());
        let identity = &record["userIdentity"];
        let who = s(&identity["arn"])
            .or_else(|| s(&identity["invokedBy"]))
            .or_else(|| s(&identity["type"]))
            .or_else(|| e.username.clone())
            .unwrap_or_else(|| "an unknown principal".into());
        let time = s(&record["eventTime"])
            .and_then(|t| super::metrics::parse_time(&t))
            .or_else(|| e.event_time.as_deref().and_then(super::metrics::parse_time));
        let request = &record["requestParameters"];
        let custom_key_store_id = s(&request["customKeyStoreId"])
            .or_else(|| s(&record["responseElements"]["customKeyStoreId"]))
            .or_else(|| s(&record["additionalEventData"]["customKeyStoreId"]));
        let mut keys: Vec<String> = Vec::new();
        if let Some(rs) = record["resources"].as_array() {
            keys.extend(rs.iter().filter_map(|r| s(&r["ARN"])));
        }
        keys.extend(
            e.resources
                .iter()
                .filter(|r| r.resource_type.as_deref() == Some("AWS::KMS::Key"))
                .filter_map(|r| r.resource_name.clone()),
        );
        keys.extend(s(&request["keyId"]));
        keys.sort();
        keys.dedup();
        let parameter_names = request
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| k.as_str() != "customKeyStoreId")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(TrailEvent {
            event_id: e
                .event_id
                .clone()
                .or_else(|| s(&record["eventID"]))
                .unwrap_or_default(),
            event_name: s(&record["eventName"])
                .or_else(|| e.event_name.clone())
                .unwrap_or_default(),
            event_source: s(&record["eventSource"])
                .or_else(|| e.event_source.clone())
                .unwrap_or_default(),
            time,
            who,
            source_ip: s(&record["sourceIPAddress"]),
            user_agent: s(&record["userAgent"]),
            custom_key_store_id,
            custom_key_store_name: s(&request["customKeyStoreName"]),
            error_code: s(&record["errorCode"]),
            error_message: s(&record["errorMessage"]),
            request_id: s(&record["requestID"]),
            keys,
            parameter_names,
            response_null: record.get("responseElements").is_some_and(Value::is_null),
        })
    }

    pub fn is_management(&self) -> bool {
        MANAGEMENT_EVENTS.contains(&self.event_name.as_str())
    }

    pub fn failed(&self) -> bool {
        self.error_code.is_some()
    }

    /// "2024-06-01T12:00:00+00:00 UpdateCustomKeyStore by arn:... from 192.0.2.0 (aws-cli/2)".
    pub fn line(&self) -> String {
        let mut out = format!(
            "{} {} by {}",
            self.time
                .map(super::metrics::format_time)
                .unwrap_or_else(|| "(no time)".into()),
            self.event_name,
            self.who
        );
        if let Some(ip) = &self.source_ip {
            out.push_str(&format!(" from {ip}"));
        }
        if let Some(ua) = &self.user_agent {
            out.push_str(&format!(" ({})", one_line(ua, 80)));
        }
        if let Some(c) = &self.error_code {
            out.push_str(&format!(
                ": failed, {c}{}",
                self.error_message
                    .as_deref()
                    .map(|m| format!(" \"{}\"", one_line(m, 200)))
                    .unwrap_or_default()
            ));
        }
        if !self.parameter_names.is_empty() && self.event_name == "UpdateCustomKeyStore" {
            out.push_str(&format!("; changed: {}", self.parameter_names.join(", ")));
        }
        if let Some(r) = &self.request_id {
            out.push_str(&format!("; request id {r}"));
        }
        out
    }
}

fn one_line(s: &str, max: usize) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// The part of a read about one store.
#[derive(Debug, Clone, Default)]
pub struct StoreTrail {
    pub store_id: String,
    /// The store's management events, oldest first.
    pub changes: Vec<TrailEvent>,
    /// Failed calls (other than management events) against the store's keys, oldest first.
    pub failed_calls: Vec<TrailEvent>,
    /// Events that could not be read.
    pub notes: Vec<String>,
}

impl StoreTrail {
    /// This store's events: management events that name it (by id, or a Create by its name),
    /// and failed calls whose key is one of `keys` (ids or ARNs of the store's keys) or whose
    /// record names the store (additionalEventData.customKeyStoreId).
    pub fn of(data: &TrailData, store_id: &str, store_name: &str, keys: &[String]) -> StoreTrail {
        let mut out = StoreTrail {
            store_id: store_id.to_string(),
            ..Default::default()
        };
        let key_matches = |k: &str| {
            keys.iter().any(|mine| {
                mine == k || k.rsplit('/').next() == Some(mine.as_str()) || {
                    mine.rsplit('/').next() == Some(k)
                }
            })
        };
        for e in &data.output.events {
            let e = match TrailEvent::parse(e) {
                Ok(e) => e,
                Err(why) => {
                    out.notes.push(why);
                    continue;
                }
            };
            let names_store = e.custom_key_store_id.as_deref() == Some(store_id);
            if e.is_management() {
                let by_name = e.custom_key_store_id.is_none()
                    && e.event_name == "CreateCustomKeyStore"
                    && e.custom_key_store_name.as_deref() == Some(store_name);
                if names_store || by_name {
                    out.changes.push(e);
                }
            } else if e.failed() && (names_store || e.keys.iter().any(|k| key_matches(k))) {
                out.failed_calls.push(e);
            }
        }
        out.changes.sort_by_key(|e| e.time);
        out.failed_calls.sort_by_key(|e| e.time);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(record: serde_json::Value) -> Event {
        Event {
            event_id: record["eventID"].as_str().map(str::to_string),
            event_name: record["eventName"].as_str().map(str::to_string),
            cloud_trail_event: Some(record.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn events_are_read_and_matched_to_their_store() {
        let store = "cks-1234567890abcdef0";
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let data = TrailData {
            output: Arc::new(TrailData::join(vec![
                vec![
                    event(serde_json::json!({
                        "eventID": "e1", "eventName": "UpdateCustomKeyStore",
                        "eventTime": "2024-06-01T12:00:00Z",
                        "userIdentity": {"arn": "arn:aws:iam::111122223333:user/Alice"},
                        "sourceIPAddress": "192.0.2.0", "userAgent": "aws-cli/2",
                        "requestParameters": {"customKeyStoreId": store, "xksProxyUriPath": "/kms/xks/v1"},
                        "responseElements": null, "requestID": "r1"
                    })),
                    event(serde_json::json!({
                        "eventID": "e2", "eventName": "Decrypt",
                        "errorCode": "KMSInvalidStateException", "errorMessage": "m",
                        "resources": [{"ARN": key}], "requestID": "r2"
                    })),
                    event(serde_json::json!({
                        "eventID": "e3", "eventName": "Decrypt", "errorCode": "X",
                        "resources": [{"ARN": "arn:aws:kms:us-east-1:111122223333:key/other"}]
                    })),
                ],
                vec![event(
                    serde_json::json!({"eventID": "e1", "eventName": "UpdateCustomKeyStore"}),
                )],
            ])),
            window: None,
            lookups: Vec::new(),
        };
        assert_eq!(data.output.events.len(), 3);
        let s = StoreTrail::of(
            &data,
            store,
            "name",
            &["1234abcd-12ab-34cd-56ef-1234567890ab".into()],
        );
        assert_eq!(s.changes.len(), 1);
        assert_eq!(s.changes[0].parameter_names, vec!["xksProxyUriPath"]);
        assert!(s.changes[0].response_null);
        assert!(s.changes[0].line().contains("by arn:aws:iam::111122223333:user/Alice from 192.0.2.0 (aws-cli/2); changed: xksProxyUriPath; request id r1"));
        assert_eq!(s.failed_calls.len(), 1);
        assert_eq!(s.failed_calls[0].request_id.as_deref(), Some("r2"));
    }

    #[test]
    fn one_lookup_per_management_event_and_one_for_kms() {
        let all = Lookup::all();
        assert_eq!(all.len(), 6);
        assert_eq!(all[5].attribute(), ("EventSource", "kms.amazonaws.com"));
    }
}
