//! `cks-doctor connect`: the one use case that changes anything in an AWS account.
//!
//! ConnectCustomKeyStore returns at once; the outcome arrives minutes later and only
//! DescribeCustomKeyStores shows it (its CloudTrail entry has no response). A FAILED store must
//! be disconnected before KMS accepts another Connect. This module is the engine side of
//! following a connection to its end:
//!
//! - the state machine, pure: [`Plan::for_state`] (what to do from the state read before
//!   anything changes), [`first_step`] and [`after_poll`] (what to do after each read), with
//!   [`Backoff`] between reads;
//! - [`Connector`]: the three KMS calls (ConnectCustomKeyStore, DisconnectCustomKeyStore,
//!   DescribeCustomKeyStores for one store) on the live source's KMS client, and
//!   [`Connector::drive`], which runs the state machine against them and writes what it did
//!   into a [`Journal`] that outlives it (so that a Ctrl-C, which drops the drive, can still say
//!   what was changed and what the store's last known state is).
//!
//! Nothing here asks, prints or knows about a terminal: the command line does (`src/cli/connect.rs`).

use crate::facts::live::classify;
use crate::facts::model::CustomKeyStore;
use crate::facts::FactError;
use crate::kind::StoreKind;
use aws_sdk_kms::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The IAM actions `connect` needs (`cks-doctor iam-policy --connect`), besides the read-only
/// ones of the checks it runs first.
pub const IAM_ACTIONS: [&str; 3] = [
    "kms:ConnectCustomKeyStore",
    "kms:DescribeCustomKeyStores",
    "kms:DisconnectCustomKeyStore",
];

/// How long `--wait` follows a connection by default: KMS documents up to 20 minutes for an
/// AWS CloudHSM key store, about 5 for an external key store (10 leaves a margin).
pub fn default_max_wait(kind: StoreKind) -> Duration {
    match kind {
        StoreKind::Xks => Duration::from_secs(10 * 60),
        _ => Duration::from_secs(20 * 60),
    }
}

/// Reads of a phase that may still show the state from before the call that began it (KMS is
/// eventually consistent): a store still DISCONNECTED just after Connect was accepted is not
/// yet "someone disconnected it".
pub const GRACE_POLLS: u32 = 3;

/// DescribeCustomKeyStores calls in a row that may fail (throttled, unreachable, timed out:
/// the SDK has already retried each) before the wait gives up. A denied call ends it at once.
pub const POLL_FAILURES_TOLERATED: u32 = 3;

// ------------------------------------------------------------------------------------------------
// the state machine (pure)

/// A ConnectionState as DescribeCustomKeyStores reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Connected,
    Connecting,
    Disconnected,
    Disconnecting,
    Failed,
    /// A value newer than this build (or none): shown as it is, never acted on.
    Other(String),
}

impl State {
    pub fn parse(s: &str) -> State {
        match s {
            "CONNECTED" => State::Connected,
            "CONNECTING" => State::Connecting,
            "DISCONNECTED" => State::Disconnected,
            "DISCONNECTING" => State::Disconnecting,
            "FAILED" => State::Failed,
            other => State::Other(other.to_string()),
        }
    }

    pub fn of(store: &CustomKeyStore) -> State {
        State::parse(store.connection_state.as_deref().unwrap_or_default())
    }

    pub fn name(&self) -> &str {
        match self {
            State::Connected => "CONNECTED",
            State::Connecting => "CONNECTING",
            State::Disconnected => "DISCONNECTED",
            State::Disconnecting => "DISCONNECTING",
            State::Failed => "FAILED",
            State::Other(s) if s.is_empty() => "(no ConnectionState)",
            State::Other(s) => s,
        }
    }
}

/// What `connect` does about a store, decided from the state read before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// CONNECTED: nothing to do.
    AlreadyConnected,
    /// CONNECTING: a connection is in progress; follow it, call nothing.
    Follow,
    /// DISCONNECTED: ConnectCustomKeyStore, then follow it.
    Connect,
    /// FAILED: KMS rejects Connect (CustomKeyStoreInvalidStateException) until the store is
    /// disconnected: DisconnectCustomKeyStore, wait for DISCONNECTED, then connect.
    DisconnectThenConnect,
    /// DISCONNECTING: KMS rejects both Connect and Disconnect now; wait for DISCONNECTED (a
    /// disconnection someone else started), then connect.
    AwaitDisconnectedThenConnect,
    /// A state this build does not know: nothing is done.
    Unsupported(String),
}

