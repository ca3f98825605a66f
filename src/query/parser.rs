//! Tokens to a syntax tree, by recursive descent: `or` < `and` (or two conditions side by
//! side) < `not` < a comparison, a search word or a parenthesised query. The tree prints back
//! as a query (`Display`) that parses to the same tree.

use std::fmt;

use super::error::QueryError;
use super::field::{FieldPath, parse_field};
use super::lexer::{Op, Token, TokenKind, is_bare_word, short, tokenize};

/// How deep parentheses and `not`s may nest: the parser, the printer and the evaluator recurse,
/// and a hostile query must get an error, not a stack overflow.
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed query. Byte spans ride along for the errors found after parsing (a bad date, an
/// unknown status) but take no part in equality.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// The empty query: everything matches.
    All,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: Spanned<FieldPath>,
        op: Spanned<Op>,
        value: Literal,
    },
    In {
        field: Spanned<FieldPath>,
        negated: bool,
        values: Vec<Literal>,
    },
    /// A word or string on its own: today's substring search.
    Search(Literal),
}

/// A value with the byte range of the query it came from.
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub start: usize,
    pub end: usize,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// A value as written: its text, and whether it was quoted (a quoted `"18"` is text, a bare
/// `18` a number).
#[derive(Debug, Clone)]
pub(crate) struct Literal {
    pub text: String,
    pub quoted: bool,
    pub start: usize,
    pub end: usize,
}

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.quoted == other.quoted
    }
}

pub(crate) fn parse(query: &str) -> Result<Expr, QueryError> {
    let tokens = tokenize(query)?;
    let mut parser = Parser {
        query,
        tokens,
        pos: 0,
        depth: 0,
    };
    if parser.tokens.is_empty() {
        return Ok(Expr::All);
    }
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(parser.error_at(
            token,
            match &token.kind {
                TokenKind::RParen => "unexpected `)`: there is no `(` to close".to_string(),
                TokenKind::Comma => {
                    "unexpected `,`: commas separate the values of `in (...)`".to_string()
                }
                other => format!(
                    "unexpected {} after a complete condition; join conditions with `and` or `or`",
                    other.describe()
                ),
            },
        )),
    }
}

struct Parser<'q> {
    query: &'q str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

fn keyword(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token { kind: TokenKind::Word(w), .. }) if w.eq_ignore_ascii_case(word))
}

