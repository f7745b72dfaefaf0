//! The page, rendered on the server: the Mattermost side (users, channels, posts, the dialog,
//! the message box) and the Teleport panel. Regions with an `id` in [`LIVE`] are refreshed in
//! place by the page's script; everything user-supplied goes through [`esc`] or the Markdown
//! renderer.

use std::fmt::Write;

use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

use super::cluster::{self};
use super::markdown;
use super::{Actor, Play};
use crate::mattermost::{EphemeralPost, SimChannel, SimPost};

use super::forms::{create_form, dialog, requests};

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

/// The page as one user sees it, in one channel.
pub(crate) struct View<'a> {
    pub me: &'a Actor,
    pub channel: SimChannel,
    pub note: Option<String>,
}

/// Escapes text for HTML content and double-quoted attributes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `?as=<user>&ch=<channel>` (and a note), the page's own address for one view.
pub(crate) fn href(user: &str, channel: &str, note: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("as", user).append_pair("ch", channel);
    if let Some(n) = note {
        q.append_pair("note", n);
    }
    format!("/?{}", q.finish())
}

/// The hidden fields every form carries, so the answer comes back to the same view.
pub(crate) fn view_fields(v: &View) -> String {
    format!(
        r#"<input type="hidden" name="as" value="{}"><input type="hidden" name="ch" value="{}">"#,
        esc(&v.me.username),
        esc(&v.channel.id)
    )
}

pub(crate) fn page(play: &Play, v: &View) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>teleport-mattermost playground</title><style>{STYLE}</style></head><body>
<header class="top"><span class="brand">teleport-mattermost <b>playground</b></span>
<span class="tag">Try it: create a request on the right, act as @reviewer1, click Approve and give a reason, then act as @requester and open the DM. The real service sits in between.</span>
<nav class="users" aria-label="Act as">Act as {users}</nav></header>
<div id="note" class="note{note_class}">{note}</div>
<main>
<section class="mm" aria-label="Mattermost">
<aside id="sidebar">{sidebar}</aside>
<div class="channel">
<div class="channel-head">{channel_title}</div>
<div id="posts" class="posts">{posts}</div>
<form id="message-box" class="box" method="post" action="/mm/message">{fields}
<input id="message" name="text" autocomplete="off" placeholder="Write to {channel_title}, or type /teleport help">
<button class="btn btn-primary" type="submit">Send</button></form>
</div>
</section>
<section class="tp" aria-label="Teleport">
<h2>Teleport <span class="sub">admin view of the simulated cluster</span></h2>
{create}
<div id="requests">{requests}</div>
</section>
</main>
<div id="dialog">{dialog}</div>
<script>{SCRIPT}</script></body></html>"#,
        users = users(play, v),
        note_class = if v.note.is_some() { " on" } else { "" },
        note = v.note.as_deref().map(esc).unwrap_or_default(),
        sidebar = sidebar(play, v),
        channel_title = esc(&channel_title(play, v.me, &v.channel)),
        posts = posts(play, v),
        fields = view_fields(v),
        create = create_form(play, v),
        requests = requests(v, &cluster::cards(&play.tp)),
        dialog = dialog(play, v),
    );
    out
}

fn users(play: &Play, v: &View) -> String {
    let mut out = String::new();
    for a in &play.actors {
        let class = if a.username == v.me.username {
            "user on"
        } else {
            "user"
        };
        let linked = match &a.teleport_user {
            Some(t) => format!("Teleport user {t}"),
            None => "not linked to any Teleport user".into(),
        };
        let _ = write!(
            out,
            r#"<a class="{class}" id="as-{name}" title="{linked}" href="{href}">@{name}</a>"#,
            name = esc(&a.username),
            linked = esc(&linked),
            href = esc(&href(&a.username, &v.channel.id, None)),
        );
    }
    out
}

/// `~name` for team channels, `@other` for a DM.
fn channel_title(play: &Play, me: &Actor, c: &SimChannel) -> String {
    if c.kind != "D" {
        return format!("~{}", c.name);
    }
    let other = c
        .name
        .split("__")
        .find(|id| *id != me.mattermost_id)
        .unwrap_or(&me.mattermost_id);
    let name = play
        .mm
        .user(other)
        .map_or_else(|| other.to_string(), |u| u.username);
    format!("@{name}")
}