impl Plan {
    pub fn for_state(state: &State) -> Plan {
        match state {
            State::Connected => Plan::AlreadyConnected,
            State::Connecting => Plan::Follow,
            State::Disconnected => Plan::Connect,
            State::Failed => Plan::DisconnectThenConnect,
            State::Disconnecting => Plan::AwaitDisconnectedThenConnect,
            State::Other(s) => Plan::Unsupported(s.clone()),
        }
    }

    /// Whether it calls ConnectCustomKeyStore or DisconnectCustomKeyStore (the checks run first
    /// only then: following a connection in progress changes nothing).
    pub fn changes_anything(&self) -> bool {
        matches!(
            self,
            Plan::Connect | Plan::DisconnectThenConnect | Plan::AwaitDisconnectedThenConnect
        )
    }

    /// Whether the operator must agree first (a terminal's y/N, or --yes): disconnecting a
    /// FAILED store, or connecting again a store someone else is disconnecting.
    pub fn needs_confirmation(&self) -> bool {
        matches!(
            self,
            Plan::DisconnectThenConnect | Plan::AwaitDisconnectedThenConnect
        )
    }

    /// The steps, in order, as `--dry-run` lists them (`wait` says whether the command follows
    /// the connection to its end).
    pub fn steps(
        &self,
        id: &str,
        wait: bool,
        max_wait: Duration,
        backoff: &Backoff,
    ) -> Vec<String> {
        let follow = format!(
            "wait up to {} for CONNECTED or FAILED (DescribeCustomKeyStores {}); on FAILED, diagnose it",
            format_duration(max_wait),
            backoff.describe()
        );
        let connect = format!("ConnectCustomKeyStore {id}");
        let mut steps = match self {
            Plan::AlreadyConnected => vec![format!("nothing: {id} is already CONNECTED")],
            Plan::Unsupported(s) => vec![format!(
                "nothing: {id} has ConnectionState {}, which this version does not act on",
                State::parse(s).name()
            )],
            Plan::Follow => vec![],
            Plan::Connect => vec![connect],
            Plan::DisconnectThenConnect => vec![
                format!("DisconnectCustomKeyStore {id} (after asking on a terminal; --yes in scripts)"),
                format!(
                    "wait up to {} for DISCONNECTED",
                    format_duration(max_wait)
                ),
                connect,
            ],
            Plan::AwaitDisconnectedThenConnect => vec![
                format!(
                    "wait up to {} for DISCONNECTED (someone else is disconnecting it; after asking on a terminal; --yes in scripts)",
                    format_duration(max_wait)
                ),
                connect,
            ],
        };
        match self {
            Plan::Follow if wait => steps.push(format!("nothing but follow the connection in progress: {follow}")),
            Plan::Follow => steps.push("nothing: a connection is already in progress (CONNECTING); --wait follows it".into()),
            p if p.changes_anything() && wait => steps.push(follow),
            p if p.changes_anything() => steps.push(
                "return once ConnectCustomKeyStore is accepted (--wait follows it to CONNECTED or FAILED)".into(),
            ),
            _ => {}
        }
        steps
    }
}

/// Which state the driver waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// After DisconnectCustomKeyStore (or a disconnection in progress): DISCONNECTED.
    AwaitDisconnected,
    /// After ConnectCustomKeyStore (or a connection in progress): CONNECTED or FAILED.
    AwaitConnected,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Disconnect,
    Connect,
    /// Read the store again (after the backoff's delay), waiting in this phase.
    Wait(Phase),
    Done(End),
}

/// Where it ended, as far as the state machine is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// CONNECTED: after the connect (or a connection someone else started).
    Connected,
    /// CONNECTED before anything was done.
    AlreadyConnected,
    /// FAILED, with the ConnectionErrorCode KMS gave.
    Failed { error_code: Option<String> },
    /// A state the command did not take it to (another caller acted on the store, or a state
    /// this build does not know).
    Unexpected { state: String, why: String },
}