fn is_keyword(word: &str) -> bool {
    ["and", "or", "not", "in"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

impl<'q> Parser<'q> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.pos + ahead)
    }

    fn error_at(&self, token: &Token, message: impl Into<String>) -> QueryError {
        QueryError::new(self.query, token.start, token.end - token.start, message)
    }

    /// An error at the next token, or at the end of the query when there is none.
    fn error_here(&self, message: impl Into<String>) -> QueryError {
        match self.peek() {
            Some(token) => self.error_at(token, message),
            None => QueryError::new(self.query, self.query.len(), 0, message),
        }
    }

    fn nest(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!(
                "the query nests deeper than {MAX_DEPTH} parentheses or `not`s"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.and()?];
        while keyword(self.peek(), "or") {
            self.pos += 1;
            items.push(self.and_after("or")?);
        }
        Ok(flatten(items, Expr::Or))
    }

    fn and_after(&mut self, word: &str) -> Result<Expr, QueryError> {
        if !self.starts_condition() {
            return Err(self.error_here(format!("expected a condition after `{word}`")));
        }
        self.and()
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.unary()?];
        loop {
            if keyword(self.peek(), "and") {
                self.pos += 1;
                if !self.starts_condition() {
                    return Err(self.error_here("expected a condition after `and`"));
                }
            } else if !self.starts_condition() {
                break;
            }
            // Two conditions side by side are and-ed: `resnet cifar`, `tag = cnn status = error`.
            items.push(self.unary()?);
        }
        Ok(flatten(items, Expr::And))
    }

    /// Whether the next token can begin a condition (so `and` may be left out before it).
    fn starts_condition(&self) -> bool {
        match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Word(w)) => {
                !(w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or"))
            }
            Some(TokenKind::Quoted(_) | TokenKind::LParen) => true,
            _ => false,
        }
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if keyword(self.peek(), "not") {
            self.pos += 1;
            self.nest()?;
            if !self.starts_condition() {
                return Err(self.error_here("expected a condition after `not`"));
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.error_here("expected a condition"));
        };
        match &token.kind {
            TokenKind::LParen => {
                self.pos += 1;
                self.nest()?;
                if matches!(self.peek().map(|t| &t.kind), Some(TokenKind::RParen)) {
                    return Err(self.error_here("expected a condition inside `()`"));
                }
                let inner = self.or()?;
                match self.peek().map(|t| &t.kind) {
                    Some(TokenKind::RParen) => self.pos += 1,
                    _ => {
                        let column = self.query[..token.start].chars().count() + 1;
                        return Err(self.error_here(format!(
                            "expected `)` to close the `(` at column {column}"
                        )));
                    }
                }
                self.depth -= 1;
                Ok(inner)
            }
            TokenKind::Word(word) => {
                if is_keyword(word) {
                    return Err(self.error_at(
                        &token,
                        format!(
                            "expected a condition before `{}`; to search for the word, quote it: \"{}\"",
                            word.to_lowercase(),
                            word
                        ),
                    ));
                }
                let next = self.peek_at(1).map(|t| t.kind.clone());
                let negated_in = keyword(self.peek_at(1), "not") && keyword(self.peek_at(2), "in");
                match next {
                    Some(TokenKind::Op(op)) => {
                        let field = self.field(&token, word)?;
                        let op_token = self.tokens[self.pos + 1].clone();
                        self.pos += 2;
                        let value = self.value(&format!("`{}`", op.as_str()))?;
                        Ok(Expr::Compare {
                            field,
                            op: Spanned {
                                value: op,
                                start: op_token.start,
                                end: op_token.end,
                            },
                            value,
                        })
                    }
                    _ if keyword(self.peek_at(1), "in") || negated_in => {
                        let field = self.field(&token, word)?;
                        self.pos += if negated_in { 3 } else { 2 };
                        let values = self.list()?;
                        Ok(Expr::In {
                            field,
                            negated: negated_in,
                            values,
                        })
                    }
                    _ => {
                        let lower = word.to_ascii_lowercase();
                        if lower.starts_with("params.") || lower.starts_with("metrics.") {
                            self.field(&token, word)?;
                            self.pos += 1;
                            return Err(self.error_here(format!(
                                "expected an operator (= != < <= > >= ~ in) after `{}`",
                                short(word)
                            )));
                        }
                        self.pos += 1;
                        Ok(Expr::Search(literal(&token)))
                    }
                }
            }
            TokenKind::Quoted(_) => {
                if let Some(TokenKind::Op(op)) = self.peek_at(1).map(|t| &t.kind) {
                    return Err(self.error_at(
                        &token,
                        format!(
                            "expected a field before `{}`; field names are written without quotes",
                            op.as_str()
                        ),
                    ));
                }
                self.pos += 1;
                Ok(Expr::Search(literal(&token)))
            }
            TokenKind::Op(op) => Err(self.error_at(
                &token,
                format!(
                    "expected a field before `{}`, as in `params.lr {} 0.01`",
                    op.as_str(),
                    op.as_str()
                ),
            )),
            TokenKind::RParen => Err(self.error_at(&token, "expected a condition before `)`")),
            TokenKind::Comma => Err(self.error_at(
                &token,
                "unexpected `,`: commas separate the values of `in (...)`",
            )),
        }
    }

    fn field(&self, token: &Token, word: &str) -> Result<Spanned<FieldPath>, QueryError> {
        Ok(Spanned {
            value: parse_field(self.query, word, token.start)?,
            start: token.start,
            end: token.end,
        })
    }

    /// A value after `after` (an operator, `(` or `,`).
    fn value(&mut self, after: &str) -> Result<Literal, QueryError> {
        match self.peek() {
            Some(token @ Token {
                kind: TokenKind::Word(w),
                ..
            }) if is_keyword(w) => Err(self.error_at(
                token,
                format!(
                    "expected a value after {after}, found the keyword `{}`; quote it if you mean the word: \"{w}\"",
                    w.to_lowercase()
                ),
            )),
            Some(
                token @ Token {
                    kind: TokenKind::Word(_) | TokenKind::Quoted(_),
                    ..
                },
            ) => {
                let literal = literal(token);
                self.pos += 1;
                Ok(literal)
            }
            _ => Err(self.error_here(format!("expected a value after {after}"))),
        }
    }

    /// `( value {, value} [,] )` after `in`.
    fn list(&mut self) -> Result<Vec<Literal>, QueryError> {
        if !matches!(self.peek().map(|t| &t.kind), Some(TokenKind::LParen)) {
            return Err(
                self.error_here("expected `(` after `in`, as in `status in (finished, error)`")
            );
        }
        self.pos += 1;
        let mut values = vec![self.value("`(`")?];
        loop {
            match self.peek().map(|t| &t.kind) {
                Some(TokenKind::RParen) => {
                    self.pos += 1;
                    return Ok(values);
                }
                Some(TokenKind::Comma) => {
                    self.pos += 1;
                    if matches!(self.peek().map(|t| &t.kind), Some(TokenKind::RParen)) {
                        continue;
                    }
                    values.push(self.value("`,`")?);
                }
                _ => return Err(self.error_here("expected `,` or `)` in the list after `in`")),
            }
        }
    }
}

fn literal(token: &Token) -> Literal {
    let (text, quoted) = match &token.kind {
        TokenKind::Word(w) => (w.clone(), false),
        TokenKind::Quoted(s) => (s.clone(), true),
        _ => unreachable!("literals are words or strings"),
    };
    Literal {
        text,
        quoted,
        start: token.start,
        end: token.end,
    }
}

