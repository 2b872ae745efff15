//! One self-contained HTML file for a compliance reviewer to open offline: inline CSS and
//! inline SVG only (no script, no external asset; the only URLs are `<a href>` links to AWS
//! documentation). Title, generation time (UTC) and tool version; the status counts as an SVG
//! bar; per store the target, verdict, diagnosis, the XKS latency phases against KMS's budget
//! (SVG), and a table of checks with their status colour, the evidence and the fix in
//! `<details>`. Every string from the report is escaped.

use super::markdown::{outlook_label, store_label};
use super::{CheckResult, Latency, Outlook, Report, Summary};
use crate::checks::Status;
use crate::meta::AREAS;
use std::fmt::Write;
use time::OffsetDateTime;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escaped text in which `code` spans (as remediation texts write them) become `<code>`.
fn with_code(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() % 2 == 0 {
        return html_escape(s);
    }
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", html_escape(p));
        } else {
            out.push_str(&html_escape(p));
        }
    }
    out
}

/// Each status with its colour and the legend's words.
const STATUSES: [(Status, &str, &str); 6] = [
    (Status::Pass, "#1a7f37", "passed"),
    (Status::Fail, "#cf222e", "failed"),
    (Status::Warn, "#bf8700", "warnings"),
    (Status::Error, "#8250df", "could not check"),
    (Status::Skip, "#8c959f", "skipped"),
    (Status::Manual, "#0969da", "manual"),
];

fn count(s: &Summary, status: Status) -> usize {
    match status {
        Status::Pass => s.pass,
        Status::Fail => s.fail,
        Status::Warn => s.warn,
        Status::Error => s.error,
        Status::Skip => s.skip,
        Status::Manual => s.manual,
    }
}

fn outlook_class(o: Outlook) -> &'static str {
    match o {
        Outlook::WouldFail => "would-fail",
        Outlook::Incomplete => "incomplete",
        Outlook::NoFailureFound => "no-failure",
    }
}

