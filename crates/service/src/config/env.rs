//! Environment overrides `TELEPORT_MATTERMOST_<SECTION>__<KEY>=value`, as a figment provider
//! over an explicit list of variables so tests never touch the process environment.

use figment::value::{Dict, Map, Tag, Value};
use figment::{Error, Metadata, Profile, Provider};

pub const PREFIX: &str = "TELEPORT_MATTERMOST_";

pub struct EnvOverrides {
    vars: Vec<(String, String)>,
}

impl EnvOverrides {
    /// Keeps only the variables with our prefix; the rest of the environment is ignored.
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(PREFIX) && k.len() > PREFIX.len())
            .collect();
        Self { vars }
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
            .interpolater(|_profile, keys| format!("{PREFIX}{}", keys.join("__").to_uppercase()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (name, raw) in &self.vars {
            let path: Vec<String> = name[PREFIX.len()..]
                .split("__")
                .map(str::to_lowercase)
                .collect();
            // Same value syntax as figment's own Env provider: `true`, `5`, `[a, b]`, else a string.
            let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.to_string()));
            insert(&mut root, &path, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = dict
                .entry(head.clone())
                .or_insert_with(|| Value::Dict(Tag::Default, Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::Dict(Tag::Default, Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}
