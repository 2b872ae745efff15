//! Every "code" cks-doctor can report: the KMS exceptions returned by the custom key store
//! operations, and the `ConnectionErrorCode` values that `DescribeCustomKeyStores` shows for a
//! store whose `ConnectionState` is `FAILED`, plus the `ConnectionState` values themselves.
//!
//! One typed table ([`CODES`]), one small table of connection states ([`CONNECTION_STATES`]).
//! `meaning` is AWS's own wording (KMS API reference, `DescribeCustomKeyStores` /
//! `CustomKeyStoresListEntry`) quoted or closely paraphrased; `causes` and `fix` come from the
//! KMS developer guide and the project's requirements digest; `notes` record where AWS's
//! documents disagree and which mappings are inferred rather than documented.
//!
//! `docs/error-codes.md` is generated from this table by [`render_markdown`]; the test in
//! `tests/it/codes.rs` keeps the two in step (`CKS_BLESS=1 cargo test --test it codes::` rewrites it).

use std::fmt::Write as _;

/// Whether a code is an exception returned by an API call or a `ConnectionErrorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// An exception (error name) returned by a KMS API operation.
    Exception,
    /// A `ConnectionErrorCode` value, shown by `DescribeCustomKeyStores` when a connection attempt
    /// (`ConnectCustomKeyStore`) failed.
    ConnectionErrorCode,
}

impl CodeKind {
    /// The serialized (snake_case) name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Exception => "exception",
            CodeKind::ConnectionErrorCode => "connection_error_code",
        }
    }

    /// A human label.
    pub fn label(self) -> &'static str {
        match self {
            CodeKind::Exception => "exception",
            CodeKind::ConnectionErrorCode => "ConnectionErrorCode",
        }
    }
}

pub use crate::kind::StoreKind;

/// One code cks-doctor can report: its typed name and what AWS says about it.
#[derive(Debug, serde::Serialize)]
pub struct CodeInfo {
    #[serde(skip)]
    pub code: Code,
    /// Exact AWS name, e.g. `IncorrectTrustAnchorException`, `XKS_PROXY_TIMED_OUT`.
    pub name: &'static str,
    pub kind: CodeKind,
    #[serde(serialize_with = "code_table_store")]
    pub store: StoreKind,
    /// API operations that return it. For connection error codes: `["ConnectCustomKeyStore"]`
    /// (the code is then seen in `DescribeCustomKeyStores`).
    pub operations: &'static [&'static str],
    /// One or two sentences, AWS's words.
    pub meaning: &'static str,
    pub causes: &'static [&'static str],
    /// Ordered steps.
    pub fix: &'static [&'static str],
    /// Disagreements between documents, inferred mappings.
    pub notes: &'static [&'static str],
}

fn code_table_store<S: serde::Serializer>(kind: &StoreKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.code_table_name())
}

/// Declares every code once: the typed [`Code`] enum and the [`CODES`] table are made from the
/// same list, so a check or the diagnosis cannot name a code the table does not have.
macro_rules! codes {
    ($(
        $name:ident {
            kind: $kind:ident,
            store: $store:ident,
            operations: $ops:expr,
            meaning: $meaning:expr,
            causes: $causes:expr,
            fix: $fix:expr,
            notes: $notes:expr $(,)?
        }
    ),* $(,)?) => {
        /// Every KMS exception and `ConnectionErrorCode` cks-doctor knows, by its exact AWS name
        /// (a misspelt name fails to compile). [`Code::info`] has what AWS says about it.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($name),*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The exact AWS name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name)),*
                }
            }
        }

        /// Every code, in documentation order: the CreateCustomKeyStore exceptions (the 17 of
        /// the API reference, then the common ValidationException), the other exceptions, then
        /// the ConnectionErrorCodes (both store kinds, CloudHSM, external).
        pub static CODES: &[CodeInfo] = &[$(
            CodeInfo {
                code: Code::$name,
                name: stringify!($name),
                kind: CodeKind::$kind,
                store: StoreKind::$store,
                operations: $ops,
                meaning: $meaning,
                causes: $causes,
                fix: $fix,
                notes: $notes,
            }
        ),*];
    };
}