fn sidebar(play: &Play, v: &View) -> String {
    let channels = play.mm.channels_of(&v.me.mattermost_id);
    let mut out =
        String::from(r#"<div class="team">Mattermost <span class="sim">simulated</span></div>"#);
    for (title, direct) in [("Channels", false), ("Direct messages", true)] {
        let _ = write!(out, r#"<div class="section">{title}</div>"#);
        for c in channels.iter().filter(|c| (c.kind == "D") == direct) {
            let name = channel_title(play, v.me, c);
            let class = if c.id == v.channel.id {
                "chan on"
            } else {
                "chan"
            };
            let count = play.mm.posts_in(&c.id).len();
            let _ = write!(
                out,
                r#"<a class="{class}" data-channel="{slug}" href="{href}">{name}<span class="count">{count}</span></a>"#,
                slug = esc(name.trim_start_matches(['~', '@'])),
                href = esc(&href(&v.me.username, &c.id, None)),
                name = esc(&name),
            );
        }
    }
    out
}

/// A post or an ephemeral message, placed by time.
enum Item<'a> {
    Post(&'a SimPost),
    OnlyYou(&'a EphemeralPost),
}

impl Item<'_> {
    fn at(&self) -> i64 {
        match self {
            Item::Post(p) => p.create_at,
            Item::OnlyYou(e) => e.create_at,
        }
    }
}

/// The channel as Mattermost shows it, oldest first: each root with its thread under it, and
/// the ephemeral messages of this user where they were shown.
fn posts(play: &Play, v: &View) -> String {
    let all = play.mm.posts_in(&v.channel.id);
    let mine: Vec<EphemeralPost> = play
        .mm
        .ephemeral_posts()
        .into_iter()
        .filter(|e| e.user_id == v.me.mattermost_id && e.channel_id == v.channel.id)
        .collect();
    let live = |p: &&SimPost| p.delete_at == 0;
    let roots: Vec<&SimPost> = all
        .iter()
        .filter(live)
        .filter(|p| p.root_id.is_empty())
        .collect();
    let in_thread = |root: &str| -> Vec<Item> {
        let mut items: Vec<Item> = all
            .iter()
            .filter(live)
            .filter(|p| p.root_id == root)
            .map(Item::Post)
            .chain(mine.iter().filter(|e| e.root_id == root).map(Item::OnlyYou))
            .collect();
        items.sort_by_key(Item::at);
        items
    };
    let mut top: Vec<Item> = roots.iter().map(|r| Item::Post(r)).collect();
    top.extend(
        mine.iter()
            .filter(|e| !roots.iter().any(|r| r.id == e.root_id))
            .map(Item::OnlyYou),
    );
    top.sort_by_key(Item::at);
    if top.is_empty() {
        return r#"<div class="empty">No posts yet.</div>"#.into();
    }
    let mut out = String::new();
    for item in top {
        let root = match item {
            Item::OnlyYou(e) => {
                out.push_str(&ephemeral(play, e));
                continue;
            }
            Item::Post(root) => root,
        };
        out.push_str(r#"<div class="thread">"#);
        out.push_str(&post(play, v, root, ""));
        let thread = in_thread(&root.id);
        if !thread.is_empty() {
            out.push_str(r#"<div class="replies">"#);
            for item in thread {
                out.push_str(&match item {
                    Item::Post(p) => post(play, v, p, "reply"),
                    Item::OnlyYou(e) => ephemeral(play, e),
                });
            }
            out.push_str("</div>");
        }
        out.push_str("</div>");
    }
    out
}

fn clock(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(format_description!("[hour]:[minute]:[second] UTC"))
                .ok()
        })
        .unwrap_or_default()
}

fn author(play: &Play, user_id: &str) -> (String, bool) {
    play.mm
        .user(user_id)
        .map_or_else(|| (user_id.to_string(), false), |u| (u.username, u.is_bot))
}

fn avatar(name: &str, bot: bool) -> String {
    let initial = name.chars().next().unwrap_or('?').to_ascii_uppercase();
    let class = if bot { "avatar bot" } else { "avatar" };
    format!(
        r#"<div class="{class}">{}</div>"#,
        esc(&initial.to_string())
    )
}

fn post(play: &Play, v: &View, p: &SimPost, class: &str) -> String {
    let (name, bot) = author(play, &p.user_id);
    let edited = if p.edit_at > 0 {
        r#" <span class="edited">(edited)</span>"#
    } else {
        ""
    };
    format!(
        r#"<div class="post {class}" id="post-{id}" data-post-id="{id}">{avatar}<div class="body"><div class="head"><b class="author">{name}</b>{bot}<time>{time}</time>{edited}</div><div class="msg">{msg}</div>{attachments}</div></div>"#,
        id = esc(&p.id),
        avatar = avatar(&name, bot),
        name = esc(&name),
        bot = if bot {
            r#"<span class="bot-tag">BOT</span>"#
        } else {
            ""
        },
        time = clock(p.create_at),
        msg = markdown::to_html(&p.message),
        attachments = attachments(&p.props, Some((v, &p.id))),
    )
}

fn ephemeral(play: &Play, e: &EphemeralPost) -> String {
    let (name, _) = author(play, play.mm.bot_id());
    format!(
        r#"<div class="post ephemeral">{avatar}<div class="body"><div class="head"><b class="author">{name}</b><span class="bot-tag">BOT</span><span class="only-you">(Only visible to you)</span></div><div class="msg">{msg}</div>{attachments}</div></div>"#,
        avatar = avatar(&name, true),
        name = esc(&name),
        msg = markdown::to_html(&e.message),
        attachments = attachments(&e.props, None),
    )
}

/// Mattermost's named attachment colours; anything but `#hex` falls back to grey.
fn color(c: &str) -> &str {
    match c {
        "good" => "#339970",
        "warning" => "#ffbc1f",
        "danger" => "#d24b4e",
        c if c.starts_with('#')
            && matches!(c.len(), 4 | 7 | 9)
            && c[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            c
        }
        _ => "#dddddd",
    }
}

/// `text` as Markdown in a `<div class="…">`, or nothing when it is empty.
pub(crate) fn markdown_block(class: &str, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    format!(r#"<div class="{class}">{}</div>"#, markdown::to_html(text))
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Message attachments: colour bar, pretext, title, text, fields and buttons. Buttons only on
/// stored posts (`post`): each is a form that makes the simulator click it.
fn attachments(props: &Value, post: Option<(&View, &str)>) -> String {
    let Some(list) = props.get("attachments").and_then(Value::as_array) else {
        return String::new();
    };
    let mut out = String::new();
    for a in list {
        let _ = write!(
            out,
            r#"<div class="att" style="border-left-color:{}">"#,
            color(str_of(a, "color"))
        );
        out.push_str(&markdown_block("pretext", str_of(a, "pretext")));
        let title = str_of(a, "title");
        if !title.is_empty() {
            let _ = write!(out, r#"<div class="att-title">{}</div>"#, esc(title));
        }
        out.push_str(&markdown_block("att-text", str_of(a, "text")));
        if let Some(fields) = a.get("fields").and_then(Value::as_array) {
            out.push_str(r#"<div class="fields">"#);
            for f in fields {
                let short = f.get("short").and_then(Value::as_bool).unwrap_or(false);
                let value = match f.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                let _ = write!(
                    out,
                    r#"<div class="field{}"><div class="field-title">{}</div><div>{}</div></div>"#,
                    if short { " short" } else { "" },
                    esc(str_of(f, "title")),
                    markdown::to_html(&value),
                );
            }
            out.push_str("</div>");
        }
        let actions = a.get("actions").and_then(Value::as_array);
        if let (Some(actions), Some((v, post_id))) = (actions, post) {
            let _ = write!(
                out,
                r#"<form class="actions" method="post" action="/mm/click">{}<input type="hidden" name="post" value="{}">"#,
                view_fields(v),
                esc(post_id)
            );
            for b in actions {
                let style = str_of(b, "style");
                let class = match style {
                    "primary" => "btn btn-primary",
                    "danger" => "btn btn-danger",
                    "success" | "good" => "btn btn-success",
                    "warning" => "btn btn-warning",
                    _ => "btn",
                };
                let _ = write!(
                    out,
                    r#"<button class="{class}" type="submit" name="action" value="{id}">{name}</button>"#,
                    id = esc(str_of(b, "id")),
                    name = esc(str_of(b, "name")),
                );
            }
            out.push_str("</form>");
        }
        let footer = str_of(a, "footer");
        if !footer.is_empty() {
            let _ = write!(out, r#"<div class="footer">{}</div>"#, esc(footer));
        }
        out.push_str("</div>");
    }
    out
}
