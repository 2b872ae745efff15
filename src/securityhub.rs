//! `scan --security-hub-import`: the scan's ASFF findings (`src/report/asff.rs`, the document
//! `--output asff` prints) sent to AWS Security Hub with BatchImportFindings, 100 a call: the
//! one write `scan` may make, and only when asked.
//!
//! Security Hub takes a finding of the default product only from the account the finding is
//! about (its `AwsAccountId`, and the account of its `ProductArn`), in the Region of its
//! `ProductArn`. So the findings are grouped by account and Region, and each group is imported
//! with that account's own credentials (the profile, or the role an organisation scan assumed
//! there). A group whose account has no credentials in this run (a role that could not be
//! assumed; a report that does not know its account) is not imported, and the outcome says so.
//!
//! The findings are converted from the same JSON `--output asff` prints into the SDK's types by
//! [`to_sdk`], which refuses a field it does not know, so nothing `--output asff` prints is
//! silently left out of an import (`tests/it/live_org.rs` compares what Security Hub received
//! with what `--output asff` printed).

use crate::engine::{open_place, Access, Settings};
use crate::facts::live::classify;
use crate::facts::Source;
use crate::report::asff::PLACEHOLDER_ACCOUNT;
use aws_sdk_securityhub::types as sh;
use serde_json::Value;
use std::collections::HashMap;

/// BatchImportFindings takes at most 100 findings a call (Security Hub API reference).
pub const BATCH: usize = 100;

/// The findings of one account and Region, and how to reach the account.
#[derive(Debug, Clone)]
pub struct Group {
    pub account: String,
    pub region: String,
    pub findings: Vec<Value>,
    /// None: the run has no credentials for the account; `why_not` says why.
    pub access: Option<Access>,
    pub why_not: Option<String>,
}

/// What an import would send: one group per account and Region, in the order first met.
pub fn plan(findings: Vec<Value>, access: &[(String, Access)]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for f in findings {
        let account = f["AwsAccountId"].as_str().unwrap_or_default().to_string();
        let region = product_region(&f).unwrap_or_default();
        match groups
            .iter_mut()
            .find(|g| g.account == account && g.region == region)
        {
            Some(g) => g.findings.push(f),
            None => {
                let found = access
                    .iter()
                    .find(|(a, _)| *a == account)
                    .map(|(_, x)| x.clone());
                let why_not = if account == PLACEHOLDER_ACCOUNT || account.is_empty() {
                    Some("the report does not know its AWS account (a scan of profiles reads it with sts:GetCallerIdentity; it could not be read)".to_string())
                } else if found.is_none() {
                    Some("this run has no credentials for the account (its role could not be assumed)".to_string())
                } else if region.is_empty() {
                    Some("the finding names no Region".to_string())
                } else {
                    None
                };
                groups.push(Group {
                    account,
                    region,
                    findings: vec![f],
                    access: found,
                    why_not,
                });
            }
        }
    }
    groups
}

/// The Region of a finding's `ProductArn` (`arn:aws:securityhub:<region>:...`).
fn product_region(f: &Value) -> Option<String> {
    f["ProductArn"]
        .as_str()?
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// One finding Security Hub refused, as it said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub id: String,
    pub code: String,
    pub message: String,
}

/// What happened to one group.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupOutcome {
    pub account: String,
    pub region: String,
    pub sent: usize,
    pub imported: usize,
    pub refused: Vec<Refused>,
    /// Why (some of) the group was not sent, or a call failed.
    pub error: Option<String>,
}

impl GroupOutcome {
    pub fn complete(&self) -> bool {
        self.error.is_none() && self.refused.is_empty() && self.imported == self.sent
    }
}

/// Imports every group that has credentials, 100 findings a call; groups one after another,
/// so that the calls stay within Security Hub's BatchImportFindings rate (10 a second, 30
/// burst, per account and Region).
pub async fn import(settings: &Settings, groups: &[Group]) -> Vec<GroupOutcome> {
    let mut out = Vec::new();
    for g in groups {
        let mut o = GroupOutcome {
            account: g.account.clone(),
            region: g.region.clone(),
            sent: 0,
            imported: 0,
            refused: Vec::new(),
            error: g.why_not.clone(),
        };
        if let Some(access) = &g.access {
            import_group(settings, access, g, &mut o).await;
        }
        out.push(o);
    }
    out
}

