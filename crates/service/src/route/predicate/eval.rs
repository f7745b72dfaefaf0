//! Evaluation of a parsed condition against one request's [`Env`].

use std::collections::BTreeSet;

use super::{Env, Expr, PResult, Value};

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

pub(super) fn eval(e: &Expr, env: &Env) -> PResult<Value> {
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