/// The first step, from the plan.
pub fn first_step(plan: &Plan) -> Next {
    match plan {
        Plan::AlreadyConnected => Next::Done(End::AlreadyConnected),
        Plan::Follow => Next::Wait(Phase::AwaitConnected),
        Plan::Connect => Next::Connect,
        Plan::DisconnectThenConnect => Next::Disconnect,
        Plan::AwaitDisconnectedThenConnect => Next::Wait(Phase::AwaitDisconnected),
        Plan::Unsupported(s) => Next::Done(End::Unexpected {
            state: State::parse(s).name().to_string(),
            why: "this version of cks-doctor does not act on that ConnectionState".into(),
        }),
    }
}

/// The step after a read of the store in `phase`: `state` and `error_code` as read, `polls` the
/// number of reads in this phase so far, this one included.
pub fn after_poll(phase: Phase, state: &State, error_code: Option<&str>, polls: u32) -> Next {
    let unexpected = |why: &str| {
        Next::Done(End::Unexpected {
            state: state.name().to_string(),
            why: why.to_string(),
        })
    };
    let in_grace = polls <= GRACE_POLLS;
    match (phase, state) {
        (_, State::Other(_)) => unexpected("this version of cks-doctor does not act on that ConnectionState"),
        (Phase::AwaitDisconnected, State::Disconnected) => Next::Connect,
        (Phase::AwaitDisconnected, State::Disconnecting) => Next::Wait(phase),
        // Read before the disconnection shows.
        (Phase::AwaitDisconnected, State::Failed) if in_grace => Next::Wait(phase),
        (Phase::AwaitDisconnected, State::Failed) => {
            unexpected("the store is still FAILED after DisconnectCustomKeyStore was accepted")
        }
        // Someone else connected it meanwhile: follow that connection instead.
        (Phase::AwaitDisconnected, State::Connecting) => Next::Wait(Phase::AwaitConnected),
        (Phase::AwaitDisconnected, State::Connected) => Next::Done(End::Connected),
        (Phase::AwaitConnected, State::Connected) => Next::Done(End::Connected),
        (Phase::AwaitConnected, State::Failed) => Next::Done(End::Failed {
            error_code: error_code.map(str::to_string),
        }),
        (Phase::AwaitConnected, State::Connecting) => Next::Wait(phase),
        // Read before the connection shows.
        (Phase::AwaitConnected, State::Disconnected) if in_grace => Next::Wait(phase),
        (Phase::AwaitConnected, State::Disconnected) => unexpected(
            "the store went back to DISCONNECTED: another caller disconnected it while it was connecting",
        ),
        (Phase::AwaitConnected, State::Disconnecting) => {
            unexpected("another caller is disconnecting the store")
        }
    }
}

/// The delays between reads: 2 s doubling to 30 s (a 20-minute wait is about 45 calls), or a
/// fixed interval (`--poll-interval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(2);
    pub const MAX: Duration = Duration::from_secs(30);

    pub fn standard() -> Backoff {
        Backoff {
            next: Backoff::FIRST,
            max: Backoff::MAX,
        }
    }

    pub fn fixed(every: Duration) -> Backoff {
        Backoff {
            next: every,
            max: every,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn describe(&self) -> String {
        if self.next >= self.max {
            format!("every {}", format_duration(self.next))
        } else {
            format!(
                "every {}, doubling to {}",
                format_duration(self.next),
                format_duration(self.max)
            )
        }
    }
}

/// `90s`, `5m`, `1h`, `1h30m`, `500ms`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: expected e.g. 90s, 5m, 1h, 1h30m, 500ms");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return if (0.0..1e9).contains(&secs) {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(bad())
        };
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let secs = n * unit;
        if !secs.is_finite() || secs >= 1e9 {
            return Err(bad());
        }
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

/// `20m`, `1m30s`, `2.5s`, `300ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let tenths = (ms % 1000) / 100;
        return if tenths == 0 {
            format!("{secs}s")
        } else {
            format!("{secs}.{tenths}s")
        };
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

// ------------------------------------------------------------------------------------------------
// the journal: what was done, shared with whoever may drop the drive

