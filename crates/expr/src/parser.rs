//! Precedence-climbing parser from tokens to an [`Ast`].

use crate::lexer::{Tok, lex};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Lit(Value),
    Var(String),
    Member(Box<Ast>, String),
    Index(Box<Ast>, Box<Ast>),
    Unary(&'static str, Box<Ast>),
    Binary(&'static str, Box<Ast>, Box<Ast>),
    Cond(Box<Ast>, Box<Ast>, Box<Ast>),
    /// `name(args)`, or `receiver.name(args)` for a method.
    Call(Option<Box<Ast>>, String, Vec<Ast>),
}

impl Ast {
    /// Adds the variables this tree reads to `out`, skipping those already there.
    pub(crate) fn variables<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Ast::Lit(_) => {}
            Ast::Var(name) => {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
            Ast::Member(base, _) | Ast::Unary(_, base) => base.variables(out),
            Ast::Index(a, b) | Ast::Binary(_, a, b) => {
                a.variables(out);
                b.variables(out);
            }
            Ast::Cond(a, b, c) => [a, b, c].iter().for_each(|x| x.variables(out)),
            Ast::Call(receiver, _, args) => {
                if let Some(r) = receiver {
                    r.variables(out);
                }
                args.iter().for_each(|x| x.variables(out));
            }
        }
    }
}

/// Finds the `}` that closes a `${` whose body starts at `from`, skipping string literals.
pub(crate) fn find_closing_brace(src: &str, from: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = from;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'{' => depth += 1,
            None if c == b'}' && depth == 0 => return Some(i),
            None if c == b'}' => depth -= 1,
            None => {}
        }
        i += 1;
    }
    None
}

/// Parses the body of one `${...}`; errors carry an offset into `src`.
pub(crate) fn parse(src: &str) -> Result<Ast, (String, usize)> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(("empty expression".into(), 0));
    }
    let mut p = Parser { toks, pos: 0, end: src.len() };
    let ast = p.ternary()?;
    match p.toks.get(p.pos) {
        None => Ok(ast),
        Some((tok, off)) => Err((format!("unexpected {} after a complete expression", describe(tok)), *off)),
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Op(op) => format!("`{op}`"),
        Tok::Ident(name) => format!("name `{name}`"),
        Tok::Int(n) => format!("number `{n}`"),
        Tok::Float(n) => format!("number `{n}`"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::True | Tok::False => "boolean literal".into(),
        Tok::Null => "`null`".into(),
        Tok::Empty => "`empty`".into(),
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

/// Binary operators by precedence level, loosest first.
const LEVELS: [&[&str]; 6] = [&["||"], &["&&"], &["==", "!="], &["<", ">", "<=", ">="], &["+", "-"], &["*", "/", "%"]];

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some((Tok::Op(op), _)) => Some(op),
            _ => None,
        }
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.1)
    }

    fn expect(&mut self, op: &str) -> Result<(), (String, usize)> {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            Ok(())
        } else {
            let found = self.toks.get(self.pos).map_or("the end".to_owned(), |t| describe(&t.0));
            Err((format!("expected `{op}` but found {found}"), self.offset()))
        }
    }

    fn ternary(&mut self) -> Result<Ast, (String, usize)> {
        let cond = self.binary(0)?;
        if self.peek_op() != Some("?") {
            return Ok(cond);
        }
        self.pos += 1;
        let yes = self.ternary()?;
        self.expect(":")?;
        let no = self.ternary()?;
        Ok(Ast::Cond(Box::new(cond), Box::new(yes), Box::new(no)))
    }

    fn binary(&mut self, level: usize) -> Result<Ast, (String, usize)> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        while let Some(op) = self.peek_op().filter(|op| LEVELS[level].contains(op)) {
            self.pos += 1;
            let rhs = self.binary(level + 1)?;
            lhs = Ast::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Ast, (String, usize)> {
        match self.toks.get(self.pos) {
            Some((Tok::Op(op @ ("!" | "-")), _)) => {
                self.pos += 1;
                Ok(Ast::Unary(op, Box::new(self.unary()?)))
            }
            Some((Tok::Empty, _)) => {
                self.pos += 1;
                Ok(Ast::Unary("empty", Box::new(self.unary()?)))
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Ast, (String, usize)> {
        let mut ast = self.primary()?;
        loop {
            match self.peek_op() {
                Some(".") => {
                    self.pos += 1;
                    match self.toks.get(self.pos) {
                        Some((Tok::Ident(name), _)) => {
                            let name = name.clone();
                            self.pos += 1;
                            ast = if self.peek_op() == Some("(") {
                                let args = self.arguments(&name, true)?;
                                Ast::Call(Some(Box::new(ast)), name, args)
                            } else {
                                Ast::Member(Box::new(ast), name)
                            };
                        }
                        _ => return Err(("expected a property name after `.`".into(), self.offset())),
                    }
                }
                Some("[") => {
                    self.pos += 1;
                    let index = self.ternary()?;
                    self.expect("]")?;
                    ast = Ast::Index(Box::new(ast), Box::new(index));
                }
                Some("(") => {
                    return Err(("only named functions and methods can be called".into(), self.offset()));
                }
                _ => return Ok(ast),
            }
        }
    }

    /// The parenthesised arguments of a call to `name`, checked against what it takes.
    fn arguments(&mut self, name: &str, method: bool) -> Result<Vec<Ast>, (String, usize)> {
        let at = self.offset();
        self.expect("(")?;
        let mut args = Vec::new();
        if self.peek_op() != Some(")") {
            loop {
                args.push(self.ternary()?);
                if self.peek_op() != Some(",") {
                    break;
                }
                self.pos += 1;
            }
        }
        self.expect(")")?;
        crate::calls::check(name, method, args.len()).map_err(|message| (message, at))?;
        Ok(args)
    }

    fn primary(&mut self) -> Result<Ast, (String, usize)> {
        let Some((tok, off)) = self.toks.get(self.pos).cloned() else {
            return Err(("expression ends too early".into(), self.end));
        };
        self.pos += 1;
        Ok(match tok {
            Tok::Int(n) => Ast::Lit(Value::from(n)),
            Tok::Float(f) => Ast::Lit(Value::from(f)),
            Tok::Str(s) => Ast::Lit(Value::String(s)),
            Tok::True => Ast::Lit(Value::Bool(true)),
            Tok::False => Ast::Lit(Value::Bool(false)),
            Tok::Null => Ast::Lit(Value::Null),
            Tok::Ident(name) if self.peek_op() == Some("(") => {
                let args = self.arguments(&name, false)?;
                Ast::Call(None, name, args)
            }
            Tok::Ident(name) => Ast::Var(name),
            Tok::Op("(") => {
                let inner = self.ternary()?;
                self.expect(")")?;
                inner
            }
            other => return Err((format!("unexpected {}", describe(&other)), off)),
        })
    }
}