/// One item stays itself; nested `and`s (from parentheses) merge into their parent so that a
/// printed query parses back to the same tree.
fn flatten(items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        return items.into_iter().next().expect("one item");
    }
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        match (item, make(Vec::new())) {
            (Expr::And(inner), Expr::And(_)) | (Expr::Or(inner), Expr::Or(_)) => flat.extend(inner),
            (item, _) => flat.push(item),
        }
    }
    make(flat)
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.quoted && is_bare_word(&self.text) && !is_keyword(&self.text) {
            return f.write_str(&self.text);
        }
        f.write_str("\"")?;
        for c in self.text.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parentheses only where precedence needs them: an `or` inside an `and` or a `not`, an
        // `and` inside a `not`.
        let child = |f: &mut fmt::Formatter<'_>, e: &Expr, wrap: bool| {
            if wrap {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            Expr::All => Ok(()),
            Expr::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    child(f, item, matches!(item, Expr::Or(_)))?;
                }
                Ok(())
            }
            Expr::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    child(f, item, matches!(item, Expr::Or(_) | Expr::And(_)))?;
                }
                Ok(())
            }
            Expr::Not(inner) => {
                f.write_str("not ")?;
                child(f, inner, matches!(**inner, Expr::Or(_) | Expr::And(_)))
            }
            Expr::Compare { field, op, value } => {
                write!(f, "{} {} {value}", field.value, op.value.as_str())
            }
            Expr::In {
                field,
                negated,
                values,
            } => {
                write!(
                    f,
                    "{} {}in (",
                    field.value,
                    if *negated { "not " } else { "" }
                )?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_str(")")
            }
            Expr::Search(word) => write!(f, "{word}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(query: &str) -> String {
        parse(query).unwrap().to_string()
    }

    fn error(query: &str) -> (usize, String) {
        let err = parse(query).unwrap_err();
        (err.column(), err.message().to_string())
    }

    #[test]
    fn precedence_not_over_and_over_or() {
        assert_eq!(printed("a or b and c"), "a or b and c");
        assert_eq!(
            parse("a or b and c").unwrap(),
            parse("a or (b and c)").unwrap()
        );
        assert_ne!(
            parse("a or b and c").unwrap(),
            parse("(a or b) and c").unwrap()
        );
        assert_eq!(printed("(a or b) and c"), "(a or b) and c");
        assert_eq!(printed("not a and b"), "not a and b");
        assert_eq!(printed("not (a and b)"), "not (a and b)");
        assert_eq!(printed("NOT NOT a"), "not not a");
        assert_eq!(printed("a AND (b And c) Or d"), "a and b and c or d");
    }

    #[test]
    fn side_by_side_conditions_are_anded() {
        assert_eq!(
            parse("resnet cifar").unwrap(),
            parse("resnet and cifar").unwrap()
        );
        assert_eq!(
            printed("tag=cnn status = error (a or b)"),
            "tag = cnn and status = error and (a or b)"
        );
    }

    #[test]
    fn comparisons_and_lists_print_canonically() {
        assert_eq!(printed("Name==x"), "name = x");
        assert_eq!(printed("name<>x"), "name != x");
        assert_eq!(printed("name !~ 'a b'"), "name !~ \"a b\"");
        assert_eq!(
            printed("status IN (finished,error,)"),
            "status in (finished, error)"
        );
        assert_eq!(printed("tag NOT in (a)"), "tag not in (a)");
        assert_eq!(printed("'and' \"x\\\"y\""), "\"and\" and \"x\\\"y\"");
        assert_eq!(printed(""), "");
        assert_eq!(parse("   ").unwrap(), Expr::All);
    }

    #[test]
    fn errors_name_the_spot() {
        assert_eq!(
            error("params.lr <<< 1e-3"),
            (12, "expected a value after `<`".into())
        );
        assert_eq!(
            error("a and"),
            (6, "expected a condition after `and`".into())
        );
        assert_eq!(
            error("a or or b"),
            (6, "expected a condition after `or`".into())
        );
        assert_eq!(
            error("(a or b"),
            (8, "expected `)` to close the `(` at column 1".into())
        );
        assert_eq!(
            error("a)"),
            (2, "unexpected `)`: there is no `(` to close".into())
        );
        assert_eq!(error("()"), (2, "expected a condition inside `()`".into()));
        assert_eq!(error("not"), (4, "expected a condition after `not`".into()));
        assert_eq!(error("= 3").0, 1);
        assert_eq!(error("and x").0, 1);
        assert_eq!(error("status in finished").0, 11);
        assert_eq!(error("status in (a b)").0, 14);
        assert_eq!(error("status in ()").0, 12);
        assert_eq!(error("name = and").0, 8);
        assert_eq!(error("name = a = b").0, 10);
        assert_eq!(error("\"name\" = a").0, 1);
        assert_eq!(error("params.lr 0.1").0, 11);
        assert_eq!(
            error("nme = a").1,
            "unknown field `nme`; did you mean `name`?"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(error(&deep).1.contains("nests deeper"));
        let nots = format!("{}a", "not ".repeat(100_000));
        assert!(error(&nots).1.contains("nests deeper"));
        let fine = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&fine).is_ok());
    }
}
