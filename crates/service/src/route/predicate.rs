//! The subset of Teleport's predicate language that access monitoring rule conditions use:
//! `contains`, `contains_any`, `contains_all`, `equals`, `is_empty`, `set(...)`, `==`, `!=`,
//! `&&`, `||`, `!`, string/boolean literals and `access_request.spec.*` / `plugin.spec.name`.
//! Conditions come from the cluster, so the parser is bounded and never panics.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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
        let tokens = lex(condition).map_err(|(m, p)| err(m, p))?;
        let mut p = Parser {
            tokens,
            at: 0,
            depth: 0,
        };
        let expr = p.expr().map_err(|(m, pos)| err(m, pos))?;
        if let Some((t, pos)) = p.tokens.get(p.at) {
            return Err(err(
                format!("unexpected {t} after the end of the expression"),
                *pos,
            ));
        }
        Ok(Self {
            source: condition.to_string(),
            expr,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
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

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Not,
    And,
    Or,
    EqEq,
    NotEq,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "name {s:?}"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::LBracket => f.write_str("'['"),
            Tok::RBracket => f.write_str("']'"),
            Tok::Comma => f.write_str("','"),
            Tok::Dot => f.write_str("'.'"),
            Tok::Not => f.write_str("'!'"),
            Tok::And => f.write_str("'&&'"),
            Tok::Or => f.write_str("'||'"),
            Tok::EqEq => f.write_str("'=='"),
            Tok::NotEq => f.write_str("'!='"),
        }
    }
}

type PResult<T> = Result<T, (String, usize)>;

fn lex(src: &str) -> PResult<Vec<(Tok, usize)>> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        let next = chars.get(i + 1).map(|(_, c)| *c);
        let two = |t: Tok, out: &mut Vec<(Tok, usize)>| out.push((t, pos));
        match c {
            c if c.is_whitespace() => {}
            '(' => two(Tok::LParen, &mut out),
            ')' => two(Tok::RParen, &mut out),
            '[' => two(Tok::LBracket, &mut out),
            ']' => two(Tok::RBracket, &mut out),
            ',' => two(Tok::Comma, &mut out),
            '.' => two(Tok::Dot, &mut out),
            '!' if next == Some('=') => {
                two(Tok::NotEq, &mut out);
                i += 1;
            }
            '!' => two(Tok::Not, &mut out),
            '&' if next == Some('&') => {
                two(Tok::And, &mut out);
                i += 1;
            }
            '|' if next == Some('|') => {
                two(Tok::Or, &mut out);
                i += 1;
            }
            '=' if next == Some('=') => {
                two(Tok::EqEq, &mut out);
                i += 1;
            }
            '"' | '`' => {
                let (s, end) = string(&chars, i)?;
                out.push((Tok::Str(s), pos));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().map(|(_, c)| c).collect();
                out.push((Tok::Ident(word), pos));
                continue;
            }
            other => return Err((format!("unexpected character {other:?}"), pos)),
        }
        i += 1;
    }
    Ok(out)
}

/// A Go-style string: double quotes with backslash escapes, or backticks taken raw.
fn string(chars: &[(usize, char)], start: usize) -> PResult<(String, usize)> {
    let (pos, quote) = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i].1;
        if c == quote {
            return Ok((s, i));
        }
        if c == '\\' && quote == '"' {
            i += 1;
            let Some(&(p, e)) = chars.get(i) else { break };
            s.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' | '"' | '\'' => e,
                other => return Err((format!("unsupported escape \\{other}"), p)),
            });
        } else {
            s.push(c);
        }
        i += 1;
    }
    Err(("unterminated string".into(), pos))
}

// ---------------------------------------------------------------------------------------
// Parser (recursive descent with a depth bound)

