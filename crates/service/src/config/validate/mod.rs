//! Turns the loose file contents into a typed `Config`, collecting every problem with its key:
//! unknown keys here, each section in [`sections`], in-chat review in [`review`], the shared
//! value parsers in [`problems`].

mod problems;
mod reminders;
mod review;
mod sections;

use figment::value::{Dict, Value};
use figment::{Figment, Profile, Source};

use super::Config;
use super::raw::{FREE_TABLES, RawConfig, SECTIONS};
use problems::Problems;

pub fn from_figment(figment: &Figment) -> Result<Config, Vec<String>> {
    let mut problems = Vec::new();
    let dict: Dict = match figment.extract() {
        Ok(d) => d,
        Err(e) => return Err(e.into_iter().map(|e| describe(&e)).collect()),
    };
    unknown_keys(figment, &dict, &mut problems);
    let raw: RawConfig = match figment.extract() {
        Ok(r) => r,
        Err(e) => {
            problems.extend(e.into_iter().map(|e| describe(&e)));
            return Err(problems);
        }
    };
    let mut p = Problems {
        problems,
        ..Problems::default()
    };
    let config = build(&mut p, raw);
    if p.problems.is_empty() {
        Ok(config)
    } else {
        Err(p.problems)
    }
}

/// A figment error in our words: the key, where it was written and what was expected, never
/// the value (figment's own text prints it, and the key may hold a secret).
fn describe(e: &figment::Error) -> String {
    use figment::error::{Actual, Kind};
    let key = e.path.join(".");
    let origin = match &e.metadata {
        Some(md) => match &md.source {
            Some(Source::File(p)) => format!(" in {}", p.display()),
            _ => {
                let keys: Vec<&str> = e.path.iter().map(String::as_str).collect();
                format!(
                    " in {} {}",
                    md.name,
                    md.interpolate(&Profile::Default, &keys)
                )
            }
        },
        None => String::new(),
    };
    let found = |a: &Actual| match a {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "a value of another type",
    };
    match &e.kind {
        Kind::InvalidType(a, expected) | Kind::InvalidValue(a, expected) => {
            format!("`{key}`{origin} is {}: write {expected}", found(a))
        }
        Kind::Message(m) => format!("`{key}`{origin}: {}", m.trim_end()),
        other => format!("`{key}`{origin}: {other}"),
    }
}

/// A TOML syntax error as line, column and the key on that line, never the line itself:
/// the line may hold a token or secret (`token = "abc…` without its closing quote).
pub fn syntax(text: &str) -> Result<(), String> {
    let Err(e) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let offset = e.span().map_or(0, |s| s.start).min(text.len());
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let mut table = None;
    for l in text.lines().take(line_no - 1) {
        let l = l.trim();
        if l.starts_with('[') && !l.starts_with("[[") {
            table = l.trim_matches(['[', ']']).split(']').next().map(str::trim);
        }
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c))
        })
        .map(|k| match table {
            Some(t) => format!(" (key `{t}.{k}`)"),
            None => format!(" (key `{k}`)"),
        })
        .unwrap_or_default();
    let why: Vec<&str> = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Err(format!(
        "not valid TOML at line {line_no}, column {column}{key}: {}",
        why.join("; ")
    ))
}

fn unknown_keys(figment: &Figment, dict: &Dict, problems: &mut Vec<String>) {
    for (top, value) in dict {
        if FREE_TABLES.contains(&top.as_str()) {
            continue;
        }
        let Some((_, keys)) = SECTIONS.iter().find(|(s, _)| *s == top) else {
            let known: Vec<&str> = SECTIONS
                .iter()
                .map(|(s, _)| *s)
                .chain(FREE_TABLES.iter().copied())
                .collect();
            problems.push(format!(
                "unknown key `{top}`{}: remove it or fix its spelling (known sections: {})",
                origin(figment, &[top]),
                known.join(", ")
            ));
            continue;
        };
        let Value::Dict(_, section) = value else {
            problems.push(format!(
                "`{top}`{} must be a table: write it as a [{top}] section",
                origin(figment, &[top])
            ));
            continue;
        };
        for key in section.keys() {
            if !keys.contains(&key.as_str()) {
                problems.push(format!(
                    "unknown key `{top}.{key}`{}: remove it or fix its spelling (known keys of [{top}]: {})",
                    origin(figment, &[top, key]),
                    keys.join(", ")
                ));
            }
        }
    }
}

/// " in /etc/x.toml" or " in environment variable TELEPORT_MATTERMOST_X__Y".
fn origin(figment: &Figment, path: &[&str]) -> String {
    let Some(md) = figment.find_metadata(&path.join(".")) else {
        return String::new();
    };
    match &md.source {
        Some(Source::File(p)) => format!(" in {}", p.display()),
        _ => {
            let keys: Vec<&str> = path.to_vec();
            format!(
                " in {} {}",
                md.name,
                md.interpolate(&Profile::Default, &keys)
            )
        }
    }
}

fn build(p: &mut Problems, raw: RawConfig) -> Config {
    let (teleport, teleport_addr_key) = sections::teleport(p, raw.teleport);
    let mattermost = sections::mattermost(p, &raw.mattermost);
    let role_to_recipients =
        sections::role_to_recipients(p, raw.role_to_recipients, raw.mattermost.recipients);
    let log = sections::log(p, raw.log);
    let (http, public_addr) = sections::http(p, raw.http);
    let review = review::review(p, raw.review, public_addr);
    let bridge = sections::bridge(p, raw.bridge);
    let access_lists = sections::access_lists(p, raw.access_lists);
    let reminders = raw.reminders.map(|r| reminders::reminders(p, r));
    Config {
        teleport,
        mattermost,
        role_to_recipients,
        log,
        http,
        review,
        bridge,
        access_lists,
        reminders,
        warnings: std::mem::take(&mut p.warnings),
        skipped_recipients: std::mem::take(&mut p.skipped_recipients),
        teleport_addr_key,
    }
}