/// One call that changed (or tried to change) the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub action: String,
    pub custom_key_store_id: String,
    /// `accepted` (KMS took the call; for Connect the outcome comes later), `done` (a
    /// disconnection KMS finished), or what else happened.
    pub result: String,
}

/// What the drive did and saw, written as it goes.
#[derive(Debug, Default, Clone)]
pub struct Journal {
    pub actions: Vec<Action>,
    /// The store as last read.
    pub last: Option<CustomKeyStore>,
    /// DescribeCustomKeyStores calls made while waiting.
    pub polls: u32,
    /// A call sent whose answer had not come back (its effect is unknown if the drive is
    /// dropped now).
    pub in_flight: Option<&'static str>,
}

impl Journal {
    fn push(&mut self, action: &str, id: &str, result: &str) {
        self.actions.push(Action {
            action: action.into(),
            custom_key_store_id: id.into(),
            result: result.into(),
        });
    }
}

fn note(journal: &Mutex<Journal>, f: impl FnOnce(&mut Journal)) {
    let mut j = journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut j);
}

/// Told after every call and read, for a progress display.
#[derive(Debug, Clone)]
pub struct Tick {
    pub phase: Option<Phase>,
    pub state: String,
    pub polls: u32,
    /// The last action, as "ConnectCustomKeyStore: accepted".
    pub last_action: Option<String>,
}

/// How the driver follows the store.
#[derive(Debug, Clone)]
pub struct Follow {
    /// Follow the connection to CONNECTED or FAILED (`--wait`); without it the drive ends once
    /// ConnectCustomKeyStore is accepted (a disconnection is still waited for: KMS accepts
    /// Connect only once the store is DISCONNECTED).
    pub wait: bool,
    /// From the drive's start.
    pub max_wait: Duration,
    pub backoff: Backoff,
}

/// How the drive ended. The store as last read is in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driven {
    End(End),
    /// ConnectCustomKeyStore accepted (or a connection in progress) and not followed.
    Started,
    /// `max_wait` passed, the store still on its way.
    TimedOut,
    /// A call could not be made, or KMS refused it: the action and why, in one line.
    CallFailed {
        action: String,
        error: String,
    },
}

// ------------------------------------------------------------------------------------------------
// the KMS calls

/// Why ConnectCustomKeyStore or DisconnectCustomKeyStore was not accepted.
#[derive(Debug, Clone)]
pub enum CallError {
    /// CustomKeyStoreInvalidStateException: not valid in the store's current state.
    InvalidState(String),
    Failed(FactError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::InvalidState(d) => write!(f, "KMS refused it: {d}"),
            CallError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// The three KMS calls of `connect`, on the live source's client.
#[derive(Clone)]
pub struct Connector {
    kms: aws_sdk_kms::Client,
    /// The bound of each call (the client's operation timeout), for messages.
    timeout: Duration,
}

impl Connector {
    /// `kms`: the live source's client (`LiveSource::kms`); `timeout`: its operation timeout.
    pub fn new(kms: aws_sdk_kms::Client, timeout: Duration) -> Connector {
        Connector { kms, timeout }
    }

    /// DescribeCustomKeyStores for this one store (CustomKeyStoreId).
    pub async fn describe(&self, id: &str) -> Result<CustomKeyStore, FactError> {
        const ACTION: &str = "kms:DescribeCustomKeyStores";
        let out = self
            .kms
            .describe_custom_key_stores()
            .custom_key_store_id(id)
            .send()
            .await
            .map_err(|e| classify(ACTION, self.timeout, e))?;
        out.custom_key_stores()
            .iter()
            .find(|s| s.custom_key_store_id() == Some(id))
            .map(key_store)
            .ok_or_else(|| FactError::Service {
                action: ACTION.into(),
                detail: format!("the answer does not list {id}"),
            })
    }

    /// ConnectCustomKeyStore: accepted means the connection started (or was already under way).
    pub async fn connect(&self, id: &str) -> Result<(), CallError> {
        let r = self
            .kms
            .connect_custom_key_store()
            .custom_key_store_id(id)
            .send()
            .await;
        self.accepted("kms:ConnectCustomKeyStore", r)
    }

    pub async fn disconnect(&self, id: &str) -> Result<(), CallError> {
        let r = self
            .kms
            .disconnect_custom_key_store()
            .custom_key_store_id(id)
            .send()
            .await;
        self.accepted("kms:DisconnectCustomKeyStore", r)
    }

    fn accepted<T, E, R>(&self, action: &str, r: Result<T, SdkError<E, R>>) -> Result<(), CallError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("CustomKeyStoreInvalidStateException") => {
                let msg = e.message().unwrap_or_default().to_string();
                Err(CallError::InvalidState(if msg.is_empty() {
                    "CustomKeyStoreInvalidStateException".into()
                } else {
                    format!("CustomKeyStoreInvalidStateException: {msg}")
                }))
            }
            Err(e) => Err(CallError::Failed(classify(action, self.timeout, e))),
        }
    }

