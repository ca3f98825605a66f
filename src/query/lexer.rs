//! Splits a query into tokens: words, quoted strings, operators, parentheses and commas.
//!
//! The lexer does not decide what a word means (field, keyword, number, date, search word): the
//! parser does, from where the word stands. That keeps `2025-09-26T14:30`, `1e-3`, `now-2h`,
//! `resnet-50` and `run_[0-9]*` single words without any rule of their own.

use super::error::QueryError;

/// A token and the byte range of the query it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A run of characters up to whitespace, a parenthesis, a comma, a quote or an operator.
    Word(String),
    /// A quoted string, escapes resolved.
    Quoted(String),
    /// A comparison operator.
    Op(Op),
    LParen,
    RParen,
    Comma,
}

/// The comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Glob,
    NotGlob,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Glob => "~",
            Op::NotGlob => "!~",
        }
    }
}

impl TokenKind {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Word(w) => format!("`{}`", short(w)),
            TokenKind::Quoted(s) => format!("the string {}", crate::error::quote(s)),
            TokenKind::Op(op) => format!("`{}`", op.as_str()),
            TokenKind::LParen => "`(`".into(),
            TokenKind::RParen => "`)`".into(),
            TokenKind::Comma => "`,`".into(),
        }
    }
}

/// A word as an error message quotes it: cut after 40 characters.
pub(crate) fn short(word: &str) -> String {
    match word.char_indices().nth(40) {
        None => word.to_string(),
        Some((end, _)) => format!("{}…", &word[..end]),
    }
}

/// Characters that end a word (besides whitespace). A `!` ends one only before `=` or `~`, so
/// that `[!a-c]` stays inside a glob.
fn ends_word(c: char, next: Option<char>) -> bool {
    match c {
        '(' | ')' | ',' | '"' | '\'' | '=' | '<' | '>' | '~' => true,
        '!' => matches!(next, Some('=' | '~')),
        c => c.is_whitespace(),
    }
}

/// Whether `word` would come back as the same single word token (so it can be printed bare).
pub(crate) fn is_bare_word(word: &str) -> bool {
    matches!(tokenize(word).as_deref(), Ok([Token { kind: TokenKind::Word(w), .. }]) if w == word)
}

