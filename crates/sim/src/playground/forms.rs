//! The playground's forms: the interactive dialog as Mattermost shows it, and the Teleport
//! panel (a new access request, and each request's card with its reviews and plugin data).

use std::fmt::Write;

use serde_json::Value;
use time::macros::format_description;

use super::cluster::{self, Card};
use super::html::{View, esc, markdown_block, str_of, view_fields};
use super::{Actor, DialogErrors, Play};
use crate::mattermost::OpenedDialog;

/// The newest dialog opened for this user by a click or command made here, if still open.
pub(crate) fn open_dialog(play: &Play, me: &Actor) -> Option<(OpenedDialog, DialogErrors)> {
    let dialogs = play.dialogs();
    play.mm
        .dialogs()
        .into_iter()
        .rev()
        .find(|d| {
            d.user_id == me.mattermost_id
                && dialogs.ours.contains(&d.trigger_id)
                && !dialogs.closed.contains(&d.trigger_id)
        })
        .map(|d| {
            let errors = dialogs
                .errors
                .get(&d.trigger_id)
                .cloned()
                .unwrap_or_default();
            (d, errors)
        })
}

pub(crate) fn dialog(play: &Play, v: &View) -> String {
    let Some((d, errors)) = open_dialog(play, v.me) else {
        return String::new();
    };
    let spec = &d.dialog;
    let mut out = format!(
        r#"<div class="modal-back"><form class="modal" id="dialog-form" method="post" action="/mm/dialog">{}<input type="hidden" name="trigger" value="{}"><h3>{}</h3>"#,
        view_fields(v),
        esc(&d.trigger_id),
        esc(str_of(spec, "title")),
    );
    out.push_str(&markdown_block("intro", str_of(spec, "introduction_text")));
    if !errors.error.is_empty() {
        let _ = write!(
            out,
            r#"<div class="dialog-error">{}</div>"#,
            esc(&errors.error)
        );
    }
    for e in spec
        .get("elements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&element(e, errors.fields.get(str_of(e, "name"))));
    }
    let submit = match str_of(spec, "submit_label") {
        "" => "Submit",
        label => label,
    };
    // The submit button comes first, so Enter in a text field submits rather than cancels;
    // the footer's CSS puts Cancel on the left.
    let _ = write!(
        out,
        r#"<div class="modal-foot"><button class="btn btn-primary" id="dialog-submit" type="submit">{}</button><button class="btn" id="dialog-cancel" type="submit" name="cancel" value="1" formnovalidate>Cancel</button></div></form></div>"#,
        esc(submit)
    );
    out
}