    /// Runs the state machine from `store` (as read before anything changed) to its end,
    /// writing every action and read into `journal`, telling `observe` after each. Cancel it by
    /// dropping it: the journal then says what was done and the last state seen.
    pub async fn drive(
        &self,
        store: &CustomKeyStore,
        follow: &Follow,
        journal: &Mutex<Journal>,
        observe: &(dyn Fn(&Tick) + Send + Sync),
    ) -> Driven {
        let id = store.custom_key_store_id.as_str();
        let deadline = Instant::now() + follow.max_wait;
        note(journal, |j| j.last = Some(store.clone()));
        let tell = |phase: Option<Phase>| {
            let j = journal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let tick = Tick {
                phase,
                state: j
                    .last
                    .as_ref()
                    .map(|s| State::of(s).name().to_string())
                    .unwrap_or_default(),
                polls: j.polls,
                last_action: j
                    .actions
                    .last()
                    .map(|a| format!("{}: {}", a.action, a.result)),
            };
            drop(j);
            observe(&tick);
        };
        let mut next = first_step(&Plan::for_state(&State::of(store)));
        let mut backoff = follow.backoff.clone();
        let mut polls_in_phase = 0u32;
        let mut failed_polls = 0u32;
        loop {
            match next {
                Next::Done(end) => return Driven::End(end),
                Next::Disconnect => {
                    note(journal, |j| j.in_flight = Some("DisconnectCustomKeyStore"));
                    let r = self.disconnect(id).await;
                    note(journal, |j| j.in_flight = None);
                    match r {
                        Ok(()) => note(journal, |j| {
                            j.push("DisconnectCustomKeyStore", id, "accepted")
                        }),
                        // The state changed under us (or a retry of a call that got through):
                        // fine if it is disconnected or disconnecting now.
                        Err(CallError::InvalidState(detail)) => match self.describe(id).await {
                            Ok(s)
                                if matches!(
                                    State::of(&s),
                                    State::Disconnected | State::Disconnecting
                                ) =>
                            {
                                let result =
                                    format!("not needed: already {}", State::of(&s).name());
                                note(journal, |j| {
                                    j.push("DisconnectCustomKeyStore", id, &result);
                                    j.last = Some(s);
                                });
                            }
                            Ok(s) => {
                                note(journal, |j| j.last = Some(s));
                                return Driven::CallFailed {
                                    action: "DisconnectCustomKeyStore".into(),
                                    error: format!("KMS refused it: {detail}"),
                                };
                            }
                            Err(_) => {
                                return Driven::CallFailed {
                                    action: "DisconnectCustomKeyStore".into(),
                                    error: format!("KMS refused it: {detail}"),
                                }
                            }
                        },
                        Err(CallError::Failed(e)) => {
                            return Driven::CallFailed {
                                action: "DisconnectCustomKeyStore".into(),
                                error: e.to_string(),
                            }
                        }
                    }
                    next = Next::Wait(Phase::AwaitDisconnected);
                    backoff = follow.backoff.clone();
                    polls_in_phase = 0;
                    tell(Some(Phase::AwaitDisconnected));
                }
                Next::Connect => {
                    note(journal, |j| j.in_flight = Some("ConnectCustomKeyStore"));
                    let r = self.connect(id).await;
                    note(journal, |j| j.in_flight = None);
                    if let Err(e) = r {
                        if matches!(e, CallError::InvalidState(_)) {
                            if let Ok(s) = self.describe(id).await {
                                note(journal, |j| j.last = Some(s));
                            }
                        }
                        return Driven::CallFailed {
                            action: "ConnectCustomKeyStore".into(),
                            error: e.to_string(),
                        };
                    }
                    note(journal, |j| j.push("ConnectCustomKeyStore", id, "accepted"));
                    tell(Some(Phase::AwaitConnected));
                    if !follow.wait {
                        // One read, so that the state reported is not the one from before.
                        if let Ok(s) = self.describe(id).await {
                            note(journal, |j| j.last = Some(s));
                        }
                        return Driven::Started;
                    }
                    next = Next::Wait(Phase::AwaitConnected);
                    backoff = follow.backoff.clone();
                    polls_in_phase = 0;
                }
                Next::Wait(phase) => {
                    if phase == Phase::AwaitConnected && !follow.wait {
                        return Driven::Started;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Driven::TimedOut;
                    }
                    tokio::time::sleep(backoff.next_delay().min(deadline - now)).await;
                    note(journal, |j| j.in_flight = Some("DescribeCustomKeyStores"));
                    let read = self.describe(id).await;
                    note(journal, |j| j.in_flight = None);
                    match read {
                        Ok(s) => {
                            failed_polls = 0;
                            polls_in_phase += 1;
                            let state = State::of(&s);
                            next = after_poll(
                                phase,
                                &state,
                                s.connection_error_code.as_deref(),
                                polls_in_phase,
                            );
                            note(journal, |j| {
                                j.polls += 1;
                                if phase == Phase::AwaitDisconnected && state == State::Disconnected
                                {
                                    if let Some(a) = j.actions.iter_mut().rev().find(|a| {
                                        a.action == "DisconnectCustomKeyStore"
                                            && a.result == "accepted"
                                    }) {
                                        a.result = "done".into();
                                    }
                                }
                                j.last = Some(s);
                            });
                            if matches!(next, Next::Wait(p) if p != phase) {
                                backoff = follow.backoff.clone();
                                polls_in_phase = 0;
                            }
                            tell(Some(phase));
                        }
                        Err(e @ FactError::AccessDenied { .. }) => {
                            return Driven::CallFailed {
                                action: "DescribeCustomKeyStores".into(),
                                error: e.to_string(),
                            }
                        }
                        Err(e) => {
                            failed_polls += 1;
                            if failed_polls > POLL_FAILURES_TOLERATED {
                                return Driven::CallFailed {
                                    action: "DescribeCustomKeyStores".into(),
                                    error: format!("{e} ({failed_polls} reads in a row failed)"),
                                };
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An SDK list entry in the model's (the AWS CLI's) shape: the facts layer's own conversion.
fn key_store(k: &aws_sdk_kms::types::CustomKeyStoresListEntry) -> CustomKeyStore {
    crate::facts::live::key_store_from_sdk(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [State; 5] = [
        State::Connected,
        State::Connecting,
        State::Disconnected,
        State::Disconnecting,
        State::Failed,
    ];

    #[test]
    fn states_round_trip_and_unknown_ones_are_kept() {
        for s in ALL {
            assert_eq!(State::parse(s.name()), s);
        }
        assert_eq!(State::parse("PAUSED"), State::Other("PAUSED".into()));
        assert_eq!(State::parse("PAUSED").name(), "PAUSED");
        assert_eq!(State::parse("").name(), "(no ConnectionState)");
    }

    #[test]
    fn the_plan_from_each_state() {
        use Plan::*;
        let plans: Vec<Plan> = ALL.iter().map(Plan::for_state).collect();
        assert_eq!(
            plans,
            [
                AlreadyConnected,
                Follow,
                Connect,
                AwaitDisconnectedThenConnect,
                DisconnectThenConnect
            ]
        );
        // Only a FAILED or DISCONNECTING store needs the operator's word; following a
        // connection in progress or an unknown state changes nothing.
        let asks: Vec<bool> = plans.iter().map(Plan::needs_confirmation).collect();
        assert_eq!(asks, [false, false, false, true, true]);
        let changes: Vec<bool> = plans.iter().map(Plan::changes_anything).collect();
        assert_eq!(changes, [false, false, true, true, true]);
        let odd = Plan::for_state(&State::parse("PAUSED"));
        assert!(!odd.changes_anything() && !odd.needs_confirmation());
    }

    #[test]
    fn first_steps() {
        let first = |s: State| first_step(&Plan::for_state(&s));
        assert_eq!(first(State::Connected), Next::Done(End::AlreadyConnected));
        assert_eq!(first(State::Connecting), Next::Wait(Phase::AwaitConnected));
        assert_eq!(first(State::Disconnected), Next::Connect);
        // KMS rejects Connect on FAILED: disconnect first.
        assert_eq!(first(State::Failed), Next::Disconnect);
        // KMS rejects Connect and Disconnect on DISCONNECTING: wait for DISCONNECTED.
        assert_eq!(
            first(State::Disconnecting),
            Next::Wait(Phase::AwaitDisconnected)
        );
        assert!(matches!(
            first(State::parse("PAUSED")),
            Next::Done(End::Unexpected { .. })
        ));
    }

    /// Every (phase, state) pair, inside and after the grace reads.
    #[test]
    fn after_each_read() {
        use Phase::*;
        let d = AwaitDisconnected;
        let c = AwaitConnected;
        let step = |p, s: State, polls| after_poll(p, &s, Some("NETWORK_ERRORS"), polls);
        let unexpected = |n: Next| matches!(n, Next::Done(End::Unexpected { .. }));

        // Waiting for DISCONNECTED.
        assert_eq!(step(d, State::Disconnected, 1), Next::Connect);
        assert_eq!(step(d, State::Disconnecting, 1), Next::Wait(d));
        assert_eq!(step(d, State::Disconnecting, 50), Next::Wait(d));
        assert_eq!(step(d, State::Failed, 1), Next::Wait(d));
        assert_eq!(step(d, State::Failed, GRACE_POLLS), Next::Wait(d));
        assert!(unexpected(step(d, State::Failed, GRACE_POLLS + 1)));
        assert_eq!(step(d, State::Connecting, 1), Next::Wait(c));
        assert_eq!(step(d, State::Connected, 1), Next::Done(End::Connected));

        // Waiting for CONNECTED or FAILED.
        assert_eq!(step(c, State::Connected, 1), Next::Done(End::Connected));
        assert_eq!(
            step(c, State::Failed, 1),
            Next::Done(End::Failed {
                error_code: Some("NETWORK_ERRORS".into())
            })
        );
        assert_eq!(
            after_poll(c, &State::Failed, None, 1),
            Next::Done(End::Failed { error_code: None })
        );
        assert_eq!(step(c, State::Connecting, 1), Next::Wait(c));
        assert_eq!(step(c, State::Connecting, 500), Next::Wait(c));
        assert_eq!(step(c, State::Disconnected, GRACE_POLLS), Next::Wait(c));
        assert!(unexpected(step(c, State::Disconnected, GRACE_POLLS + 1)));
        assert!(unexpected(step(c, State::Disconnecting, 1)));
        for p in [c, d] {
            assert!(unexpected(step(p, State::parse("PAUSED"), 1)));
        }
    }

    /// From each state, reading the states KMS goes through, the machine ends where KMS does,
    /// and calls Disconnect and Connect only where KMS accepts them.
    #[test]
    fn walks_through_kms_transitions() {
        // (start, what the reads show in order) -> (calls made, end)
        fn walk(start: State, reads: &[State]) -> (Vec<&'static str>, Next) {
            let mut calls = Vec::new();
            let mut reads = reads.iter();
            let mut state = start.clone();
            let mut next = first_step(&Plan::for_state(&start));
            let mut phase_polls = 0;
            let mut phase = None;
            loop {
                match next {
                    Next::Disconnect => {
                        assert!(!matches!(state, State::Disconnected | State::Disconnecting));
                        calls.push("Disconnect");
                        next = Next::Wait(Phase::AwaitDisconnected);
                    }
                    Next::Connect => {
                        assert!(!matches!(state, State::Failed | State::Disconnecting));
                        calls.push("Connect");
                        next = Next::Wait(Phase::AwaitConnected);
                    }
                    Next::Wait(p) => {
                        if phase != Some(p) {
                            phase = Some(p);
                            phase_polls = 0;
                        }
                        let Some(s) = reads.next() else {
                            return (calls, next);
                        };
                        state = s.clone();
                        phase_polls += 1;
                        next = after_poll(p, s, Some("USER_LOCKED_OUT"), phase_polls);
                    }
                    done @ Next::Done(_) => return (calls, done),
                }
            }
        }
        use State::*;
        let failed = Next::Done(End::Failed {
            error_code: Some("USER_LOCKED_OUT".into()),
        });
        assert_eq!(
            walk(Disconnected, &[Connecting, Connecting, Connected]),
            (vec!["Connect"], Next::Done(End::Connected))
        );
        assert_eq!(
            walk(Failed, &[Disconnected, Connecting, Failed]),
            (vec!["Disconnect", "Connect"], failed.clone())
        );
        // A slow disconnection and a stale first read.
        assert_eq!(
            walk(
                Failed,
                &[Failed, Disconnecting, Disconnected, Disconnected, Connected]
            ),
            (vec!["Disconnect", "Connect"], Next::Done(End::Connected))
        );
        assert_eq!(
            walk(
                Disconnecting,
                &[Disconnecting, Disconnected, Connecting, Failed]
            ),
            (vec!["Connect"], failed)
        );
        assert_eq!(
            walk(Connecting, &[Connected]),
            (vec![], Next::Done(End::Connected))
        );
        assert_eq!(
            walk(Connected, &[]),
            (vec![], Next::Done(End::AlreadyConnected))
        );
        // Still connecting when the reads run out: the caller's --max-wait decides.
        assert_eq!(
            walk(Disconnected, &[Connecting, Connecting]),
            (vec!["Connect"], Next::Wait(Phase::AwaitConnected))
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_a_fixed_one_does_not() {
        let mut b = Backoff::standard();
        let secs: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 30, 30, 30]);
        // A 20-minute wait is a few dozen reads, not hundreds.
        let mut b = Backoff::standard();
        let (mut t, mut n) = (Duration::ZERO, 0);
        while t < Duration::from_secs(20 * 60) {
            t += b.next_delay();
            n += 1;
        }
        assert!(n <= 45, "{n} reads");
        let mut f = Backoff::fixed(Duration::from_millis(100));
        assert_eq!(f.next_delay(), Duration::from_millis(100));
        assert_eq!(f.next_delay(), Duration::from_millis(100));
        assert_eq!(Backoff::standard().describe(), "every 2s, doubling to 30s");
        assert_eq!(
            Backoff::fixed(Duration::from_millis(250)).describe(),
            "every 250ms"
        );
    }

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("2m30s"), Duration::from_secs(150));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("45"), Duration::from_secs(45));
        assert_eq!(ok(" 10m "), Duration::from_secs(600));
        for bad in ["", "m", "5x", "5 m", "-3s", "1h-2m", "s5", "..s", "1e99s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(1200)), "20m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h2m");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
        for s in ["20m", "1m30s", "1h2m", "300ms", "2s"] {
            assert_eq!(format_duration(ok(s)), s);
        }
        assert_eq!(
            default_max_wait(StoreKind::Cloudhsm),
            Duration::from_secs(1200)
        );
        assert_eq!(default_max_wait(StoreKind::Xks), Duration::from_secs(600));
    }

    #[test]
    fn dry_run_steps_name_every_call_in_order() {
        let b = Backoff::standard();
        let m = Duration::from_secs(600);
        let steps = Plan::DisconnectThenConnect.steps("cks-1", true, m, &b);
        assert!(steps[0].starts_with("DisconnectCustomKeyStore cks-1"));
        assert!(steps[1].starts_with("wait up to 10m for DISCONNECTED"));
        assert_eq!(steps[2], "ConnectCustomKeyStore cks-1");
        assert!(
            steps[3].starts_with("wait up to 10m for CONNECTED or FAILED"),
            "{}",
            steps[3]
        );
        assert_eq!(Plan::Connect.steps("cks-1", true, m, &b).len(), 2);
        let no_wait = Plan::Connect.steps("cks-1", false, m, &b);
        assert!(no_wait[1].starts_with("return once ConnectCustomKeyStore is accepted"));
        assert!(Plan::AlreadyConnected.steps("cks-1", true, m, &b)[0].starts_with("nothing"));
        assert!(Plan::Follow.steps("cks-1", true, m, &b)[0].contains("follow"));
    }
}