const CSS: &str = r#"
:root{--pass:#1a7f37;--fail:#cf222e;--warn:#bf8700;--error:#8250df;--skip:#8c959f;--manual:#0969da;--line:#d0d7de;--muted:#59636e}
*{box-sizing:border-box}
body{margin:0;background:#f6f8fa;color:#1f2328;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:0 0 8px;word-break:break-word}
h3{font-size:15px;margin:18px 0 8px}
.meta{color:var(--muted);margin:0 0 16px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid #e1e4e8}
th{font-weight:600}
thead th[class]{color:var(--c)}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eff1f3;border-radius:4px;padding:1px 4px;word-break:break-word}
.badge{display:inline-block;min-width:64px;text-align:center;border-radius:12px;padding:1px 8px;color:#fff;font-size:12px;font-weight:600;white-space:nowrap}
.PASS{--c:var(--pass)}.FAIL{--c:var(--fail)}.WARN{--c:var(--warn)}.ERROR{--c:var(--error)}.SKIP{--c:var(--skip)}.MANUAL{--c:var(--manual)}
.badge{background:var(--c,#59636e)}
tr.check td:first-child{border-left:4px solid var(--c)}
tr.check.FAIL{background:#fff5f5}tr.check.WARN{background:#fffbeb}tr.check.ERROR{background:#fbf7ff}tr.check.MANUAL{background:#f4f9ff}
tr.area th{background:#f6f8fa;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.scroll{overflow-x:auto}
table.stores td:first-child{word-break:break-word;min-width:180px}
table.checks td:first-child{width:1%;white-space:nowrap}
table.checks td:nth-child(2){width:34%}
.title{font-weight:600}
.sub{color:var(--muted);font-size:12px}
.verdict{border-left:6px solid;border-radius:6px;padding:10px 14px;margin:8px 0 12px;font-weight:600}
.verdict.would-fail{border-color:var(--fail);background:#ffebe9}
.verdict.incomplete{border-color:var(--error);background:#fbefff}
.verdict.no-failure{border-color:var(--pass);background:#dafbe1}
.outlook.would-fail{--c:var(--fail)}.outlook.incomplete{--c:var(--error)}.outlook.no-failure{--c:var(--pass)}
dl.target{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.target dt{color:var(--muted)}dl.target dd{margin:0;word-break:break-word}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:6px 0 0;padding:0;list-style:none}
.legend li::before{content:"";display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;background:var(--c)}
details{margin-top:4px}
summary{cursor:pointer;color:#0969da;font-size:12px}
details ul{margin:4px 0;padding-left:20px}
.kv{margin:4px 0}
.kv b{font-weight:600}
.diagnosis{border-left:6px solid var(--manual);background:#f4f9ff;border-radius:6px;padding:10px 14px}
.diagnosis ol{margin:4px 0}
svg text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#1f2328}
svg .muted{fill:#59636e}
footer{color:var(--muted);font-size:12px;margin:24px 0}
@media print{body{background:#fff}main{max-width:none;padding:0}.card{border:none;padding:0}section.store{break-before:page}}
"#;

/// The counts as one stacked horizontal bar (stretches to the width of its box).
fn summary_bar(s: &Summary, height: u32) -> String {
    let total: usize = STATUSES.iter().map(|(st, _, _)| count(s, *st)).sum();
    let words: Vec<String> = STATUSES
        .iter()
        .map(|(st, _, w)| format!("{} {w}", count(s, *st)))
        .collect();
    let mut out = format!(
        r#"<svg role="img" aria-label="{}" viewBox="0 0 1000 {height}" width="100%" height="{height}" preserveAspectRatio="none">"#,
        html_escape(&words.join(", "))
    );
    if total == 0 {
        let _ = write!(
            out,
            r##"<rect x="0" y="0" width="1000" height="{height}" fill="#e1e4e8"/>"##
        );
    }
    let mut x = 0.0;
    for (st, colour, w) in STATUSES {
        let n = count(s, st);
        if n == 0 {
            continue;
        }
        let width = 1000.0 * n as f64 / total as f64;
        let _ = write!(
            out,
            r#"<rect class="{}" x="{x:.2}" y="0" width="{width:.2}" height="{height}" fill="{colour}"><title>{n} {w}</title></rect>"#,
            st.as_str()
        );
        x += width;
    }
    out.push_str("</svg>");
    out
}

fn legend(s: &Summary) -> String {
    let mut out = String::from(r#"<ul class="legend">"#);
    for (st, _, w) in STATUSES {
        let _ = write!(
            out,
            r#"<li class="{}"><b>{}</b> {w}</li>"#,
            st.as_str(),
            count(s, st)
        );
    }
    out.push_str("</ul>");
    out
}

fn total(reports: &[Report]) -> Summary {
    let mut t = Summary::default();
    for r in reports {
        let s = &r.summary;
        t.pass += s.pass;
        t.fail += s.fail;
        t.warn += s.warn;
        t.error += s.error;
        t.skip += s.skip;
        t.manual += s.manual;
    }
    t
}

fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn render(reports: &[Report]) -> String {
    render_at(reports, OffsetDateTime::now_utc())
}

/// [`render`] with a given generation time.
pub fn render_at(reports: &[Report], generated: OffsetDateTime) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let title = match reports {
        [one] => format!("cks-doctor report: {}", store_label(one)),
        _ => format!("cks-doctor report: {} key stores", reports.len()),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"cks-doctor {version}\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        html_escape(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", html_escape(&title));
    let _ = writeln!(
        out,
        "<p class=\"meta\">Generated <time>{}</time> by cks-doctor {version} · {} key store(s)</p>",
        utc(generated),
        reports.len()
    );
    // Summary: the totals as a bar, then one row per store.
    let t = total(reports);
    let _ = writeln!(
        out,
        "<section class=\"card summary\" aria-labelledby=\"summary\">\n<h2 id=\"summary\">Summary</h2>\n{}\n{}",
        summary_bar(&t, 28),
        legend(&t)
    );
    let _ = writeln!(
        out,
        "<div class=\"scroll\"><table class=\"stores\">\n<thead><tr><th>Store</th><th>Kind</th><th>State</th><th>Verdict</th>\
         <th class=\"PASS\">Pass</th><th class=\"FAIL\">Fail</th><th class=\"WARN\">Warn</th>\
         <th class=\"ERROR\">Could not check</th><th class=\"SKIP\">Skip</th><th class=\"MANUAL\">Manual</th>\
         <th>Checks</th></tr></thead>\n<tbody>"
    );
    for (i, r) in reports.iter().enumerate() {
        let state = r
            .diagnosis
            .as_ref()
            .map(|d| match &d.connection_error_code {
                // Long codes may wrap after an underscore.
                Some(c) => format!(
                    "{}<div class=\"sub\">{}</div>",
                    html_escape(&d.connection_state),
                    html_escape(c).replace('_', "_<wbr>")
                ),
                None => html_escape(&d.connection_state),
            })
            .unwrap_or_else(|| "—".into());
        let _ = write!(
            out,
            "<tr><td><a href=\"#store-{}\">{}</a></td><td>{}</td><td>{state}</td>\
             <td><span class=\"badge outlook {}\">{}</span></td>",
            i + 1,
            html_escape(&store_label(r)),
            html_escape(r.target.kind.as_str()),
            outlook_class(r.verdict.outlook),
            outlook_label(r.verdict.outlook)
        );
        for (st, _, _) in STATUSES {
            let _ = write!(out, "<td class=\"n\">{}</td>", count(&r.summary, st));
        }
        let _ = writeln!(
            out,
            "<td style=\"min-width:140px\">{}</td></tr>",
            summary_bar(&r.summary, 14)
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
    for (i, r) in reports.iter().enumerate() {
        render_store(&mut out, i + 1, r);
    }
    let _ = write!(
        out,
        "<footer>cks-doctor {version}. Statuses: PASS the prerequisite holds; FAIL KMS would fail \
         with the exception or connection error code shown; WARN it holds but is risky; could not \
         check (ERROR) a fact could not be read, never a pass; SKIP not applicable or blocked by a \
         failure; MANUAL needs a human. Secrets (the kmsuser password, the XKS secret access key) \
         are never part of a report.</footer>\n</main>\n</body>\n</html>\n"
    );
    out
}

fn render_store(out: &mut String, n: usize, r: &Report) {
    let s = &r.summary;
    let t = &r.target;
    let _ = write!(out, "<section class=\"card store\" id=\"store-{n}\"");
    for (st, _, _) in STATUSES {
        let _ = write!(
            out,
            " data-{}=\"{}\"",
            st.as_str().to_lowercase(),
            count(s, st)
        );
    }
    let _ = writeln!(out, ">");
    let _ = writeln!(
        out,
        "<h2>{} <span class=\"badge outlook {}\">{}</span></h2>",
        html_escape(&store_label(r)),
        outlook_class(r.verdict.outlook),
        outlook_label(r.verdict.outlook)
    );
    let _ = writeln!(
        out,
        "<p class=\"verdict {}\">{}</p>",
        outlook_class(r.verdict.outlook),
        html_escape(&r.verdict.text)
    );
    out.push_str("<dl class=\"target\">");
    let mut rows: Vec<(&str, String)> = vec![
        ("Kind", t.kind.to_string()),
        ("Operation", t.operation.clone()),
    ];
    for (k, v) in [
        ("Key store name", &t.custom_key_store_name),
        ("CloudHSM cluster", &t.cloud_hsm_cluster_id),
        ("Trust anchor", &t.trust_anchor),
        ("XKS proxy endpoint", &t.xks_proxy_uri_endpoint),
        ("XKS proxy path", &t.xks_proxy_uri_path),
        ("Connectivity", &t.xks_proxy_connectivity),
        ("Reached at (--connect-to)", &t.connect_to),
        ("Region", &t.region),
    ] {
        if let Some(v) = v {
            rows.push((k, v.clone()));
        }
    }
    rows.push(("Facts from", t.source.clone()));
    if r.tool.version != env!("CARGO_PKG_VERSION") {
        rows.push(("Checked by", format!("{} {}", r.tool.name, r.tool.version)));
    }
    for (k, v) in rows {
        let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", html_escape(&v));
    }
    out.push_str("</dl>\n");
    let _ = writeln!(out, "{}\n{}", summary_bar(s, 18), legend(s));
    if let Some(d) = &r.diagnosis {
        render_diagnosis(out, d);
    }
    if let Some(l) = &r.latency {
        render_latency(out, l);
    }
    let _ = writeln!(
        out,
        "<h3>Checks</h3>\n<table class=\"checks\">\n<thead><tr><th>Status</th><th>Check</th><th>Result</th></tr></thead>\n<tbody>"
    );
    let mut areas: Vec<&str> = AREAS.to_vec();
    for c in &r.checks {
        if !areas.contains(&c.area.as_str()) {
            areas.push(&c.area);
        }
    }
    for area in areas {
        let in_area: Vec<&CheckResult> = r.checks.iter().filter(|c| c.area == area).collect();
        if in_area.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<tr class=\"area\"><th colspan=\"3\">{}</th></tr>",
            html_escape(area)
        );
        for c in in_area {
            render_check(out, c);
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn names<S: AsRef<str>>(list: &[S]) -> String {
    list.iter()
        .map(|n| format!("<code>{}</code>", html_escape(n.as_ref())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_check(out: &mut String, c: &CheckResult) {
    let st = c.status.as_str();
    let label = match c.status {
        Status::Error => "COULD NOT CHECK",
        _ => st,
    };
    let severity = c
        .severity
        .map(|s| format!(" · {}", format!("{s:?}").to_lowercase()))
        .unwrap_or_default();
    let advisory = if c.advisory { " · advisory" } else { "" };
    // The framework requirements the check supports (compliance/*.json).
    let requirements = crate::compliance::for_check(&c.id);
    let compliance = if requirements.is_empty() {
        String::new()
    } else {
        let labels: Vec<String> = requirements.iter().map(|r| r.label()).collect();
        format!(
            "<div class=\"sub compliance\">Compliance: {}</div>",
            html_escape(&labels.join(", "))
        )
    };
    let _ = write!(
        out,
        "<tr class=\"check {st}\"><td><span class=\"badge {st}\">{label}</span></td>\
         <td><div class=\"title\">{}</div><div class=\"sub\"><code>{}</code>{severity}{advisory}</div>{compliance}</td>\
         <td><div class=\"message\">{}</div>",
        html_escape(&c.title),
        html_escape(&c.id),
        html_escape(&c.message)
    );
    let meta = crate::meta::get(&c.id);
    let open = if c.status == Status::Fail {
        " open"
    } else {
        ""
    };
    let summary = match c.status {
        Status::Pass | Status::Skip => "Details",
        _ => "Evidence and fix",
    };
    let _ = write!(out, "<details{open}><summary>{summary}</summary>");
    if !c.evidence.is_empty() {
        out.push_str("<div class=\"kv\"><b>Evidence</b><ul>");
        for e in &c.evidence {
            let _ = write!(out, "<li>{}</li>", html_escape(e));
        }
        out.push_str("</ul></div>");
    }
    let predicts = matches!(c.status, Status::Fail | Status::Warn);
    let verb = if predicts {
        "KMS would fail with"
    } else {
        "Guards against"
    };
    if !c.kms_exceptions.is_empty() {
        let _ = write!(
            out,
            "<div class=\"kv\"><b>{verb}:</b> {}</div>",
            names(&c.kms_exceptions)
        );
    }
    if !c.connection_error_codes.is_empty() {
        let _ = write!(
            out,
            "<div class=\"kv\"><b>ConnectionErrorCode{}:</b> {}</div>",
            if predicts { "" } else { " (once created)" },
            names(&c.connection_error_codes)
        );
    }
    for n in &c.mapping_notes {
        let _ = write!(
            out,
            "<div class=\"kv\"><b>Mapping:</b> {}</div>",
            html_escape(&n.line())
        );
    }
    for r in &requirements {
        let _ = write!(
            out,
            "<div class=\"kv\"><b>{}:</b> {} ({}: {})</div>",
            html_escape(&r.label()),
            html_escape(&r.mapping.title),
            r.mapping.basis.label(),
            html_escape(&r.mapping.note)
        );
    }
    if let Some(fix) = &c.remediation {
        let _ = write!(
            out,
            "<div class=\"kv\"><b>Remediation:</b> {}</div>",
            with_code(fix)
        );
    }
    if let Some(m) = meta {
        let links: Vec<&String> = m
            .references
            .iter()
            .filter(|u| u.starts_with("https://") && !u.contains(char::is_whitespace))
            .collect();
        if !links.is_empty() {
            out.push_str("<div class=\"kv\"><b>References</b><ul>");
            for u in links {
                let u = html_escape(u);
                let _ = write!(out, "<li><a href=\"{u}\" rel=\"noreferrer\">{u}</a></li>");
            }
            out.push_str("</ul></div>");
        }
    }
    let _ = writeln!(
        out,
        "<div class=\"sub\">{} ms · <code>cks-doctor explain {}</code></div></details></td></tr>",
        c.duration_ms,
        html_escape(&c.id)
    );
}

fn render_diagnosis(out: &mut String, d: &crate::diagnose::Diagnosis) {
    out.push_str("<h3>Diagnosis</h3>\n<div class=\"diagnosis\">");
    let state = match &d.connection_error_code {
        Some(c) => format!(
            "{} with <code>{}</code>",
            html_escape(&d.connection_state),
            html_escape(c)
        ),
        None => html_escape(&d.connection_state),
    };
    let _ = write!(
        out,
        "<p><b>{}</b> ({}, {}) is <b>{state}</b>.</p>",
        html_escape(&d.custom_key_store_id),
        html_escape(&d.custom_key_store_name),
        html_escape(&d.custom_key_store_type)
    );
    if !d.meaning.is_empty() {
        let _ = write!(out, "<p class=\"sub\">{}</p>", html_escape(&d.meaning));
    }
    for (title, ids) in [
        ("Confirmed by", &d.confirmed_by),
        ("Ruled out", &d.ruled_out),
        ("Pass from here, not ruled out", &d.not_ruled_out),
        ("Could not check", &d.not_checked),
        ("Other failures", &d.other_failures),
    ] {
        if !ids.is_empty() {
            let _ = write!(
                out,
                "<div class=\"kv\"><b>{title}:</b> {}</div>",
                names(ids)
            );
        }
    }
    if !d.recovery.is_empty() {
        out.push_str("<div class=\"kv\"><b>Recovery</b><ol>");
        for step in &d.recovery {
            let _ = write!(out, "<li>{}</li>", with_code(step));
        }
        out.push_str("</ol></div>");
    }
    let _ = writeln!(out, "<p><b>{}</b></p></div>", html_escape(&d.text));
}

/// A round step for the latency axis: at most about 8 gridlines.
fn step(max: f64) -> f64 {
    for s in [
        5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    ] {
        if max / s <= 8.0 {
            return s;
        }
    }
    10000.0
}

/// The fresh connection's phases as a waterfall against KMS's budget: TCP connect, TLS and
/// the first byte one after the other, the total from the start of the connection (what the
/// budget covers), DNS before it all.
pub fn latency_svg(l: &Latency) -> String {
    let connect_end = l.connect_ms.unwrap_or(0.0);
    let tls_end = connect_end + l.tls_ms.unwrap_or(0.0);
    let over = l.total_ms.is_some_and(|t| t > l.budget_ms);
    let rows: [(&str, f64, Option<f64>, &str); 5] = [
        ("DNS (before)", 0.0, l.dns_ms, "#8c959f"),
        ("TCP connect", 0.0, l.connect_ms, "#54aeff"),
        ("TLS handshake", connect_end, l.tls_ms, "#0969da"),
        ("First byte", tls_end, l.first_byte_ms, "#8250df"),
        (
            "Total",
            0.0,
            l.total_ms,
            if over { "#cf222e" } else { "#1a7f37" },
        ),
    ];
    let max_end = rows
        .iter()
        .filter_map(|(_, start, v, _)| v.map(|v| start + v))
        .fold(0.0_f64, f64::max);
    let scale_max = (l.budget_ms * 1.2).max(max_end * 1.08).max(1.0);
    let (left, plot, right, top, row_h) = (120.0, 540.0, 90.0, 26.0, 28.0);
    let width = left + plot + right;
    let height = top + row_h * rows.len() as f64 + 22.0;
    let x = |ms: f64| left + plot * (ms / scale_max);
    let mut out = format!(
        r#"<svg class="latency" role="img" aria-label="Latency phases against the {:.0} ms budget" viewBox="0 0 {width} {height}" width="{width}" height="{height}" style="max-width:100%;height:auto">"#,
        l.budget_ms
    );
    // Gridlines and axis labels.
    let step = step(scale_max);
    let axis_y = top + row_h * rows.len() as f64;
    let mut g = 0.0;
    while g <= scale_max + 0.001 {
        let gx = x(g);
        let _ = write!(
            out,
            r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{axis_y}" stroke="#e1e4e8"/><text class="muted" x="{gx:.1}" y="{:.1}" text-anchor="middle">{g:.0}</text>"##,
            axis_y + 16.0
        );
        g += step;
    }
    let _ = write!(
        out,
        r#"<text class="muted" x="{:.1}" y="{:.1}" text-anchor="end">ms</text>"#,
        width - 4.0,
        axis_y + 16.0
    );
    for (i, (name, start, v, colour)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{name}</text>"#,
            left - 8.0,
            y + row_h / 2.0 + 4.0
        );
        match v {
            Some(ms) => {
                let bx = x(*start);
                let bw = (x(start + ms) - bx).max(1.5);
                let _ = write!(
                    out,
                    r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" rx="2" fill="{colour}"><title>{name}: {ms:.1} ms</title></rect><text x="{:.1}" y="{:.1}">{ms:.1} ms</text>"#,
                    y + 5.0,
                    row_h - 10.0,
                    bx + bw + 6.0,
                    y + row_h / 2.0 + 4.0
                );
            }
            None => {
                let _ = write!(
                    out,
                    r#"<text class="muted" x="{:.1}" y="{:.1}">not measured</text>"#,
                    left + 4.0,
                    y + row_h / 2.0 + 4.0
                );
            }
        }
    }
    // KMS's budget, over the bars.
    let bx = x(l.budget_ms);
    let _ = write!(
        out,
        r##"<line x1="{bx:.1}" y1="{:.1}" x2="{bx:.1}" y2="{axis_y}" stroke="#cf222e" stroke-width="2" stroke-dasharray="6 4"/><text x="{bx:.1}" y="14" text-anchor="middle" fill="#cf222e" style="fill:#cf222e;font-weight:600">{:.0} ms budget</text>"##,
        top - 6.0,
        l.budget_ms
    );
    out.push_str("</svg>");
    out
}

fn render_latency(out: &mut String, l: &Latency) {
    let _ = writeln!(
        out,
        "<h3>Latency against KMS's {:.0} ms budget</h3>\n{}",
        l.budget_ms,
        latency_svg(l)
    );
    let mut notes = vec![format!(
        "Fresh connection, measured from {}",
        html_escape(&l.measured_from)
    )];
    if let (Some(v), Some(c)) = (&l.tls_version, &l.cipher_suite) {
        notes.push(format!(
            "<code>{}</code>, <code>{}</code>",
            html_escape(v),
            html_escape(c)
        ));
    }
    notes.push(format!("{} TLS handshake(s) in all", l.handshakes));
    let _ = writeln!(out, "<p class=\"sub\">{}.</p>", notes.join("; "));
}