impl Code {
    /// What AWS says about this code.
    pub fn info(self) -> &'static CodeInfo {
        // The table is made in the enum's order (see `codes!`).
        &CODES[self as usize]
    }

    /// An exception or a ConnectionErrorCode.
    pub fn kind(self) -> CodeKind {
        self.info().kind
    }

    /// The code with exactly this AWS name (case-sensitive; [`lookup`] is forgiving).
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == name)
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The names of `codes`, joined by `sep` (as `[&str]::join`).
pub fn join(codes: &[Code], sep: &str) -> String {
    codes
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = String;
    fn from_str(s: &str) -> Result<Code, String> {
        Code::from_name(s).ok_or_else(|| {
            let hint = suggest(s)
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            format!("{s:?} is not a KMS exception or ConnectionErrorCode known to cks-doctor{hint}")
        })
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// One `ConnectionState` value.
#[derive(Debug, serde::Serialize)]
pub struct ConnectionStateInfo {
    pub name: &'static str,
    pub meaning: &'static str,
}

const CREATE: &[&str] = &["CreateCustomKeyStore"];
const UPDATE: &[&str] = &["UpdateCustomKeyStore"];
const CREATE_UPDATE: &[&str] = &["CreateCustomKeyStore", "UpdateCustomKeyStore"];
const CREATE_UPDATE_CONNECT: &[&str] = &[
    "CreateCustomKeyStore",
    "UpdateCustomKeyStore",
    "ConnectCustomKeyStore",
];
const CONNECT: &[&str] = &["ConnectCustomKeyStore"];

codes! {
    // ------------------------------------------------------------------------------------------
    // CreateCustomKeyStore exceptions
    // ------------------------------------------------------------------------------------------
    CloudHsmClusterInUseException {
        kind: Exception,
        store: Cloudhsm,
        operations: CREATE,
        meaning: "The request was rejected because the specified AWS CloudHSM cluster is already \
                  associated with an AWS CloudHSM key store in the account, or it shares a backup \
                  history with an AWS CloudHSM key store in the account. Each AWS CloudHSM key \
                  store in the account must be associated with a different AWS CloudHSM cluster.",
        causes: &[
            "The cluster ID is already the CloudHsmClusterId of an AWS_CLOUDHSM key store in this \
             account and Region (kms:DescribeCustomKeyStores, all pages).",
            "The cluster shares a backup history with a cluster that is already associated with a \
             key store. AWS: \"clusters that share a backup history have the same cluster \
             certificate\" (Cluster.Certificates.ClusterCertificate in cloudhsmv2 \
             DescribeClusters).",
        ],
        fix: &[
            "Pick a cluster that is not associated with a custom key store and does not share a \
             backup history with one.",
            "If you meant to move an existing key store to a related cluster (one restored from \
             its backups), do not create a new store: disconnect it, call UpdateCustomKeyStore \
             with the new CloudHsmClusterId, then connect it.",
        ],
        notes: &[
            "cks-doctor decides \"shares a backup history\" by comparing the DER bytes of the \
             cluster certificates; DescribeClusters does not return the trust anchor.",
            "The same comparison is inverted for UpdateCustomKeyStore: there the new cluster must \
             share the original cluster's certificate, otherwise KMS returns \
             CloudHsmClusterNotRelatedException.",
        ],
    },
    CloudHsmClusterInvalidConfigurationException {
        kind: Exception,
        store: Cloudhsm,
        operations: &[
            "CreateCustomKeyStore",
            "UpdateCustomKeyStore",
            "ConnectCustomKeyStore",
            "CreateKey",
        ],
        meaning: "The request was rejected because the associated AWS CloudHSM cluster did not \
                  meet the configuration requirements for an AWS CloudHSM key store.",
        causes: &[
            "The cluster is not configured with private subnets in at least two different \
             Availability Zones in the Region (Cluster.SubnetMapping has fewer than two AZs).",
            "The cluster security group (cloudhsm-cluster-<cluster-id>-sg) lacks the inbound and \
             outbound rules that allow TCP traffic on ports 2223-2225, with the security group ID \
             itself as the Source of the inbound rules and the Destination of the outbound rules.",
            "For CreateCustomKeyStore, UpdateCustomKeyStore and CreateKey: the cluster does not \
             have at least two active HSMs, each in a different Availability Zone.",
            "For ConnectCustomKeyStore: the cluster does not contain at least one active HSM.",
        ],
        fix: &[
            "Read the error message that accompanies the exception: it names which requirement \
             failed.",
            "Subnets: you cannot reconfigure the subnets of an existing cluster. Create a cluster \
             from a backup with private subnets in at least two Availability Zones and use it \
             (for an existing store: disconnect, UpdateCustomKeyStore with the new \
             CloudHsmClusterId, connect).",
            "Security group: restore the default rules of cloudhsm-cluster-<cluster-id>-sg (TCP \
             2223-2225 inbound and outbound, peer = the group itself). AWS: \"These rules are set \
             by default when you create the AWS CloudHSM cluster. Do not delete or change \
             them.\"",
            "HSMs: add HSMs with the AWS CloudHSM CreateHsm operation, in another Availability \
             Zone, until at least two are ACTIVE in different Availability Zones; then retry.",
        ],
        notes: &[
            "One exception covers several distinct causes; cks-doctor runs the subnet, \
             security-group and HSM checks to tell them apart.",
            "A cluster with no active HSM shows up two ways (requirements section 3): \
             ConnectCustomKeyStore fails at once with this exception, while a store whose HSMs \
             disappear during or after connecting ends up FAILED with \
             INSUFFICIENT_CLOUDHSM_HSMS. Which one you see depends on timing (inferred).",
            "For a store that is already connected, broken security-group rules surface as \
             NETWORK_ERRORS or as KMSInvalidStateException on cryptographic calls rather than \
             as this exception (requirements section 3).",
        ],
    },
    CloudHsmClusterNotActiveException {
        kind: Exception,
        store: Cloudhsm,
        operations: CREATE_UPDATE_CONNECT,
        meaning: "The request was rejected because the AWS CloudHSM cluster associated with the \
                  AWS CloudHSM key store is not active. Initialize and activate the cluster and \
                  try the command again.",
        causes: &[
            "Cluster.State is not ACTIVE: the cluster is still UNINITIALIZED or INITIALIZED (not \
             yet activated), or in a transitional state such as CREATE_IN_PROGRESS, \
             INITIALIZE_IN_PROGRESS, UPDATE_IN_PROGRESS or MODIFY_IN_PROGRESS, or DEGRADED.",
        ],
        fix: &[
            "If the cluster is UNINITIALIZED: sign its ClusterCsr with your CA and call \
             InitializeCluster with the signed certificate and your CA certificate \
             (customerCA.crt) as the trust anchor.",
            "If the cluster is INITIALIZED: activate it (set the admin password), as described \
             in Getting Started in the AWS CloudHSM User Guide.",
            "If a state ending in IN_PROGRESS is shown: wait until the cluster settles, then \
             retry.",
        ],
        notes: &[
            "Whether KMS rejects a DEGRADED cluster with this exception is not documented; \
             cks-doctor treats every state other than ACTIVE as failing (inferred).",
        ],
    },
    CloudHsmClusterNotFoundException {
        kind: Exception,
        store: Cloudhsm,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because AWS KMS cannot find the AWS CloudHSM cluster \
                  with the specified cluster ID. Retry the request with a different cluster ID.",
        causes: &[
            "The cluster ID is mistyped.",
            "The cluster is in another AWS account or Region: the cluster must be in the same \
             account and Region as the custom key store.",
            "The cluster was deleted (DELETE_IN_PROGRESS or DELETED).",
        ],
        fix: &[
            "Check the cluster ID, account and Region with cloudhsmv2 DescribeClusters.",
            "For a deleted cluster: create a cluster from a backup of it; for an existing key \
             store, disconnect it, call UpdateCustomKeyStore with the restored cluster's \
             CloudHsmClusterId, then connect it.",
        ],
        notes: &[
            "An ID that does not match the pattern cluster-[2-7a-zA-Z]{11,16} is rejected \
             earlier with ValidationException.",
            "For an existing store, the same condition appears at connect time as the \
             ConnectionErrorCode CLUSTER_NOT_FOUND.",
        ],
    },
    CustomKeyStoreNameInUseException {
        kind: Exception,
        store: Any,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because the specified custom key store name is \
                  already assigned to another custom key store in the account. Try again with a \
                  custom key store name that is unique in the account.",
        causes: &[
            "Another custom key store in this account and Region already has this \
             CustomKeyStoreName.",
        ],
        fix: &[
            "List the names in use (kms:DescribeCustomKeyStores, all pages) and choose a name \
             that is unique in the account and Region.",
            "If the existing store is the one you meant, use it (or change it with \
             UpdateCustomKeyStore) instead of creating another.",
        ],
        notes: &[
            "A DISCONNECTED store with the same name and identical properties makes \
             CreateCustomKeyStore return that store's ID instead of this exception \
             (requirements section 6).",
            "AWS warns that the name may be displayed in plaintext in CloudTrail logs: do not \
             put confidential information in it.",
        ],
    },
    IncorrectTrustAnchorException {
        kind: Exception,
        store: Cloudhsm,
        operations: CREATE,
        meaning: "The request was rejected because the trust anchor certificate in the request \
                  to create an AWS CloudHSM key store is not the trust anchor certificate for the \
                  specified AWS CloudHSM cluster. When you initialize the AWS CloudHSM cluster, \
                  you create the trust anchor certificate and save it in the customerCA.crt file.",
        causes: &[
            "The certificate is not the customerCA.crt that was given to InitializeCluster for \
             this cluster: its subject is not the issuer of the cluster certificate, or its key \
             does not verify the cluster certificate's signature.",
            "The text is not a valid self-signed X.509 CA certificate in PEM form (for example \
             the cluster certificate, the CSR, or a private key was supplied instead).",
            "With the AWS CLI, the file name was passed without the file:// prefix, so the path \
             itself was sent as the certificate (inferred).",
        ],
        fix: &[
            "Supply the exact CA certificate that was given to InitializeCluster as the trust \
             anchor (AWS CLI: --trust-anchor-certificate file://customerCA.crt).",
            "Verify it offline against the cluster certificate that cloudhsmv2 DescribeClusters \
             returns (Cluster.Certificates.ClusterCertificate): the cluster certificate must be \
             signed by this certificate's key.",
        ],
        notes: &[
            "An empty trust anchor or one longer than 5000 characters is rejected earlier with \
             ValidationException.",
            "A store's trust anchor cannot be changed later: UpdateCustomKeyStore has no \
             TrustAnchorCertificate parameter.",
            "Newer CloudHSM documentation allows an intermediate CA chain (root last, up to four \
             certificates), while the KMS API text speaks only of customerCA.crt. cks-doctor \
             accepts several PEM blocks and says when a chain cannot be verified offline.",
        ],
    },
    KMSInternalException {
        kind: Exception,
        store: Any,
        operations: &[
            "CreateCustomKeyStore",
            "UpdateCustomKeyStore",
            "ConnectCustomKeyStore",
            "DisconnectCustomKeyStore",
            "DeleteCustomKeyStore",
            "DescribeCustomKeyStores",
            "CreateKey",
        ],
        meaning: "The request was rejected because an internal exception occurred. The request \
                  can be retried.",
        causes: &["A failure inside AWS KMS, not caused by the key store's configuration."],
        fix: &[
            "Retry the request, with backoff.",
            "If it persists, contact AWS Support with the request ID.",
        ],
        notes: &[
            "HTTP 500, unlike the other CreateCustomKeyStore errors (HTTP 400).",
            "Nearly every KMS operation can return it; only the custom key store operations are \
             listed here.",
            "The AWS SDK for Rust names it KmsInternalException; the wire name is \
             KMSInternalException.",
        ],
    },
    LimitExceededException {
        kind: Exception,
        store: Any,
        operations: &["CreateCustomKeyStore", "CreateKey"],
        meaning: "The request was rejected because a length constraint or quota was exceeded.",
        causes: &[
            "The account already has 10 custom key stores in this Region, the maximum for \
             AWS CloudHSM and external key stores together.",
            "CreateKey: a KMS key quota of the account or Region (the number of KMS keys, or the \
             request rate), or for a CloudHSM key store the cluster's key capacity.",
        ],
        fix: &[
            "Delete a custom key store you no longer use: disconnect it and delete its KMS keys \
             first, then call DeleteCustomKeyStore.",
            "Or create the store in another Region or account.",
        ],
        notes: &[
            "The custom key store quota is not adjustable (requirements section 1).",
            "Other KMS operations (CreateKey, CreateAlias, CreateGrant and more) return the same \
             exception for their own quotas.",
        ],
    },
    XksProxyIncorrectAuthenticationCredentialException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because the proxy credentials failed to authenticate \
                  to the specified external key store proxy. The specified external key store \
                  proxy rejected a status request from AWS KMS due to invalid credentials.",
        causes: &[
            "The AccessKeyId or RawSecretAccessKey does not match a credential established on \
             the proxy (the proxy answers 401 AuthenticationFailedException).",
            "The proxy expects another Region: the SigV4 credential scope is \
             <date>/<key store Region>/kms-xks-proxy/aws4_request.",
            "Clock skew: proxies reject requests more than 5 minutes off their clock.",
            "XksProxyUriEndpoint or XksProxyUriPath points at a different proxy than the one \
             that holds the credential (AWS: \"an error in the identification of the external \
             key store proxy\").",
        ],
        fix: &[
            "Confirm the credential established on the proxy and give KMS the same pair \
             (AccessKeyId and RawSecretAccessKey; UpdateCustomKeyStore needs both even when only \
             one changed).",
            "Check the proxy's Region setting and its clock (NTP).",
            "Check that the endpoint and path identify the intended proxy.",
        ],
        notes: &[
            "For an existing store the same failure appears as the ConnectionErrorCode \
             INVALID_CREDENTIALS.",
        ],
    },
    XksProxyInvalidConfigurationException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because the external key store proxy is not \
                  configured correctly. To identify the cause, see the error message that \
                  accompanies the exception.",
        causes: &[
            "XksProxyUriPath (or its prefix) is wrong: the proxy answers 404 \
             InvalidUriPathException.",
            "The proxy's TLS configuration is invalid (according to the developer guide; see \
             notes).",
        ],
        fix: &[
            "Read the error message that accompanies the exception.",
            "Set XksProxyUriPath to the base path your proxy documents: it must end with \
             /kms/xks/v1, with an optional prefix before it.",
            "Fix the TLS configuration as described under XKS_PROXY_INVALID_TLS_CONFIGURATION.",
        ],
        notes: &[
            "Documents disagree on TLS failures: the XKS proxy API specification leads to \
             XksProxyUriUnreachableException, while the developer guide lists TLS problems under \
             this exception. cks-doctor reports both.",
            "One developer guide page lists a VPC endpoint service that requires acceptance under \
             this exception; the API reference points to \
             XksProxyVpcEndpointServiceInvalidConfigurationException.",
            "ConnectionErrorCode counterpart: XKS_PROXY_INVALID_CONFIGURATION.",
        ],
    },
    XksProxyInvalidResponseException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "AWS KMS cannot interpret the response it received from the external key store \
                  proxy. The problem might be a poorly constructed response, but it could also be \
                  a transient network issue.",
        causes: &[
            "An error status without the JSON {\"errorName\", \"errorMessage\"} shape, such as a \
             web server's or load balancer's own 404 or 502 page in front of the proxy.",
            "A 200 response whose body breaks the health response schema (xksProxyFleetSize, \
             xksProxyVendor, xksProxyModel, ekmVendor, 1-10 ekmFleetDetails entries).",
            "The proxy answers 500 InternalException or 400 ValidationException to a valid \
             request (inferred).",
            "A transient network issue.",
        ],
        fix: &[
            "Send the health request yourself (cks-doctor does) and inspect the status, content \
             type and body.",
            "Make sure requests reach the proxy itself and not a server that answers in its \
             place.",
            "AWS: \"If you see this error repeatedly, report it to the proxy vendor.\"",
        ],
        notes: &[
            "Mapping 500 InternalException and 400 ValidationException from the proxy to this \
             exception is inferred (requirements section 4).",
            "ConnectionErrorCode counterpart: XKS_PROXY_INVALID_RESPONSE.",
        ],
    },
    XksProxyUriEndpointInUseException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because the XksProxyUriEndpoint is already associated \
                  with another external key store in this AWS Region. To identify the cause, see \
                  the error message that accompanies the exception.",
        causes: &[
            "A store with PUBLIC_ENDPOINT connectivity would use the same XksProxyUriEndpoint as \
             a store with VPC_ENDPOINT_SERVICE connectivity in this Region, or the reverse.",
            "Another store with VPC_ENDPOINT_SERVICE connectivity already uses this private DNS \
             name: each must have its own.",
        ],
        fix: &[
            "Read the error message that accompanies the exception.",
            "Use a different endpoint; for VPC connectivity, give each key store its own VPC \
             endpoint service with its own private DNS name.",
        ],
        notes: &[
            "Not the same as XksProxyUriInUseException, which concerns the endpoint and path \
             together.",
        ],
    },
    XksProxyUriInUseException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because the concatenation of the XksProxyUriEndpoint \
                  and XksProxyUriPath is already associated with another external key store in \
                  this AWS Region. Each external key store in a Region must use a unique external \
                  key store proxy API address.",
        causes: &[
            "Another external key store in this account and Region has the same \
             XksProxyUriEndpoint and XksProxyUriPath.",
        ],
        fix: &[
            "Use a different path prefix (/<prefix>/kms/xks/v1) if the proxy serves several key \
             stores, or a different endpoint.",
            "Or change or delete the store that holds the address.",
        ],
        notes: &[
            "The exception text says \"in this AWS Region\"; the parameter documentation says \
             \"unique in the AWS account and Region\".",
        ],
    },
    XksProxyUriUnreachableException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "AWS KMS was unable to reach the specified XksProxyUriPath. This exception is \
                  also thrown when the external key store proxy response to a GetHealthStatus \
                  request indicates that all external key manager instances are unavailable.",
        causes: &[
            "The endpoint name does not resolve, or TCP port 443 is refused or filtered.",
            "No answer within 250 ms: KMS gives up when it \"does not receive a response within \
             250 ms\" (AWS does not say whether connection set-up counts).",
            "TLS failure (per the XKS proxy API specification): TLS older than 1.2, none of the \
             required cipher suites, an expired certificate, a name mismatch, a CA that is not on \
             KMS's trusted list, or a missing intermediate certificate.",
            "The proxy answers 503 DependencyTimeoutException or 429 ThrottlingException.",
            "Every ekmFleetDetails entry in the health response is UNAVAILABLE.",
        ],
        fix: &[
            "Make the proxy answer on port 443 at exactly the name in XksProxyUriEndpoint, \
             reachable from the internet for PUBLIC_ENDPOINT connectivity. AWS: \"The path must \
             be reachable before you create the external key store or update its settings.\"",
            "Fix TLS: TLS 1.2 or later, one of the four supported cipher suites, an unexpired \
             certificate for the endpoint name that chains to a CA on KMS's trusted list, with \
             intermediates served.",
            "Reduce latency: the recommended round trip is 35 ms or less.",
            "Bring at least one external key manager instance back to ACTIVE.",
        ],
        notes: &[
            "Documents disagree on TLS failures: the XKS proxy API specification maps them here, \
             the developer guide lists them under XksProxyInvalidConfigurationException. \
             cks-doctor reports both.",
            "The XKS proxy API specification's table maps 429 ThrottlingException here; no \
             ConnectionErrorCode is documented for it.",
            "With VPC_ENDPOINT_SERVICE connectivity KMS does not contact the proxy at \
             CreateCustomKeyStore, only at connect and update. cks-doctor may not reach a private \
             proxy from where it runs; it then says \"not reachable from here\" rather than claim \
             that KMS cannot reach it.",
        ],
    },
    XksProxyVpcEndpointServiceInUseException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because the specified Amazon VPC endpoint service is \
                  already associated with another external key store in this AWS Region. Each \
                  external key store in a Region must use a different Amazon VPC endpoint service.",
        causes: &[
            "Another external key store in this Region already uses this VPC endpoint service \
             name.",
        ],
        fix: &[
            "Create a separate VPC endpoint service, with its own private DNS name, for this key \
             store. External key stores may share a VPC, but not an endpoint service.",
        ],
        notes: &[],
    },
    XksProxyVpcEndpointServiceInvalidConfigurationException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because the Amazon VPC endpoint service configuration \
                  does not fulfill the requirements for an external key store. To identify the \
                  cause, see the error message that accompanies the exception.",
        causes: &[
            "The service is not an endpoint service for interface endpoints behind a Network Load \
             Balancer (for example, it uses a Gateway Load Balancer).",
            "The service (its Network Load Balancer's subnets) spans fewer than two Availability \
             Zones.",
            "The service requires acceptance of connection requests (AcceptanceRequired = true).",
            "The service has no private DNS name, or the domain's verification status is not \
             verified.",
            "The host in XksProxyUriEndpoint is not the service's private DNS name.",
        ],
        fix: &[
            "Read the error message that accompanies the exception.",
            "Use an interface endpoint service backed by a Network Load Balancer in at least two \
             Availability Zones.",
            "Turn off acceptance required.",
            "Set a private DNS name on the service, complete its domain verification, and use \
             https://<private DNS name> as XksProxyUriEndpoint.",
        ],
        notes: &[
            "A service that requires acceptance: one developer guide page names \
             XksProxyInvalidConfigurationException instead.",
            "Documents disagree on a missing KMS principal in Allow principals: the \
             ConnectionErrorCode text lists it under XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION, \
             the API text puts it under XksProxyVpcEndpointServiceNotFoundException. cks-doctor \
             follows requirements section 5 and reports it as \
             XksProxyVpcEndpointServiceNotFoundException.",
            "ConnectionErrorCode counterpart: XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION.",
        ],
    },
    XksProxyVpcEndpointServiceNotFoundException {
        kind: Exception,
        store: Xks,
        operations: CREATE_UPDATE,
        meaning: "The request was rejected because AWS KMS could not find the specified VPC \
                  endpoint service. Use DescribeCustomKeyStores to verify the VPC endpoint service \
                  name for the external key store.",
        causes: &[
            "No VPC endpoint service with that name exists in this Region (or in the account \
             given as XksProxyVpcEndpointServiceOwner).",
            "The Allow principals list of the service does not include the KMS service principal \
             for the Region, cks.kms.<region>.amazonaws.com.",
        ],
        fix: &[
            "Verify XksProxyVpcEndpointServiceName (and the owner account, when the service \
             belongs to another account) with DescribeCustomKeyStores and ec2 \
             DescribeVpcEndpointServiceConfigurations.",
            "Add cks.kms.<region>.amazonaws.com to the service's Allow principals (ec2 \
             ModifyVpcEndpointServicePermissions), for example cks.kms.us-east-1.amazonaws.com.",
        ],
        notes: &[
            "Allowing \"*\" satisfies KMS but lets any principal connect; cks-doctor reports it as \
             a finding of its own.",
            "Endpoint services owned by another account (XksProxyVpcEndpointServiceOwner) were \
             added on 2025-10-30; older documentation says the service must be in the caller's \
             account.",
            "ConnectionErrorCode counterpart: XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND.",
        ],
    },
    ValidationException {
        kind: Exception,
        store: Any,
        operations: CREATE_UPDATE,
        meaning: "The input fails to satisfy the constraints specified by an AWS service: a \
                  request parameter breaks its documented length or pattern.",
        causes: &[
            "A parameter is outside its length limits, for example CustomKeyStoreName 1-256, \
             CloudHsmClusterId 19-24, KeyStorePassword 7-32, TrustAnchorCertificate 1-5000, \
             XksProxyUriEndpoint and XksProxyUriPath 10-128, XksProxyVpcEndpointServiceName \
             20-64.",
            "A parameter does not match its pattern: a cluster ID that is not \
             cluster-[2-7a-zA-Z]{11,16}; an XksProxyUriEndpoint with a port, a path or other \
             characters after https://; an XksProxyUriPath that does not end in /kms/xks/v1; a \
             malformed VPC endpoint service name or credential.",
            "A required parameter for the chosen CustomKeyStoreType or XksProxyConnectivity is \
             missing.",
        ],
        fix: &[
            "Correct the parameter to its documented length and pattern; cks-doctor's local \
             validation names the parameter and the rule it breaks.",
        ],
        notes: &[
            "A common error, not listed among the CreateCustomKeyStore errors. The KMS \
             documentation sometimes spells it ValidationError; requirements section 1 and \
             cks-doctor use ValidationException.",
            "The required-parameter cause is inferred; the documents do not say which exception a \
             missing conditional parameter produces.",
        ],
    },
    // ------------------------------------------------------------------------------------------
    // Other exceptions
    // ------------------------------------------------------------------------------------------
    CustomKeyStoreNotFoundException {
        kind: Exception,
        store: Any,
        operations: &[
            "UpdateCustomKeyStore",
            "ConnectCustomKeyStore",
            "DisconnectCustomKeyStore",
            "DeleteCustomKeyStore",
            "DescribeCustomKeyStores",
            "CreateKey",
            "GenerateRandom",
        ],
        meaning: "The request was rejected because AWS KMS cannot find a custom key store with \
                  the specified key store name or ID.",
        causes: &[
            "The CustomKeyStoreId or name is mistyped.",
            "The request went to another account or Region than the store's.",
            "The custom key store was deleted.",
        ],
        fix: &[
            "List the stores with DescribeCustomKeyStores in the intended account and Region and \
             use the ID shown there.",
        ],
        notes: &[],
    },
    CustomKeyStoreInvalidStateException {
        kind: Exception,
        store: Any,
        operations: &[
            "UpdateCustomKeyStore",
            "ConnectCustomKeyStore",
            "DisconnectCustomKeyStore",
            "DeleteCustomKeyStore",
            "CreateKey",
            "GenerateRandom",
        ],
        meaning: "The request was rejected because of the ConnectionState of the custom key \
                  store. To get the ConnectionState of a custom key store, use the \
                  DescribeCustomKeyStores operation.",
        causes: &[
            "ConnectCustomKeyStore on a store that is DISCONNECTING or FAILED.",
            "CreateKey in a custom key store that is not CONNECTED.",
            "DisconnectCustomKeyStore on a store that is DISCONNECTING or DISCONNECTED.",
            "UpdateCustomKeyStore or DeleteCustomKeyStore on a store that is not DISCONNECTED \
             (see notes for the properties an external key store may change while CONNECTED).",
            "GenerateRandom in an AWS CloudHSM key store that is not CONNECTED.",
        ],
        fix: &[
            "Check ConnectionState with DescribeCustomKeyStores.",
            "To reconnect a FAILED store: DisconnectCustomKeyStore, then ConnectCustomKeyStore.",
            "To update a store: DisconnectCustomKeyStore, UpdateCustomKeyStore, then \
             ConnectCustomKeyStore.",
            "For CreateKey or GenerateRandom: connect the store and wait for CONNECTED (connecting \
             can take up to 20 minutes).",
        ],
        notes: &[
            "Documents disagree on what UpdateCustomKeyStore accepts while CONNECTED: this \
             exception's text says only NewCustomKeyStoreName, while the UpdateCustomKeyStore \
             reference says an external key store may change its name, \
             XksProxyAuthenticationCredential and XksProxyUriPath while CONNECTED and that an \
             AWS CloudHSM key store must be DISCONNECTED for any change.",
        ],
    },
    CloudHsmClusterNotRelatedException {
        kind: Exception,
        store: Cloudhsm,
        operations: UPDATE,
        meaning: "The request was rejected because the specified AWS CloudHSM cluster has a \
                  different cluster certificate than the original cluster. You cannot use the \
                  operation to specify an unrelated cluster for an AWS CloudHSM key store.",
        causes: &[
            "UpdateCustomKeyStore names a CloudHsmClusterId that was neither created from a \
             backup of the current cluster nor from the same backup that produced it, so its \
             cluster certificate differs.",
        ],
        fix: &[
            "Specify a cluster that shares a backup history with the original cluster (same \
             cluster certificate in cloudhsmv2 DescribeClusters), for example one created from a \
             recent backup of it.",
            "To use an unrelated cluster, create a new custom key store; KMS keys cannot move \
             between stores.",
        ],
        notes: &[
            "The inverse of CloudHsmClusterInUseException, which CreateCustomKeyStore returns \
             when the cluster DOES share a backup history with a cluster already in use.",
        ],
    },
    KMSInvalidStateException {
        kind: Exception,
        store: Any,
        operations: &[
            "Encrypt",
            "Decrypt",
            "ReEncrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
        ],
        meaning: "The request was rejected because the state of the specified resource is not \
                  valid for this request. For cryptographic operations on KMS keys in custom key \
                  stores, this exception represents a general failure with many possible causes.",
        causes: &[
            "AWS CloudHSM key store: KMS cannot communicate with the cluster, for example because \
             the cluster security group no longer allows TCP 2223-2225 between its members; the \
             message then says KMS cannot communicate with your CloudHSM cluster.",
            "The store still shows CONNECTED but its backing key store is unavailable: for AWS \
             CloudHSM, the cluster is not active or has no active HSM; for an external key \
             store, the proxy or the external key manager is unreachable or disabled.",
            "The KMS key's own key state is not compatible with the operation (for example \
             PendingDeletion).",
        ],
        fix: &[
            "Read the error message that accompanies the exception.",
            "AWS CloudHSM: check that the cluster is ACTIVE with at least one active HSM, and \
             restore the default rules of cloudhsm-cluster-<cluster-id>-sg (TCP 2223-2225 \
             inbound and outbound, peer = the group itself).",
            "External: check that the proxy and external key manager are reachable and enabled.",
            "If the store shows FAILED, or the fault persists after the fix: \
             DisconnectCustomKeyStore, then ConnectCustomKeyStore.",
        ],
        notes: &[
            "Not a CreateCustomKeyStore error: it is how a store that has lost its backing key \
             store fails on cryptographic calls. The security-group mapping comes from \
             requirements section 3; the other mappings are inferred from the \
             DescribeCustomKeyStores text (\"If your custom key store connection state is \
             CONNECTED but you are having trouble using it, verify that the backing store is \
             active and available\").",
            "The AWS SDK for Rust names it KmsInvalidStateException; the wire name is \
             KMSInvalidStateException.",
        ],
    },
    CustomKeyStoreHasCMKsException {
        kind: Exception,
        store: Any,
        operations: &["DeleteCustomKeyStore"],
        meaning: "The request was rejected because the custom key store contains AWS KMS keys. \
                  After verifying that you do not need to use the KMS keys, use the \
                  ScheduleKeyDeletion operation to delete the KMS keys. After they are deleted, \
                  you can delete the custom key store.",
        causes: &["The store still holds KMS keys, in any key state but deleted."],
        fix: &[
            "List the store's keys (ListKeys, then DescribeKey: KeyMetadata.CustomKeyStoreId).",
            "Make sure nothing needs them, then ScheduleKeyDeletion for each and wait out the \
             waiting period.",
            "DeleteCustomKeyStore.",
        ],
        notes: &[],
    },
    InvalidMarkerException {
        kind: Exception,
        store: Any,
        operations: &["DescribeCustomKeyStores"],
        meaning: "The request was rejected because the marker that specifies where pagination \
                  should next begin is not valid.",
        causes: &["A Marker that is not the NextMarker of the previous page."],
        fix: &["Start again without a Marker and pass each page's NextMarker unchanged."],
        notes: &[],
    },
    XksKeyNotFoundException {
        kind: Exception,
        store: Xks,
        operations: &["CreateKey"],
        meaning: "The request was rejected because the external key store proxy could not find \
                  the external key. This exception is thrown when the value of the XksKeyId \
                  parameter doesn't identify a key in the external key manager associated with \
                  the external key proxy.",
        causes: &[
            "The XksKeyId is not the identifier the proxy uses for the key (the proxy's \
             GetKeyMetadata answers 404 KeyNotFoundException).",
            "The key exists in the external key manager but the proxy does not expose it.",
        ],
        fix: &[
            "Verify that the XksKeyId represents an existing key in the external key manager, \
             using the key identifier that the external key store proxy uses.",
        ],
        notes: &[],
    },
    XksKeyInvalidConfigurationException {
        kind: Exception,
        store: Xks,
        operations: &["CreateKey"],
        meaning: "The request was rejected because the external key specified by the XksKeyId \
                  parameter did not meet the configuration requirements for an external key \
                  store. The external key must be an AES-256 symmetric key that is enabled and \
                  performs encryption and decryption.",
        causes: &[
            "GetKeyMetadata reports a keySpec other than AES_256.",
            "The key's keyStatus is not ENABLED.",
            "The key's keyUsage lacks ENCRYPT or DECRYPT.",
        ],
        fix: &[
            "Use an enabled AES-256 key that allows both encryption and decryption, or change \
             the key's configuration in the external key manager.",
        ],
        notes: &[],
    },
    XksKeyAlreadyInUseException {
        kind: Exception,
        store: Xks,
        operations: &["CreateKey"],
        meaning: "The request was rejected because the (XksKeyId) is already associated with \
                  another KMS key in this external key store. Each KMS key in an external key \
                  store must be associated with a different external key.",
        causes: &["Another KMS key of the same external key store already uses this XksKeyId."],
        fix: &["Create a new external key for the KMS key, or use the KMS key that already has it."],
        notes: &[],
    },
    MalformedPolicyDocumentException {
        kind: Exception,
        store: Any,
        operations: &["CreateKey"],
        meaning: "The request was rejected because the specified policy is not syntactically or \
                  semantically correct.",
        causes: &["The key policy given to CreateKey is not valid JSON or breaks the key policy rules."],
        fix: &["Fix the key policy, or omit it to get the default key policy."],
        notes: &[],
    },
    DependencyTimeoutException {
        kind: Exception,
        store: Any,
        operations: &["CreateKey"],
        meaning: "The system timed out while trying to fulfill the request. You can retry the \
                  request.",
        causes: &["A service KMS depends on did not answer in time."],
        fix: &["Retry the request."],
        notes: &[],
    },
    InvalidArnException {
        kind: Exception,
        store: Any,
        operations: &["CreateKey"],
        meaning: "The request was rejected because a specified ARN, or an ARN in a key policy, \
                  is not valid.",
        causes: &["An ARN in the key policy is malformed."],
        fix: &["Correct the ARN."],
        notes: &[],
    },
    UnsupportedOperationException {
        kind: Exception,
        store: Any,
        operations: &["CreateKey"],
        meaning: "The request was rejected because a specified parameter is not supported or a \
                  specified resource is not valid for this operation.",
        causes: &[
            "A key spec, key usage or option that a custom key store does not support (an \
             external key store holds only symmetric encryption keys, not multi-Region keys or \
             keys with imported material).",
        ],
        fix: &["Create a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT single-Region key in the store."],
        notes: &[],
    },
    TagException {
        kind: Exception,
        store: Any,
        operations: &["CreateKey"],
        meaning: "The request was rejected because one or more tags are not valid.",
        causes: &["A tag key or value breaks the tagging rules."],
        fix: &["Correct the tags."],
        notes: &[],
    },
    // ------------------------------------------------------------------------------------------
    // ConnectionErrorCodes: both store kinds
    // ------------------------------------------------------------------------------------------
    INTERNAL_ERROR {
        kind: ConnectionErrorCode,
        store: Any,
        operations: CONNECT,
        meaning: "KMS could not complete the request due to an internal error. Retry the request; \
                  for ConnectCustomKeyStore requests, disconnect the custom key store before \
                  trying to connect again.",
        causes: &["A failure inside AWS KMS, not visible from outside."],
        fix: &[
            "DisconnectCustomKeyStore (a FAILED store must be disconnected before it can be \
             connected again).",
            "ConnectCustomKeyStore, then watch ConnectionState with DescribeCustomKeyStores \
             (connecting can take up to 20 minutes).",
            "If it keeps failing, contact AWS Support.",
        ],
        notes: &[
            "The cause lives inside KMS: cks-doctor can only give the recovery steps and show \
             that the rest of the configuration is sound.",
        ],
    },
    NETWORK_ERRORS {
        kind: ConnectionErrorCode,
        store: Any,
        operations: CONNECT,
        meaning: "Network errors are preventing KMS from connecting the custom key store to its \
                  backing key store.",
        causes: &[
            "AWS CloudHSM: the cluster security group does not allow TCP 2223-2225 inbound and \
             outbound with the group itself as the peer.",
            "AWS CloudHSM: network ACLs on the cluster subnets block TCP 2223-2225 between them \
             (advisory check).",
            "External key store: the proxy cannot be reached (name resolution, TCP 443).",
            "A transient network problem.",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Fix the network path: restore the default rules of \
             cloudhsm-cluster-<cluster-id>-sg (AWS CloudHSM), or make the proxy reachable \
             (external).",
            "Wait, then ConnectCustomKeyStore again.",
        ],
        notes: &[
            "The security-group mapping is taken from requirements section 3; for external key \
             stores requirements section 4 names NETWORK_ERRORS as an alternative to \
             XKS_PROXY_NOT_REACHABLE. The API text gives no causes for this code.",
        ],
    },
    INVALID_CREDENTIALS {
        kind: ConnectionErrorCode,
        store: Any,
        operations: CONNECT,
        meaning: "AWS CloudHSM: the KeyStorePassword for the custom key store doesn't match the \
                  current password of the kmsuser crypto user in the CloudHSM cluster. External: \
                  one or both of the XksProxyAuthenticationCredential values is not valid on the \
                  specified external key store proxy.",
        causes: &[
            "AWS CloudHSM: the kmsuser password was changed in the cluster without telling KMS \
             (UpdateCustomKeyStore KeyStorePassword), or the password given to KMS was wrong.",
            "External: the AccessKeyId or RawSecretAccessKey is wrong, or was rotated on the \
             proxy without UpdateCustomKeyStore.",
            "External: the proxy expects another Region in the SigV4 credential scope, or the \
             clocks differ by more than 5 minutes (proxy answers 401 \
             AuthenticationFailedException).",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "AWS CloudHSM: change the kmsuser password in the cluster (cloudhsm-cli user \
             change-password), then UpdateCustomKeyStore with KeyStorePassword set to the new \
             password.",
            "External: UpdateCustomKeyStore with XksProxyAuthenticationCredential set to the \
             credential established on the proxy (both AccessKeyId and RawSecretAccessKey); fix \
             the proxy's Region or clock if needed.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "One code, two meanings: the kmsuser password for AWS CloudHSM key stores, the proxy \
             credential for external key stores.",
            "KMS rotates the kmsuser password every time it connects the store.",
            "Password rules disagree: the API accepts 7-32 characters of any kind, the KMS guide \
             says alphanumeric only, current CloudHSM limits say 8-32 (requirements section 2).",
            "For AWS CloudHSM the cause lives inside the HSM; cks-doctor can only gather evidence \
             such as a cloudhsm-cli user list file.",
        ],
    },
    // ------------------------------------------------------------------------------------------
    // ConnectionErrorCodes: AWS CloudHSM key stores
    // ------------------------------------------------------------------------------------------
    CLUSTER_NOT_FOUND {
        kind: ConnectionErrorCode,
        store: Cloudhsm,
        operations: CONNECT,
        meaning: "KMS cannot find the CloudHSM cluster with the specified cluster ID.",
        causes: &[
            "The cluster was deleted (DELETE_IN_PROGRESS or DELETED).",
            "The cluster ID stored in the key store was changed to a wrong value.",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Create a cluster from a backup of the deleted cluster (it shares the backup history, \
             so KMS accepts it).",
            "UpdateCustomKeyStore with CloudHsmClusterId set to the restored cluster.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[],
    },
    INSUFFICIENT_CLOUDHSM_HSMS {
        kind: ConnectionErrorCode,
        store: Cloudhsm,
        operations: CONNECT,
        meaning: "The associated CloudHSM cluster does not contain any active HSMs. To connect a \
                  custom key store to its CloudHSM cluster, the cluster must contain at least one \
                  active HSM.",
        causes: &["The cluster has no HSM in the ACTIVE state (all deleted, failed or degraded)."],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Add an HSM with the AWS CloudHSM CreateHsm operation and wait until it is ACTIVE.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "Creating KMS keys needs two active HSMs in different Availability Zones: a store \
             connected with a single HSM still fails CreateKey with \
             CloudHsmClusterInvalidConfigurationException.",
            "ConnectCustomKeyStore may reject the request at once with \
             CloudHsmClusterInvalidConfigurationException instead (requirements section 3).",
        ],
    },
    INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET {
        kind: ConnectionErrorCode,
        store: Cloudhsm,
        operations: CONNECT,
        meaning: "At least one private subnet associated with the CloudHSM cluster doesn't have \
                  any available IP addresses. A CloudHSM key store connection requires one free \
                  IP address in each of the associated private subnets, although two are \
                  preferable.",
        causes: &["A cluster subnet has AvailableIpAddressCount 0 (ec2 DescribeSubnets)."],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Free IP addresses in every cluster subnet (remove unused network interfaces), or \
             create a cluster from a backup in larger subnets and UpdateCustomKeyStore with its \
             CloudHsmClusterId.",
            "ConnectCustomKeyStore.",
        ],
        notes: &["cks-doctor fails a subnet at 0 free addresses and warns at 1."],
    },
    SUBNET_NOT_FOUND {
        kind: ConnectionErrorCode,
        store: Cloudhsm,
        operations: CONNECT,
        meaning: "A subnet in the CloudHSM cluster configuration was deleted. If KMS cannot find \
                  all of the subnets in the cluster configuration, attempts to connect the custom \
                  key store to the CloudHSM cluster fail.",
        causes: &[
            "A subnet in Cluster.SubnetMapping no longer exists (or is not in the cluster's VPC).",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Create a cluster from a recent backup; this creates a new cluster configuration \
             with a VPC and private subnets.",
            "UpdateCustomKeyStore with CloudHsmClusterId set to the new cluster.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "AWS: \"After you create your custom key store, do not delete any of the private \
             subnets configured for its AWS CloudHSM cluster.\"",
        ],
    },
    USER_LOCKED_OUT {
        kind: ConnectionErrorCode,
        store: Cloudhsm,
        operations: CONNECT,
        meaning: "The kmsuser CU account is locked out of the associated CloudHSM cluster due to \
                  too many failed password attempts.",
        causes: &["Too many failed logins as kmsuser (for example with an outdated password)."],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Change the kmsuser password in the cluster as an admin (cloudhsm-cli user \
             change-password).",
            "UpdateCustomKeyStore with KeyStorePassword set to the new password.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "Not visible through any AWS API: cks-doctor reads the locked field of a \
             cloudhsm-cli user list JSON file when one is given.",
        ],
    },
    USER_LOGGED_IN {
        kind: ConnectionErrorCode,
        store: Cloudhsm,
        operations: CONNECT,
        meaning: "The kmsuser CU account is logged into the associated CloudHSM cluster. This \
                  prevents KMS from rotating the kmsuser account password and logging into the \
                  cluster.",
        causes: &["Someone is logged in to the cluster as kmsuser (cloudhsm-cli or an SDK client)."],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Log the kmsuser CU out of the cluster (end the session that uses it).",
            "If you changed the kmsuser password to log in, UpdateCustomKeyStore with \
             KeyStorePassword set to the current password.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "Not visible through any AWS API: the operator has to confirm that no session uses \
             kmsuser.",
        ],
    },
    USER_NOT_FOUND {
        kind: ConnectionErrorCode,
        store: Cloudhsm,
        operations: CONNECT,
        meaning: "KMS cannot find a kmsuser CU account in the associated CloudHSM cluster.",
        causes: &[
            "The kmsuser crypto user was never created in this cluster, or was deleted.",
            "A user named kmsuser exists but not with the crypto-user role (inferred).",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Create kmsuser as a crypto user without 2FA/MFA (cloudhsm-cli user create \
             --username kmsuser --role crypto-user; with the older cloudhsm_mgmt_util: \
             createUser CU kmsuser <password>).",
            "UpdateCustomKeyStore with KeyStorePassword set to its password.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "AWS: do not specify 2FA when you create kmsuser, or KMS cannot log in; it cannot be \
             undone, so delete and recreate the user. Which ConnectionErrorCode an MFA-enabled \
             kmsuser produces is not documented.",
        ],
    },
    // ------------------------------------------------------------------------------------------
    // ConnectionErrorCodes: external key stores
    // ------------------------------------------------------------------------------------------
    XKS_PROXY_ACCESS_DENIED {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "KMS requests are denied access to the external key store proxy. If the \
                  external key store proxy has authorization rules, verify that they permit KMS \
                  to communicate with the proxy on your behalf.",
        causes: &[
            "The proxy's authorization rules deny the health request: it answers 403 \
             AccessDeniedException.",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Change the proxy's authorization rules so that KMS may call it on your behalf, \
             including the health request.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "No CreateCustomKeyStore exception is documented for a 403 on the health request \
             (requirements section 4).",
        ],
    },
    XKS_PROXY_INVALID_CONFIGURATION {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "A configuration error is preventing the external key store from connecting to \
                  its proxy. Verify the value of the XksProxyUriPath.",
        causes: &[
            "XksProxyUriPath or its prefix is wrong: the proxy answers 404 \
             InvalidUriPathException.",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "UpdateCustomKeyStore with XksProxyUriPath set to the base path the proxy documents \
             (ending /kms/xks/v1).",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "XksProxyUriPath can also be updated while the store is CONNECTED (UpdateCustomKeyStore \
             reference).",
        ],
    },
    XKS_PROXY_INVALID_RESPONSE {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "KMS cannot interpret the response from the external key store proxy. If you see \
                  this connection error code repeatedly, notify your external key store proxy \
                  vendor.",
        causes: &[
            "An error status without the JSON {\"errorName\", \"errorMessage\"} shape, such as a \
             web server's own error page.",
            "A 200 response whose body breaks the health response schema.",
            "The proxy answers 500 InternalException or 400 ValidationException to a valid \
             request (inferred).",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Fix what answers in the proxy's place, or report the malformed response to the proxy \
             vendor.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "Mapping 500 InternalException and 400 ValidationException here is inferred \
             (requirements section 4).",
        ],
    },
    XKS_PROXY_INVALID_TLS_CONFIGURATION {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "KMS cannot connect to the external key store proxy because the TLS \
                  configuration is invalid. Verify that the XKS proxy supports TLS 1.2 or 1.3, \
                  and that its certificate is not expired, matches the hostname in \
                  XksProxyUriEndpoint, and is signed by a certificate authority on the Trusted \
                  Certificate Authorities list.",
        causes: &[
            "TLS older than 1.2, or none of TLS_AES_256_GCM_SHA384, \
             TLS_CHACHA20_POLY1305_SHA256 (TLS 1.3), TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, \
             TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 (TLS 1.2).",
            "The certificate is expired, or does not match the endpoint's DNS name.",
            "The certificate does not chain to a CA on KMS's trusted list, or an intermediate \
             certificate is not served.",
            "VPC_ENDPOINT_SERVICE connectivity: the certificate is not for the endpoint \
             service's private DNS name.",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Serve a certificate for the endpoint name from a CA on KMS's trusted list, with its \
             intermediates, over TLS 1.2 or 1.3 with a supported cipher suite.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "KMS's trusted list is its own (kms-xks-trusted-certificate-authorities), not \
             Mozilla's; some of its roots have since expired.",
        ],
    },
    XKS_PROXY_NOT_REACHABLE {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "KMS can't communicate with your external key store proxy. Connection attempts \
                  also fail with this code if the proxy reports that all external key manager \
                  instances are unavailable.",
        causes: &[
            "XksProxyUriEndpoint or XksProxyUriPath is wrong.",
            "The name does not resolve, or TCP 443 is refused or filtered; the proxy is down.",
            "Every ekmFleetDetails entry in the health response is UNAVAILABLE.",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Verify that XksProxyUriEndpoint and XksProxyUriPath are correct; use the tools for \
             your proxy to verify that it is active and available on its network, and that your \
             external key manager instances are operating properly.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "An unreachable proxy may also be reported as NETWORK_ERRORS (requirements section \
             4).",
            "For a private proxy, cks-doctor running outside the VPC may not reach it either; it \
             then says \"not reachable from here\".",
        ],
    },
    XKS_PROXY_TIMED_OUT {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "KMS can connect to the external key store proxy, but the proxy does not respond \
                  to KMS in the time allotted. If you see this connection error code repeatedly, \
                  notify your external key store proxy vendor.",
        causes: &[
            "No answer within 250 ms of KMS sending the request (AWS does not say whether \
             connection set-up counts).",
            "The proxy answers 503 DependencyTimeoutException (the external key manager is \
             slow; inferred).",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Reduce latency between KMS and the proxy and between the proxy and the external key \
             manager; the recommended round trip is 35 ms or less.",
            "ConnectCustomKeyStore; if it repeats, notify the proxy vendor.",
        ],
        notes: &[
            "The 250 ms limit comes from the XKS proxy API specification; the API text says only \
             \"in the time allotted\".",
            "A 503 DependencyTimeoutException is mapped to XKS_PROXY_TIMED_OUT by inference: \
             the specification maps it to XksProxyUriUnreachableException, and no AWS document \
             names its ConnectionErrorCode.",
        ],
    },
    XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "The Amazon VPC endpoint service configuration doesn't conform to the \
                  requirements for an AWS KMS external key store.",
        causes: &[
            "Not an endpoint service for interface endpoints with a Network Load Balancer \
             connected to at least two subnets, each in a different Availability Zone.",
            "The service requires acceptance of connection requests.",
            "No private DNS name, or its domain verification status is not verified; or the \
             private DNS name is not unique in the Region.",
            "The TLS certificate does not specify the private DNS hostname at which the endpoint \
             is reachable.",
            "The Allow principals list lacks cks.kms.<region>.amazonaws.com (per this code's API \
             text; see notes).",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Fix the endpoint service (interface type, NLB in two or more Availability Zones, no \
             acceptance required, verified private DNS name, KMS principal allowed).",
            "UpdateCustomKeyStore if the service name or endpoint changed.",
            "ConnectCustomKeyStore.",
        ],
        notes: &[
            "The API text lists the Allow principals requirement under this code, while \
             XksProxyVpcEndpointServiceNotFoundException and XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND \
             name it too; cks-doctor reports a missing principal as NOT_FOUND (requirements \
             section 5).",
            "The API text says the service must be in the caller's account; since 2025-10-30 it \
             may belong to another account (XksProxyVpcEndpointServiceOwner).",
        ],
    },
    XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND {
        kind: ConnectionErrorCode,
        store: Xks,
        operations: CONNECT,
        meaning: "KMS can't find the VPC endpoint service that it uses to communicate with the \
                  external key store proxy. Verify that the XksProxyVpcEndpointServiceName is \
                  correct and the KMS service principal has service consumer permissions on the \
                  Amazon VPC endpoint service.",
        causes: &[
            "The VPC endpoint service was deleted, or the name (or owner account) stored in the \
             key store is wrong.",
            "cks.kms.<region>.amazonaws.com is not in the service's Allow principals.",
        ],
        fix: &[
            "DisconnectCustomKeyStore.",
            "Add cks.kms.<region>.amazonaws.com to the Allow principals, or recreate the service \
             and UpdateCustomKeyStore with its XksProxyVpcEndpointServiceName (and \
             XksProxyVpcEndpointServiceOwner).",
            "ConnectCustomKeyStore.",
        ],
        notes: &[],
    },
}

