//! Precedence-climbing parser from tokens to an [`Ast`].

use crate::lexer::{Tok, lex};
use serde_json::Value;

/// How deep expressions may nest (parentheses, unary operators, conditionals, arguments):
/// parsing and evaluation recurse once per level, so this bounds the stack any text can use.
pub const MAX_NESTING: usize = 64;

/// The longest body one `${…}` may have, in bytes.
pub const MAX_CODE_LENGTH: usize = 16 * 1024;

/// A parsed expression. Runs of one operator level (`a + b - c`) and of member, index and
/// method steps (`a.b[0].c()`) are flat lists rather than nested nodes, so a tree is only as
/// deep as its text nests, which the parser bounds by [`MAX_NESTING`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Lit(Value),
    Var(String),
    /// A value followed by member, index and method steps, applied left to right.
    Path(Box<Ast>, Vec<Step>),
    Unary(&'static str, Box<Ast>),
    /// Operands of one precedence level joined left to right: `first op1 x1 op2 x2 …`.
    Chain(Box<Ast>, Vec<(&'static str, Ast)>),
    Cond(Box<Ast>, Box<Ast>, Box<Ast>),
    /// `name(args)`.
    Call(String, Vec<Ast>),
}

/// One step of a [`Ast::Path`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Member(String),
    Index(Ast),
    /// `.name(args)` on the value so far.
    Method(String, Vec<Ast>),
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
            Ast::Unary(_, base) => base.variables(out),
            Ast::Path(base, steps) => {
                base.variables(out);
                for step in steps {
                    match step {
                        Step::Member(_) => {}
                        Step::Index(index) => index.variables(out),
                        Step::Method(_, args) => args.iter().for_each(|x| x.variables(out)),
                    }
                }
            }
            Ast::Chain(first, rest) => {
                first.variables(out);
                rest.iter().for_each(|(_, x)| x.variables(out));
            }
            Ast::Cond(a, b, c) => [a, b, c].iter().for_each(|x| x.variables(out)),
            Ast::Call(_, args) => args.iter().for_each(|x| x.variables(out)),
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
    if src.len() > MAX_CODE_LENGTH {
        return Err((format!("the expression is {} bytes long; at most {MAX_CODE_LENGTH} are allowed", src.len()), 0));
    }
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(("empty expression".into(), 0));
    }
    let mut p = Parser { toks, pos: 0, end: src.len(), depth: 0 };
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
    /// How many nesting levels enclose the current position.
    depth: usize,
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

    /// Enters one more nesting level, refusing the text when it nests deeper than allowed.
    fn nest(&mut self) -> Result<(), (String, usize)> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err((format!("the expression nests more than {MAX_NESTING} levels deep"), self.offset()));
        }
        Ok(())
    }

    fn ternary(&mut self) -> Result<Ast, (String, usize)> {
        self.nest()?;
        let cond = self.binary(0)?;
        let ast = if self.peek_op() == Some("?") {
            self.pos += 1;
            let yes = self.ternary()?;
            self.expect(":")?;
            let no = self.ternary()?;
            Ast::Cond(Box::new(cond), Box::new(yes), Box::new(no))
        } else {
            cond
        };
        self.depth -= 1;
        Ok(ast)
    }

    fn binary(&mut self, level: usize) -> Result<Ast, (String, usize)> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let first = self.binary(level + 1)?;
        let mut rest = Vec::new();
        while let Some(op) = self.peek_op().filter(|op| LEVELS[level].contains(op)) {
            self.pos += 1;
            rest.push((op, self.binary(level + 1)?));
        }
        Ok(if rest.is_empty() { first } else { Ast::Chain(Box::new(first), rest) })
    }

    fn unary(&mut self) -> Result<Ast, (String, usize)> {
        let op = match self.toks.get(self.pos) {
            Some((Tok::Op(op @ ("!" | "-")), _)) => *op,
            Some((Tok::Empty, _)) => "empty",
            _ => return self.postfix(),
        };
        self.pos += 1;
        self.nest()?;
        let inner = self.unary()?;
        self.depth -= 1;
        Ok(Ast::Unary(op, Box::new(inner)))
    }

    fn postfix(&mut self) -> Result<Ast, (String, usize)> {
        let base = self.primary()?;
        let mut steps = Vec::new();
        loop {
            match self.peek_op() {
                Some(".") => {
                    self.pos += 1;
                    match self.toks.get(self.pos) {
                        Some((Tok::Ident(name), _)) => {
                            let name = name.clone();
                            self.pos += 1;
                            steps.push(if self.peek_op() == Some("(") {
                                let args = self.arguments(&name, true)?;
                                Step::Method(name, args)
                            } else {
                                Step::Member(name)
                            });
                        }
                        _ => return Err(("expected a property name after `.`".into(), self.offset())),
                    }
                }
                Some("[") => {
                    self.pos += 1;
                    let index = self.ternary()?;
                    self.expect("]")?;
                    steps.push(Step::Index(index));
                }
                Some("(") => {
                    return Err(("only named functions and methods can be called".into(), self.offset()));
                }
                _ => return Ok(if steps.is_empty() { base } else { Ast::Path(Box::new(base), steps) }),
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
                Ast::Call(name, args)
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