/// One dialog input, named `el.<name>` in the form.
fn element(e: &Value, error: Option<&String>) -> String {
    let name = format!("el.{}", str_of(e, "name"));
    let optional = e.get("optional").and_then(Value::as_bool).unwrap_or(false);
    let required = if optional { "" } else { " required" };
    let default = str_of(e, "default");
    let placeholder = esc(str_of(e, "placeholder"));
    let limits = ["min_length", "max_length"]
        .iter()
        .zip(["minlength", "maxlength"])
        .filter_map(|(k, attr)| {
            e.get(*k)
                .and_then(Value::as_u64)
                .map(|n| format!(r#" {attr}="{n}""#))
        })
        .collect::<String>();
    let id = format!("dialog-{}", str_of(e, "name"));
    let input = match str_of(e, "type") {
        "textarea" => format!(
            r#"<textarea id="{id}" name="{name}" placeholder="{placeholder}"{required}{limits}>{}</textarea>"#,
            esc(default),
            id = esc(&id),
            name = esc(&name),
        ),
        "bool" => format!(
            r#"<input id="{id}" type="checkbox" name="{name}" value="true"{}>"#,
            if default == "true" { " checked" } else { "" },
            id = esc(&id),
            name = esc(&name),
        ),
        kind @ ("select" | "radio") => {
            let options = e.get("options").and_then(Value::as_array);
            let mut html = if kind == "select" {
                format!(
                    r#"<select id="{}" name="{}"{required}><option value=""></option>"#,
                    esc(&id),
                    esc(&name)
                )
            } else {
                String::new()
            };
            for o in options.into_iter().flatten() {
                let value = str_of(o, "value");
                let chosen = value == default;
                if kind == "select" {
                    let _ = write!(
                        html,
                        r#"<option value="{}"{}>{}</option>"#,
                        esc(value),
                        if chosen { " selected" } else { "" },
                        esc(str_of(o, "text"))
                    );
                } else {
                    let _ = write!(
                        html,
                        r#"<label class="radio"><input type="radio" name="{}" value="{}"{}{required}> {}</label>"#,
                        esc(&name),
                        esc(value),
                        if chosen { " checked" } else { "" },
                        esc(str_of(o, "text"))
                    );
                }
            }
            if kind == "select" {
                html.push_str("</select>");
            }
            html
        }
        _ => format!(
            r#"<input id="{id}" type="text" name="{name}" value="{}" placeholder="{placeholder}"{required}{limits}>"#,
            esc(default),
            id = esc(&id),
            name = esc(&name),
        ),
    };
    format!(
        r#"<div class="el"><label for="{id}">{label}{opt}</label>{input}{help}{error}</div>"#,
        id = esc(&id),
        label = esc(str_of(e, "display_name")),
        opt = if optional {
            r#" <span class="opt">(optional)</span>"#
        } else {
            ""
        },
        help = markdown_block("help", str_of(e, "help_text")),
        error = error
            .map(|m| format!(r#"<div class="field-error">{}</div>"#, esc(m)))
            .unwrap_or_default(),
    )
}

pub(crate) fn create_form(play: &Play, v: &View) -> String {
    let default_user =
        v.me.teleport_user
            .clone()
            .or_else(|| play.actors.iter().find_map(|a| a.teleport_user.clone()))
            .unwrap_or_default();
    let mut known = String::new();
    let mut reviewers = String::new();
    for t in play
        .actors
        .iter()
        .filter_map(|a| a.teleport_user.as_deref())
    {
        let _ = write!(known, r#"<option value="{}">"#, esc(t));
        if t != default_user {
            let _ = write!(
                reviewers,
                r#"<label class="check"><input type="checkbox" name="reviewer" value="{t}"> {t}</label>"#,
                t = esc(t)
            );
        }
    }
    format!(
        r#"<form id="create" class="create" method="post" action="/tp/create">{fields}
<h3>New access request</h3>
<label>User <input id="create-user" name="user" list="tp-users" value="{user}" required></label>
<datalist id="tp-users">{known}</datalist>
<label>Roles <input id="create-roles" name="roles" value="{role}" required></label>
<label class="wide">Reason <input id="create-reason" name="reason" placeholder="Why is the access needed?"></label>
<div class="wide reviewers">Suggested reviewers {reviewers}</div>
<label>Approvals needed <input id="create-approve" name="approve" type="number" min="1" max="5" value="1"></label>
<label>Denials needed <input id="create-deny" name="deny" type="number" min="1" max="5" value="1"></label>
<button class="btn btn-primary wide" id="create-request" type="submit">Create request</button>
</form>"#,
        fields = view_fields(v),
        user = esc(&default_user),
        role = esc(crate::teleport::fixtures::REQUESTED_ROLE),
    )
}

pub(crate) fn requests(v: &View, cards: &[Card]) -> String {
    if cards.is_empty() {
        return r#"<div class="empty">No access requests.</div>"#.into();
    }
    let mut out = String::new();
    for c in cards {
        let state = c.state.to_ascii_lowercase();
        let _ = write!(
            out,
            r#"<div class="req {state}" id="req-{id}" data-request-id="{id}"><div class="req-head"><code title="{id}">{short}</code><span class="badge {state}">{label}</span><time>{time}</time></div>
<div><b>{user}</b> asks for {roles}</div>"#,
            id = esc(&c.id),
            short = esc(c.id.get(..8).unwrap_or(&c.id)),
            label = esc(c.state),
            time = c
                .created
                .and_then(|t| t
                    .format(format_description!("[hour]:[minute]:[second] UTC"))
                    .ok())
                .unwrap_or_default(),
            user = esc(&c.user),
            roles = c
                .roles
                .iter()
                .map(|r| format!("<code>{}</code>", esc(r)))
                .collect::<Vec<_>>()
                .join(" "),
        );
        let mut facts: Vec<(&str, String)> = Vec::new();
        if !c.reason.is_empty() {
            facts.push(("Reason", esc(&c.reason)));
        }
        if !c.suggested_reviewers.is_empty() {
            facts.push((
                "Suggested reviewers",
                esc(&c.suggested_reviewers.join(", ")),
            ));
        }
        let thresholds = c
            .thresholds
            .iter()
            .map(|(a, d)| format!("{a} approval(s) or {d} denial(s)"))
            .collect::<Vec<_>>()
            .join("; ");
        facts.push(("Needs", thresholds));
        if !c.resolve_reason.is_empty() {
            facts.push(("Resolution reason", esc(&c.resolve_reason)));
        }
        out.push_str("<dl class=\"facts\">");
        for (k, val) in facts {
            let _ = write!(out, "<dt>{k}</dt><dd>{val}</dd>");
        }
        out.push_str("</dl>");
        if !c.reviews.is_empty() {
            out.push_str(r#"<table class="reviews"><tr><th>Review by</th><th>Submitted by</th><th>Verdict</th><th>Reason</th></tr>"#);
            for r in &c.reviews {
                let by = if r.submitted_by.is_empty() {
                    "—".to_string()
                } else if r.on_behalf {
                    format!("{} (on behalf)", r.submitted_by)
                } else {
                    r.submitted_by.clone()
                };
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.author),
                    esc(&by),
                    esc(r.verdict),
                    esc(&r.reason)
                );
            }
            out.push_str("</table>");
        }
        let _ = write!(
            out,
            r#"<details class="plugin-data" open><summary>Plugin data <code>{}</code>: the service's only state</summary>"#,
            cluster::PLUGIN
        );
        if c.plugin_data.is_empty() {
            out.push_str(r#"<div class="empty">none yet</div>"#);
        } else {
            out.push_str("<dl>");
            for (k, val) in &c.plugin_data {
                let _ = write!(out, "<dt>{}</dt><dd><code>{}</code></dd>", esc(k), esc(val));
            }
            out.push_str("</dl>");
        }
        out.push_str("</details>");
        let _ = write!(out, r#"<div class="admin">"#);
        if c.state == "PENDING" {
            let _ = write!(
                out,
                r#"<form method="post" action="/tp/resolve">{fields}<input type="hidden" name="id" value="{id}"><input name="reason" placeholder="Reason (as admin)"><button class="btn btn-success" name="verdict" value="approve" type="submit">Approve</button><button class="btn btn-danger" name="verdict" value="deny" type="submit">Deny</button></form>"#,
                fields = view_fields(v),
                id = esc(&c.id)
            );
        }
        let _ = write!(
            out,
            r#"<form method="post" action="/tp/delete">{fields}<input type="hidden" name="id" value="{id}"><button class="btn" type="submit" title="What Teleport does when a request expires">Delete</button></form></div></div>"#,
            fields = view_fields(v),
            id = esc(&c.id)
        );
    }
    out
}