struct Parser {
    tokens: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.tokens
            .get(self.at)
            .or_else(|| self.tokens.last())
            .map_or(0, |(_, p)| *p)
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok) -> PResult<()> {
        if self.eat(&t) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(found) => (format!("expected {t}, found {found}"), self.pos()),
                None => (format!("expected {t}, found the end"), self.pos()),
            })
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((format!("nested deeper than {MAX_DEPTH} levels"), self.pos()));
        }
        Ok(())
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut left = self.and()?;
        while self.eat(&Tok::Or) {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> PResult<Expr> {
        let mut left = self.unary()?;
        while self.eat(&Tok::And) {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        if self.eat(&Tok::Not) {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner), pos));
        }
        let left = self.postfix()?;
        let pos = self.pos();
        let negate = match self.peek() {
            Some(Tok::EqEq) => false,
            Some(Tok::NotEq) => true,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.postfix()?;
        Ok(Expr::Eq(Box::new(left), Box::new(right), negate, pos))
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            let pos = self.pos();
            if !self.eat(&Tok::LBracket) {
                return Ok(e);
            }
            let key = self.expr()?;
            self.expect(Tok::RBracket)?;
            e = Expr::Index(Box::new(e), Box::new(key), pos);
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        let Some((tok, _)) = self.tokens.get(self.at).cloned() else {
            return Err(("unexpected end of the condition".into(), pos));
        };
        self.at += 1;
        match tok {
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Tok::Str(s) => Ok(Expr::Lit(Value::Str(s))),
            Tok::Ident(w) if w == "true" => Ok(Expr::Lit(Value::Bool(true))),
            Tok::Ident(w) if w == "false" => Ok(Expr::Lit(Value::Bool(false))),
            Tok::Ident(w) if self.peek() == Some(&Tok::LParen) => {
                self.at += 1;
                let mut args = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        if !self.eat(&Tok::Comma) {
                            return Err((
                                "expected ',' or ')' in the argument list".into(),
                                self.pos(),
                            ));
                        }
                    }
                }
                Ok(Expr::Call(w, args, pos))
            }
            Tok::Ident(first) => {
                let mut path = first;
                while self.eat(&Tok::Dot) {
                    match self.tokens.get(self.at).cloned() {
                        Some((Tok::Ident(w), _)) => {
                            self.at += 1;
                            path.push('.');
                            path.push_str(&w);
                        }
                        _ => return Err(("expected a name after '.'".into(), self.pos())),
                    }
                }
                Ok(Expr::Var(path, pos))
            }
            other => Err((format!("unexpected {other}"), pos)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

fn set_of(items: &[String]) -> Value {
    Value::Set(items.iter().cloned().collect())
}

fn var(name: &str, env: &Env, pos: usize) -> PResult<Value> {
    Ok(match name {
        "access_request.spec.user" => Value::Str(env.user.clone()),
        "access_request.spec.roles" => set_of(&env.roles),
        "access_request.spec.suggested_reviewers" => set_of(&env.suggested_reviewers),
        "access_request.spec.system_annotations" => Value::Map(
            env.system_annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
        ),
        "access_request.spec.request_reason" => Value::Str(env.request_reason.clone()),
        "access_request.spec.creation_time" => Value::Str(env.creation_time.clone()),
        "access_request.spec.expiry" => Value::Str(env.expiry.clone()),
        "plugin.spec.name" => Value::Str(env.plugin_name.clone()),
        other => return Err((format!("unknown name {other:?}"), pos)),
    })
}

fn eval(e: &Expr, env: &Env) -> PResult<Value> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Var(name, pos) => var(name, env, *pos),
        Expr::Index(target, key, pos) => match (eval(target, env)?, eval(key, env)?) {
            // A missing annotation is an empty set, as in Teleport.
            (Value::Map(m), Value::Str(k)) => {
                Ok(Value::Set(m.get(&k).cloned().unwrap_or_default()))
            }
            (t, k) => Err((
                format!("cannot index a {} with a {}", t.kind(), k.kind()),
                *pos,
            )),
        },
        Expr::Not(inner, pos) => match eval(inner, env)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            other => Err((format!("'!' needs a boolean, got a {}", other.kind()), *pos)),
        },
        Expr::And(a, b) => Ok(Value::Bool(truth(a, env)? && truth(b, env)?)),
        Expr::Or(a, b) => Ok(Value::Bool(truth(a, env)? || truth(b, env)?)),
        Expr::Eq(a, b, negate, pos) => {
            let (a, b) = (eval(a, env)?, eval(b, env)?);
            if std::mem::discriminant(&a) != std::mem::discriminant(&b) {
                return Err((
                    format!("cannot compare a {} with a {}", a.kind(), b.kind()),
                    *pos,
                ));
            }
            Ok(Value::Bool((a == b) != *negate))
        }
        Expr::Call(name, args, pos) => call(name, args, env, *pos),
    }
}

fn truth(e: &Expr, env: &Env) -> PResult<bool> {
    match eval(e, env)? {
        Value::Bool(b) => Ok(b),
        other => Err((
            format!("'&&'/'||' need booleans, got a {}", other.kind()),
            0,
        )),
    }
}

fn call(name: &str, args: &[Expr], env: &Env, pos: usize) -> PResult<Value> {
    let vals = args
        .iter()
        .map(|a| eval(a, env))
        .collect::<PResult<Vec<Value>>>()?;
    let arity = |n: usize| {
        if vals.len() == n {
            Ok(())
        } else {
            Err((
                format!("{name}() takes {n} argument(s), got {}", vals.len()),
                pos,
            ))
        }
    };
    let bad = |vals: &[Value]| {
        let kinds: Vec<&str> = vals.iter().map(Value::kind).collect();
        Err((
            format!("{name}() does not take ({})", kinds.join(", ")),
            pos,
        ))
    };
    match name {
        "set" => {
            let mut out = BTreeSet::new();
            for v in vals {
                match v {
                    Value::Str(s) => {
                        out.insert(s);
                    }
                    other => {
                        return Err((format!("set() takes strings, got a {}", other.kind()), pos));
                    }
                }
            }
            Ok(Value::Set(out))
        }
        "contains" => {
            arity(2)?;
            match (&vals[0], &vals[1]) {
                (Value::Set(s), Value::Str(x)) => Ok(Value::Bool(s.contains(x))),
                (Value::Str(s), Value::Str(x)) => Ok(Value::Bool(s.contains(x.as_str()))),
                _ => bad(&vals),
            }
        }
        "contains_any" | "contains_all" => {
            arity(2)?;
            match (&vals[0], &vals[1]) {
                (Value::Set(s), Value::Set(x)) if name == "contains_any" => {
                    Ok(Value::Bool(x.iter().any(|i| s.contains(i))))
                }
                (Value::Set(s), Value::Set(x)) => Ok(Value::Bool(x.iter().all(|i| s.contains(i)))),
                _ => bad(&vals),
            }
        }
        "equals" => {
            arity(2)?;
            match (&vals[0], &vals[1]) {
                (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => {
                    Ok(Value::Bool(a == b))
                }
                _ => bad(&vals),
            }
        }
        "is_empty" => {
            arity(1)?;
            match &vals[0] {
                Value::Set(s) => Ok(Value::Bool(s.is_empty())),
                Value::Str(s) => Ok(Value::Bool(s.is_empty())),
                Value::Map(m) => Ok(Value::Bool(m.is_empty())),
                Value::Bool(_) => bad(&vals),
            }
        }
        other => Err((format!("unknown function {other}()"), pos)),
    }
}

#[cfg(test)]
mod tests;
