//! The subset of Teleport's predicate language that access monitoring rule conditions use:
//! `contains`, `contains_any`, `contains_all`, `equals`, `is_empty`, `set(...)`, `==`, `!=`,
//! `&&`, `||`, `!`, string/boolean literals and `access_request.spec.*` / `plugin.spec.name`.
//! Conditions come from the cluster, so the parser is bounded and never panics.

mod eval;
mod lex;
mod parse;

use std::collections::{BTreeMap, BTreeSet};

use time::format_description::well_known::Rfc3339;

use super::PLUGIN_NAME;
use crate::access::AccessRequest;
use eval::eval;
use lex::lex;
use parse::parse;

/// Conditions longer than this are refused rather than parsed (they come over the wire).
const MAX_LEN: usize = 16 * 1024;
/// Deep nesting is refused so a hostile rule cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// What a condition can read about one access request.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub user: String,
    pub roles: Vec<String>,
    pub suggested_reviewers: Vec<String>,
    pub system_annotations: BTreeMap<String, Vec<String>>,
    pub request_reason: String,
    /// RFC 3339, or empty when unset.
    pub creation_time: String,
    /// RFC 3339, or empty when unset.
    pub expiry: String,
    pub plugin_name: String,
}

/// What routing conditions see of a request: the one place the environment is built, for
/// the bridge's routing and `/teleport explain` alike.
impl From<&AccessRequest> for Env {
    fn from(r: &AccessRequest) -> Self {
        let rfc3339 = |t: Option<time::OffsetDateTime>| {
            t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
        };
        Self {
            user: r.user.clone(),
            roles: r.roles.clone(),
            suggested_reviewers: r.suggested_reviewers.clone(),
            system_annotations: r.system_annotations.clone(),
            request_reason: r.request_reason.clone(),
            creation_time: rfc3339(r.created),
            expiry: rfc3339(r.expires),
            plugin_name: PLUGIN_NAME.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition {condition:?}: {message} (at character {pos})")]
pub struct PredicateError {
    pub condition: String,
    pub message: String,
    pub pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    Str(String),
    Set(BTreeSet<String>),
    Map(BTreeMap<String, BTreeSet<String>>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "boolean",
            Value::Str(_) => "string",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
        }
    }
}

/// A parsed condition, evaluated once per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    source: String,
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Lit(Value),
    Var(String, usize),
    Index(Box<Expr>, Box<Expr>, usize),
    Call(String, Vec<Expr>, usize),
    Not(Box<Expr>, usize),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Box<Expr>, bool, usize),
}

impl Predicate {
    pub fn parse(condition: &str) -> Result<Self, PredicateError> {
        let err = |message: String, pos| PredicateError {
            condition: condition.to_string(),
            message,
            pos,
        };
        if condition.len() > MAX_LEN {
            return Err(err(format!("longer than {MAX_LEN} bytes"), 0));
        }
        let expr = lex(condition).and_then(parse).map_err(|(m, p)| err(m, p))?;
        Ok(Self {
            source: condition.to_string(),
            expr,
        })
    }

    /// True when the condition holds for `env`; a type error is an error, not a match.
    pub fn matches(&self, env: &Env) -> Result<bool, PredicateError> {
        match eval(&self.expr, env) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(PredicateError {
                condition: self.source.clone(),
                message: format!("evaluates to a {}, not a boolean", other.kind()),
                pos: 0,
            }),
            Err((message, pos)) => Err(PredicateError {
                condition: self.source.clone(),
                message,
                pos,
            }),
        }
    }
}

type PResult<T> = Result<T, (String, usize)>;

#[cfg(test)]
mod tests;