pub(crate) fn tokenize(query: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let single = |kind, len| Token {
            kind,
            start,
            end: start + len,
        };
        let next_is = |c: char| query[start + 1..].starts_with(c);
        let token = match c {
            '(' => single(TokenKind::LParen, 1),
            ')' => single(TokenKind::RParen, 1),
            ',' => single(TokenKind::Comma, 1),
            '~' => single(TokenKind::Op(Op::Glob), 1),
            '=' if next_is('=') => single(TokenKind::Op(Op::Eq), 2),
            '=' => single(TokenKind::Op(Op::Eq), 1),
            '!' if next_is('=') => single(TokenKind::Op(Op::Ne), 2),
            '!' if next_is('~') => single(TokenKind::Op(Op::NotGlob), 2),
            '!' => {
                return Err(QueryError::new(
                    query,
                    start,
                    1,
                    "expected `!=` or `!~` after `!`; write `not` to negate a condition",
                ));
            }
            '<' if next_is('=') => single(TokenKind::Op(Op::Le), 2),
            '<' if next_is('>') => single(TokenKind::Op(Op::Ne), 2),
            '<' => single(TokenKind::Op(Op::Lt), 1),
            '>' if next_is('=') => single(TokenKind::Op(Op::Ge), 2),
            '>' => single(TokenKind::Op(Op::Gt), 1),
            '"' | '\'' => {
                let (text, end) = quoted(query, start, c)?;
                tokens.push(Token {
                    kind: TokenKind::Quoted(text),
                    start,
                    end,
                });
                while chars.peek().is_some_and(|&(i, _)| i < end) {
                    chars.next();
                }
                continue;
            }
            _ => {
                let mut end = query.len();
                while let Some(&(i, c)) = chars.peek() {
                    if ends_word(c, query[i + c.len_utf8()..].chars().next()) {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                tokens.push(Token {
                    kind: TokenKind::Word(query[start..end].to_string()),
                    start,
                    end,
                });
                continue;
            }
        };
        while chars.peek().is_some_and(|&(i, _)| i < token.end) {
            chars.next();
        }
        tokens.push(token);
    }
    Ok(tokens)
}

/// Reads the string opened by `quote` at `start`; returns its text and the offset after the
/// closing quote. Escapes: `\\`, `\"`, `\'`, `\n`, `\t`.
fn quoted(query: &str, start: usize, quote: char) -> Result<(String, usize), QueryError> {
    let mut text = String::new();
    let mut chars = query[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        let at = start + 1 + i;
        match c {
            c if c == quote => return Ok((text, at + 1)),
            '\\' => match chars.next() {
                Some((_, c @ ('\\' | '"' | '\''))) => text.push(c),
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, other)) => {
                    return Err(QueryError::new(
                        query,
                        at,
                        1 + other.len_utf8(),
                        format!(
                            "unknown escape `\\{other}` in a string; the escapes are \\\\ \\\" \\' \\n \\t"
                        ),
                    ));
                }
                None => break,
            },
            c => text.push(c),
        }
    }
    Err(QueryError::new(
        query,
        start,
        1,
        format!("this string has no closing {quote}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(query: &str) -> Vec<TokenKind> {
        tokenize(query)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn word(w: &str) -> TokenKind {
        TokenKind::Word(w.into())
    }

    #[test]
    fn words_keep_dates_numbers_globs_and_hyphens_whole() {
        assert_eq!(
            kinds("created>2025-09-26T14:30 lr<=1e-3 name~run_[0-9]* now-2h resnet-50"),
            vec![
                word("created"),
                TokenKind::Op(Op::Gt),
                word("2025-09-26T14:30"),
                word("lr"),
                TokenKind::Op(Op::Le),
                word("1e-3"),
                word("name"),
                TokenKind::Op(Op::Glob),
                word("run_[0-9]*"),
                word("now-2h"),
                word("resnet-50"),
            ]
        );
    }

    #[test]
    fn operators_and_punctuation() {
        assert_eq!(
            kinds("a==b!=c<>d!~(e,f)"),
            vec![
                word("a"),
                TokenKind::Op(Op::Eq),
                word("b"),
                TokenKind::Op(Op::Ne),
                word("c"),
                TokenKind::Op(Op::Ne),
                word("d"),
                TokenKind::Op(Op::NotGlob),
                TokenKind::LParen,
                word("e"),
                TokenKind::Comma,
                word("f"),
                TokenKind::RParen,
            ]
        );
    }

    #[test]
    fn a_bang_inside_a_word_stays_unless_an_operator_follows() {
        assert_eq!(kinds("run_[!0-9]"), vec![word("run_[!0-9]")]);
        assert_eq!(
            kinds("a!=b a!~b"),
            vec![
                word("a"),
                TokenKind::Op(Op::Ne),
                word("b"),
                word("a"),
                TokenKind::Op(Op::NotGlob),
                word("b"),
            ]
        );
        assert!(is_bare_word("x[!a]"));
        assert!(!is_bare_word("!x"));
        assert!(!is_bare_word("a b"));
        assert!(!is_bare_word(""));
    }

    #[test]
    fn strings_take_both_quotes_and_escapes() {
        assert_eq!(
            kinds(r#""a \"b\" c" 'it\'s' "é\\n\n""#),
            vec![
                TokenKind::Quoted("a \"b\" c".into()),
                TokenKind::Quoted("it's".into()),
                TokenKind::Quoted("é\\n\n".into()),
            ]
        );
    }

    #[test]
    fn token_offsets_are_bytes() {
        let tokens = tokenize("é = 'x'").unwrap();
        assert_eq!((tokens[0].start, tokens[0].end), (0, 2));
        assert_eq!((tokens[2].start, tokens[2].end), (5, 8));
    }

    #[test]
    fn errors_point_at_the_culprit() {
        let err = tokenize("name = \"abc").unwrap_err();
        assert_eq!(err.column(), 8);
        let err = tokenize(r#"x = "a\qb""#).unwrap_err();
        assert_eq!(err.column(), 7);
        assert!(err.message().contains("\\q"), "{}", err.message());
        let err = tokenize("a ! b").unwrap_err();
        assert_eq!(err.column(), 3);
    }
}