/// The five `ConnectionState` values.
pub static CONNECTION_STATES: &[ConnectionStateInfo] = &[
    ConnectionStateInfo {
        name: "CONNECTED",
        meaning: "The custom key store is connected to its backing key store (its CloudHSM \
                  cluster or its external key store proxy). You can create and use KMS keys in a \
                  custom key store only when its ConnectionState is CONNECTED.",
    },
    ConnectionStateInfo {
        name: "CONNECTING",
        meaning: "A ConnectCustomKeyStore request is in progress. The connection process can take \
                  an extended amount of time to complete (the developer guide says up to 20 \
                  minutes).",
    },
    ConnectionStateInfo {
        name: "FAILED",
        meaning: "An attempt to connect was unsuccessful; the ConnectionErrorCode field indicates \
                  the cause. Disconnect the store (DisconnectCustomKeyStore), correct the error \
                  (UpdateCustomKeyStore) and connect again (ConnectCustomKeyStore).",
    },
    ConnectionStateInfo {
        name: "DISCONNECTED",
        meaning: "The key store has never been connected, or you used DisconnectCustomKeyStore \
                  to disconnect it. Most properties can be changed with UpdateCustomKeyStore only \
                  in this state.",
    },
    ConnectionStateInfo {
        name: "DISCONNECTING",
        meaning: "A DisconnectCustomKeyStore request is in progress; ConnectCustomKeyStore and \
                  DisconnectCustomKeyStore are rejected until it completes.",
    },
];

