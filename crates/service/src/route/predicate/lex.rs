//! Tokens of a condition, with their character positions for error messages.

use std::fmt;

use super::PResult;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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

pub(super) fn lex(src: &str) -> PResult<Vec<(Tok, usize)>> {
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