async fn import_group(settings: &Settings, access: &Access, g: &Group, o: &mut GroupOutcome) {
    const ACTION: &str = "securityhub:BatchImportFindings";
    let live = match open_place(settings, access, Some(&g.region)).await {
        Ok((Source::Live(live), _)) => live,
        Ok(_) => {
            o.error = Some("--security-hub-import needs the live AWS APIs".into());
            return;
        }
        Err(e) => {
            o.error = Some(e.0);
            return;
        }
    };
    let client = live.securityhub();
    for chunk in g.findings.chunks(BATCH) {
        let converted: Result<Vec<sh::AwsSecurityFinding>, String> =
            chunk.iter().map(to_sdk).collect();
        let batch = match converted {
            Ok(b) => b,
            Err(e) => {
                o.error = Some(format!("a finding could not be converted: {e}"));
                return;
            }
        };
        o.sent += batch.len();
        let sent = client
            .batch_import_findings()
            .set_findings(Some(batch))
            .send()
            .await;
        match sent {
            Ok(r) => {
                o.imported += r.success_count().unwrap_or_default().max(0) as usize;
                o.refused
                    .extend(r.failed_findings().iter().map(|e| Refused {
                        id: e.id().unwrap_or_default().to_string(),
                        code: e.error_code().unwrap_or_default().to_string(),
                        message: e.error_message().unwrap_or_default().to_string(),
                    }));
            }
            Err(e) => {
                o.error = Some(classify(ACTION, live.timeout(), e).to_string());
                return;
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// ASFF JSON → the SDK's types

fn text(v: &Value, field: &str) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{field} is not a string"))
}

fn texts(v: &Value, field: &str) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("{field} is not a list"))?
        .iter()
        .map(|x| text(x, field))
        .collect()
}

fn string_map(v: &Value, field: &str) -> Result<HashMap<String, String>, String> {
    v.as_object()
        .ok_or_else(|| format!("{field} is not an object"))?
        .iter()
        .map(|(k, x)| Ok((k.clone(), text(x, field)?)))
        .collect()
}

/// The fields of `v`, each passed to `f`; a field `f` does not take is an error.
fn fields(
    v: &Value,
    what: &str,
    mut f: impl FnMut(&str, &Value) -> Result<bool, String>,
) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what} is not an object"))?;
    for (k, x) in obj {
        if !f(k, x)? {
            return Err(format!(
                "{what}.{k} is not a field the Security Hub import sends"
            ));
        }
    }
    Ok(())
}