/// Finds a code by its exact AWS name, falling back to a case-insensitive match
/// (so the AWS SDK for Rust spelling `KmsInternalException` finds `KMSInternalException`).
pub fn lookup(name: &str) -> Option<&'static CodeInfo> {
    let name = name.trim();
    CODES
        .iter()
        .find(|c| c.name == name)
        .or_else(|| CODES.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
}

/// Finds a `ConnectionState` value, exact first, then case-insensitive.
pub fn lookup_state(name: &str) -> Option<&'static ConnectionStateInfo> {
    let name = name.trim();
    CONNECTION_STATES
        .iter()
        .find(|s| s.name == name)
        .or_else(|| {
            CONNECTION_STATES
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(name))
        })
}

/// True when `name` is a code in [`CODES`] (case-insensitive). `ConnectionState` values are not
/// codes: use [`lookup_state`] for them.
pub fn is_known(name: &str) -> bool {
    lookup(name).is_some()
}

/// The closest known name (a code or a `ConnectionState` value) for a "did you mean" hint.
///
/// Comparison ignores case and the separators `_`, `-` and spaces, so
/// `xks-proxy-timed-out` suggests `XKS_PROXY_TIMED_OUT`. A unique prefix match wins; otherwise
/// the name with the smallest edit distance, if that distance is small enough
/// (at most a third of the input's length, and at least 2). Returns `None` when nothing is close.
pub fn suggest(name: &str) -> Option<&'static str> {
    let query = normalize(name);
    if query.is_empty() {
        return None;
    }
    let candidates = || {
        CODES
            .iter()
            .map(|c| c.name)
            .chain(CONNECTION_STATES.iter().map(|s| s.name))
    };

    if let Some(exact) = candidates().find(|c| normalize(c) == query) {
        return Some(exact);
    }

    if query.len() >= 4 {
        let mut prefixed = candidates().filter(|c| normalize(c).starts_with(&query));
        if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
            return Some(only);
        }
    }

    let limit = (query.chars().count() / 3).max(2);
    let mut best: Option<(usize, &'static str)> = None;
    for candidate in candidates() {
        let d = levenshtein(&query, &normalize(candidate));
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn normalize(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The codes that `CreateCustomKeyStore` returns (its 17 documented errors and the common
/// `ValidationException`), in table order.
fn is_create_error(code: &CodeInfo) -> bool {
    code.kind == CodeKind::Exception && code.operations.contains(&"CreateCustomKeyStore")
}

/// Renders `docs/error-codes.md` from [`CODES`] and [`CONNECTION_STATES`].
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "<!--\n\
         Generated from src/codes.rs by cks_doctor::codes::render_markdown(). Do not edit by hand.\n\
         tests/it/codes.rs checks that this file matches the table; to regenerate it, run\n\
         \x20   CKS_BLESS=1 cargo test --test it codes::\n\
         -->\n\n",
    );
    out.push_str("# cks-doctor error codes\n\n");
    let exceptions = CODES
        .iter()
        .filter(|c| c.kind == CodeKind::Exception)
        .count();
    let connection = CODES.len() - exceptions;
    let _ = write!(
        out,
        "Every name cks-doctor can report: {exceptions} KMS exceptions and {connection} \
         `ConnectionErrorCode` values, then the {} `ConnectionState` values. \
         `cks-doctor explain NAME` prints the same entry (names are case-insensitive).\n\n",
        CONNECTION_STATES.len()
    );
    out.push_str(
        "The meaning of each code is AWS's own wording (KMS API reference, \
         `DescribeCustomKeyStores`), quoted or closely paraphrased. Causes and fixes come from the \
         KMS developer guide and the project's requirements digest. Where AWS's documents disagree, \
         or a mapping is inferred rather than documented, the notes say so.\n\n",
    );
    out.push_str(
        "Connection errors are fixed in this order: disconnect the store \
         (`DisconnectCustomKeyStore`; a `FAILED` store must be disconnected before it can be \
         connected again), correct the error (`UpdateCustomKeyStore` when a property of the store \
         changes), then connect it again (`ConnectCustomKeyStore`; connecting can take up to 20 \
         minutes).\n\n",
    );

    type Filter = fn(&CodeInfo) -> bool;
    let groups: [(&str, &str, Filter); 5] = [
        (
            "CreateCustomKeyStore exceptions",
            "The 17 errors of the `CreateCustomKeyStore` API reference, and the common \
             `ValidationException` for parameters that break their length or pattern.",
            is_create_error,
        ),
        (
            "Other exceptions",
            "Returned by `UpdateCustomKeyStore`, `ConnectCustomKeyStore` and the other custom key \
             store operations, and by cryptographic operations on a store that has lost its \
             backing key store.",
            |c| c.kind == CodeKind::Exception && !is_create_error(c),
        ),
        (
            "ConnectionErrorCodes: both key store types",
            "Shown by `DescribeCustomKeyStores` when `ConnectionState` is `FAILED`.",
            |c| c.kind == CodeKind::ConnectionErrorCode && c.store == StoreKind::Any,
        ),
        (
            "ConnectionErrorCodes: AWS CloudHSM key stores",
            "Shown by `DescribeCustomKeyStores` when `ConnectionState` is `FAILED`.",
            |c| c.kind == CodeKind::ConnectionErrorCode && c.store == StoreKind::Cloudhsm,
        ),
        (
            "ConnectionErrorCodes: external key stores",
            "Shown by `DescribeCustomKeyStores` when `ConnectionState` is `FAILED`.",
            |c| c.kind == CodeKind::ConnectionErrorCode && c.store == StoreKind::Xks,
        ),
    ];

    out.push_str("Contents:\n\n");
    for (title, _, filter) in &groups {
        let names: Vec<String> = CODES
            .iter()
            .filter(|c| filter(c))
            .map(|c| format!("[{}](#{})", c.name, anchor(c.name)))
            .collect();
        let _ = writeln!(out, "- **{title}**: {}", names.join(", "));
    }
    let states: Vec<String> = CONNECTION_STATES
        .iter()
        .map(|s| format!("[{}](#{})", s.name, anchor(s.name)))
        .collect();
    let _ = writeln!(out, "- **ConnectionState values**: {}", states.join(", "));
    out.push('\n');

    for (title, intro, filter) in &groups {
        let _ = write!(out, "# {title}\n\n{intro}\n\n");
        for code in CODES.iter().filter(|c| filter(c)) {
            render_code(&mut out, code);
        }
    }

    out.push_str("# ConnectionState values\n\n");
    out.push_str(
        "`DescribeCustomKeyStores` reports one of these for every custom key store; \
         `ConnectionErrorCode` is present only when the state is `FAILED`.\n\n",
    );
    for state in CONNECTION_STATES {
        let _ = write!(out, "## {}\n\n{}\n\n", state.name, escape(state.meaning));
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn render_code(out: &mut String, code: &CodeInfo) {
    let _ = write!(out, "## {}\n\n", code.name);
    let _ = writeln!(out, "- Kind: {}", code.kind.label());
    let _ = writeln!(out, "- Key store type: {}", code.store.label());
    let ops: Vec<String> = code.operations.iter().map(|o| format!("`{o}`")).collect();
    let returned = match code.kind {
        CodeKind::Exception => "Returned by",
        CodeKind::ConnectionErrorCode => "Reported after (seen in `DescribeCustomKeyStores`)",
    };
    let _ = write!(out, "- {returned}: {}\n\n", ops.join(", "));
    let _ = write!(out, "> {}\n\n", escape(code.meaning));
    list(out, "Causes", code.causes, false);
    list(out, "Fix", code.fix, true);
    list(out, "Notes", code.notes, false);
    let _ = write!(
        out,
        "Checks that detect it: see `cks-doctor explain {}`\n\n",
        code.name
    );
}

fn list(out: &mut String, title: &str, items: &[&str], numbered: bool) {
    if items.is_empty() {
        return;
    }
    let _ = write!(out, "**{title}**\n\n");
    for (i, item) in items.iter().enumerate() {
        if numbered {
            let _ = writeln!(out, "{}. {}", i + 1, escape(item));
        } else {
            let _ = writeln!(out, "- {}", escape(item));
        }
    }
    out.push('\n');
}

/// GitHub-style heading anchor: lower case; `_` and `-` are kept.
fn anchor(name: &str) -> String {
    name.to_lowercase()
}

/// Escapes the characters that would change the Markdown rendering of plain table text:
/// `\`, `*`, `<`, `>`, and `_` at a word boundary (intraword underscores, as in
/// `XKS_PROXY_TIMED_OUT`, render literally in CommonMark and stay readable).
fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '*' => out.push_str("\\*"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '_' => {
                let before = i > 0 && chars[i - 1].is_alphanumeric();
                let after = chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                if before && after {
                    out.push('_');
                } else {
                    out.push_str("\\_");
                }
            }
            _ => out.push(c),
        }
    }
    out
}
