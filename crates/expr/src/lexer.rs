//! Splits the body of one `${...}` into tokens; JUEL's word operators become symbols here.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    True,
    False,
    Null,
    Empty,
    Op(&'static str),
}

/// Tokens with their byte offsets.
pub(crate) fn lex(src: &str) -> Result<Vec<(Tok, usize)>, (String, usize)> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let mut float = false;
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                float = true;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                float = true;
                i += 1;
                if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                    i += 1;
                }
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text = &src[start..i];
            let tok = if float {
                Tok::Float(text.parse().map_err(|_| (format!("bad number `{text}`"), start))?)
            } else {
                Tok::Int(text.parse().map_err(|_| (format!("integer `{text}` is too large"), start))?)
            };
            out.push((tok, start));
            continue;
        }
        if c == b'\'' || c == b'"' {
            let (s, end) = string_literal(src, i)?;
            out.push((Tok::Str(s), start));
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$') {
                i += 1;
            }
            let word = &src[start..i];
            let tok = match word {
                "true" => Tok::True,
                "false" => Tok::False,
                "null" => Tok::Null,
                "empty" => Tok::Empty,
                "and" => Tok::Op("&&"),
                "or" => Tok::Op("||"),
                "not" => Tok::Op("!"),
                "eq" => Tok::Op("=="),
                "ne" => Tok::Op("!="),
                "lt" => Tok::Op("<"),
                "gt" => Tok::Op(">"),
                "le" => Tok::Op("<="),
                "ge" => Tok::Op(">="),
                "div" => Tok::Op("/"),
                "mod" => Tok::Op("%"),
                "instanceof" => return Err(("`instanceof` is not supported".into(), start)),
                _ => Tok::Ident(word.to_owned()),
            };
            out.push((tok, start));
            continue;
        }
        const OPS: [&str; 22] = [
            "&&", "||", "==", "!=", "<=", ">=", "!", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ".", "?",
            ":", ",",
        ];
        match OPS.iter().find(|op| src[i..].starts_with(**op)) {
            Some(op) => {
                out.push((Tok::Op(op), start));
                i += op.len();
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or_default();
                let hint = if ch == '=' { " (comparison is `==`; assignment is not allowed)" } else { "" };
                return Err((format!("unexpected character `{ch}`{hint}"), start));
            }
        }
    }
    Ok(out)
}

/// Reads a quoted literal starting at `start`; returns its value and the offset after it.
fn string_literal(src: &str, start: usize) -> Result<(String, usize), (String, usize)> {
    let quote = src.as_bytes()[start] as char;
    let mut value = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, other)) => value.push(other),
                None => break,
            },
            c if c == quote => return Ok((value, start + 1 + off + 1)),
            c => value.push(c),
        }
    }
    Err(("unterminated string literal".into(), start))
}