fn severity(v: &Value) -> Result<(Option<String>, Option<String>), String> {
    let (mut label, mut original) = (None, None);
    fields(v, "Severity", |k, x| {
        match k {
            "Label" => label = Some(text(x, k)?),
            "Original" => original = Some(text(x, k)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((label, original))
}

fn resource(v: &Value) -> Result<sh::Resource, String> {
    let mut b = sh::Resource::builder();
    fields(v, "Resources[]", |k, x| {
        b = match k {
            "Type" => std::mem::take(&mut b).r#type(text(x, k)?),
            "Id" => std::mem::take(&mut b).id(text(x, k)?),
            "Partition" => {
                std::mem::take(&mut b).partition(sh::Partition::from(text(x, k)?.as_str()))
            }
            "Region" => std::mem::take(&mut b).region(text(x, k)?),
            "Details" => {
                let mut d = sh::ResourceDetails::builder();
                fields(x, "Resources[].Details", |k2, y| {
                    if k2 != "Other" {
                        return Ok(false);
                    }
                    d = std::mem::take(&mut d).set_other(Some(string_map(y, k2)?));
                    Ok(true)
                })?;
                std::mem::take(&mut b).details(d.build())
            }
            _ => return Ok(false),
        };
        Ok(true)
    })?;
    Ok(b.build())
}

/// One ASFF finding as `--output asff` prints it, in the SDK's type.
pub fn to_sdk(v: &Value) -> Result<sh::AwsSecurityFinding, String> {
    let mut b = sh::AwsSecurityFinding::builder();
    fields(v, "finding", |k, x| {
        let taken = std::mem::take(&mut b);
        b = match k {
            "SchemaVersion" => taken.schema_version(text(x, k)?),
            "Id" => taken.id(text(x, k)?),
            "ProductArn" => taken.product_arn(text(x, k)?),
            "ProductName" => taken.product_name(text(x, k)?),
            "CompanyName" => taken.company_name(text(x, k)?),
            "Region" => taken.region(text(x, k)?),
            "GeneratorId" => taken.generator_id(text(x, k)?),
            "AwsAccountId" => taken.aws_account_id(text(x, k)?),
            "Types" => taken.set_types(Some(texts(x, k)?)),
            "CreatedAt" => taken.created_at(text(x, k)?),
            "UpdatedAt" => taken.updated_at(text(x, k)?),
            "Title" => taken.title(text(x, k)?),
            "Description" => taken.description(text(x, k)?),
            "Severity" => {
                let (label, original) = severity(x)?;
                taken.severity(
                    sh::Severity::builder()
                        .set_label(label.as_deref().map(sh::SeverityLabel::from))
                        .set_original(original)
                        .build(),
                )
            }
            "Remediation" => {
                let mut r = sh::Recommendation::builder();
                fields(x, "Remediation", |k2, y| {
                    if k2 != "Recommendation" {
                        return Ok(false);
                    }
                    fields(y, "Remediation.Recommendation", |k3, z| {
                        r = match k3 {
                            "Text" => std::mem::take(&mut r).text(text(z, k3)?),
                            "Url" => std::mem::take(&mut r).url(text(z, k3)?),
                            _ => return Ok(false),
                        };
                        Ok(true)
                    })?;
                    Ok(true)
                })?;
                taken.remediation(sh::Remediation::builder().recommendation(r.build()).build())
            }
            "ProductFields" => taken.set_product_fields(Some(string_map(x, k)?)),
            "Resources" => {
                let list = x.as_array().ok_or("Resources is not a list")?;
                taken.set_resources(Some(list.iter().map(resource).collect::<Result<_, _>>()?))
            }
            "Compliance" => {
                let mut c = sh::Compliance::builder();
                fields(x, "Compliance", |k2, y| {
                    c = match k2 {
                        "Status" => std::mem::take(&mut c)
                            .status(sh::ComplianceStatus::from(text(y, k2)?.as_str())),
                        "RelatedRequirements" => {
                            std::mem::take(&mut c).set_related_requirements(Some(texts(y, k2)?))
                        }
                        _ => return Ok(false),
                    };
                    Ok(true)
                })?;
                taken.compliance(c.build())
            }
            "RecordState" => taken.record_state(sh::RecordState::from(text(x, k)?.as_str())),
            "Workflow" => {
                let mut w = sh::Workflow::builder();
                fields(x, "Workflow", |k2, y| {
                    if k2 != "Status" {
                        return Ok(false);
                    }
                    w = std::mem::take(&mut w)
                        .status(sh::WorkflowStatus::from(text(y, k2)?.as_str()));
                    Ok(true)
                })?;
                taken.workflow(w.build())
            }
            "FindingProviderFields" => {
                let mut p = sh::FindingProviderFields::builder();
                fields(x, "FindingProviderFields", |k2, y| {
                    p = match k2 {
                        "Severity" => {
                            let (label, original) = severity(y)?;
                            std::mem::take(&mut p).severity(
                                sh::FindingProviderSeverity::builder()
                                    .set_label(label.as_deref().map(sh::SeverityLabel::from))
                                    .set_original(original)
                                    .build(),
                            )
                        }
                        "Types" => std::mem::take(&mut p).set_types(Some(texts(y, k2)?)),
                        _ => return Ok(false),
                    };
                    Ok(true)
                })?;
                taken.finding_provider_fields(p.build())
            }
            _ => {
                b = taken;
                return Ok(false);
            }
        };
        Ok(true)
    })?;
    Ok(b.build())
}

/// The outcome in a few lines (standard error; standard output keeps the report).
pub fn summary(outcomes: &[GroupOutcome]) -> String {
    let imported: usize = outcomes.iter().map(|o| o.imported).sum();
    let mut s = format!(
        "Security Hub: {imported} finding(s) imported in {} account/Region(s)\n",
        outcomes.iter().filter(|o| o.imported > 0).count()
    );
    for o in outcomes {
        let place = place(&o.account, &o.region);
        if o.complete() {
            s += &format!("  ✓ {place}: {} imported\n", o.imported);
            continue;
        }
        s += &format!("  ✗ {place}: {} of {} sent imported", o.imported, o.sent);
        if let Some(e) = &o.error {
            s += &format!("; not imported: {e}");
        }
        s.push('\n');
        for r in o.refused.iter().take(5) {
            s += &format!("      refused {}: {}: {}\n", r.id, r.code, r.message);
        }
        if o.refused.len() > 5 {
            s += &format!("      … and {} more refused\n", o.refused.len() - 5);
        }
    }
    s
}

fn place(account: &str, region: &str) -> String {
    if region.is_empty() {
        format!("account {account}")
    } else {
        format!("account {account} in {region}")
    }
}

/// What `--dry-run` prints: where each finding would go, nothing sent.
pub fn dry_run(groups: &[Group]) -> String {
    let n: usize = groups.iter().map(|g| g.findings.len()).sum();
    let mut s = format!("Security Hub (--dry-run, nothing sent): would import {n} finding(s)\n");
    for g in groups {
        let place = place(&g.account, &g.region);
        match &g.why_not {
            None => {
                let calls = g.findings.len().div_ceil(BATCH);
                s += &format!(
                    "  {place}: {} finding(s) in {calls} BatchImportFindings call(s)\n",
                    g.findings.len()
                );
            }
            Some(why) => {
                s += &format!(
                    "  {place}: {} finding(s) NOT importable: {why}\n",
                    g.findings.len()
                )
            }
        }
    }
    s
}
