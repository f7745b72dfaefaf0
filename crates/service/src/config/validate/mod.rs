//! Turns the loose file contents into a typed `Config`, collecting every problem with its key:
//! unknown keys here, each section in [`sections`], in-chat review in [`review`], the shared
//! value parsers in [`problems`].

mod problems;
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
        Err(e) => return Err(e.into_iter().map(|e| e.to_string()).collect()),
    };
    unknown_keys(figment, &dict, &mut problems);
    let raw: RawConfig = match figment.extract() {
        Ok(r) => r,
        Err(e) => {
            problems.extend(e.into_iter().map(|e| e.to_string()));
            return Err(problems);
        }
    };
    let mut p = Problems {
        problems,
        warnings: Vec::new(),
    };
    let config = build(&mut p, raw);
    if p.problems.is_empty() {
        Ok(config)
    } else {
        Err(p.problems)
    }
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
    let teleport = sections::teleport(p, raw.teleport);
    let mattermost = sections::mattermost(p, &raw.mattermost);
    let role_to_recipients =
        sections::role_to_recipients(p, raw.role_to_recipients, raw.mattermost.recipients);
    let log = sections::log(p, raw.log);
    let (http, public_addr) = sections::http(p, raw.http);
    let review = review::review(p, raw.review, public_addr);
    let bridge = sections::bridge(p, raw.bridge);
    Config {
        teleport,
        mattermost,
        role_to_recipients,
        log,
        http,
        review,
        bridge,
        warnings: std::mem::take(&mut p.warnings),
    }
}
