//! Recursive descent over the tokens, with a depth bound (conditions come from the cluster).

use super::lex::Tok;
use super::{Expr, MAX_DEPTH, PResult, Value};

/// The whole token list as one expression; anything left over is an error.
pub(super) fn parse(tokens: Vec<(Tok, usize)>) -> PResult<Expr> {
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = p.expr()?;
    if let Some((t, pos)) = p.tokens.get(p.at) {
        return Err((
            format!("unexpected {t} after the end of the expression"),
            *pos,
        ));
    }
    Ok(expr)
}

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
