//! `{name}` in a scheduler command: replaced by the parameter's value, quoted for `sh`.
//!
//! The rule, chosen so that commands written before parameters existed keep their meaning:
//! - only entries that declare `params` or a `sweep` are substituted; other commands run as
//!   written;
//! - `{name}`, where `name` looks like a parameter name (a letter or `_`, then letters, digits,
//!   `_`, `-` or `.`), is the value of that parameter, quoted as one shell word; a name the
//!   entry does not declare is an error (with a "did you mean");
//! - `{{name}}` is the literal text `{name}`;
//! - every other brace stays as written: `${HOME}` and `${x:-1}` (the shell's), `{}` (find's),
//!   `'{"a": {"b": 1}}'` (JSON), `awk '{print $1}'`, `{a,b}`.
//!
//! Values are quoted for the shell, so write `--lr {lr}`, not `--lr "{lr}"` or `'{lr}'`: the
//! quotes would become part of the value.

use super::shell::shell_quote;
use crate::params::Params;

/// Why a command could not be substituted: the byte offset in the command of the `{` of the
/// offending reference, and the message.
pub(super) type TemplateError = (usize, String);

/// `command` with every `{name}` replaced (see the module documentation).
pub(super) fn substitute(command: &str, params: &Params) -> Result<String, TemplateError> {
    let bytes = command.as_bytes();
    let mut out = String::with_capacity(command.len());
    let mut i = 0;
    // Copied verbatim since the last special construct.
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            // `${...}`: the shell's, copied to its closing brace.
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                i = command[i..]
                    .find('}')
                    .map_or(bytes.len(), |end| i + end + 1);
            }
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                let name_len = name_at(&bytes[i + 2..]);
                if name_len > 0 && bytes[i + 2 + name_len..].starts_with(b"}}") {
                    out.push_str(&command[copied..i]);
                    out.push('{');
                    out.push_str(&command[i + 2..i + 2 + name_len]);
                    out.push('}');
                    i += name_len + 4;
                    copied = i;
                } else {
                    i += 1;
                }
            }
            b'{' => {
                let name_len = name_at(&bytes[i + 1..]);
                if name_len > 0 && bytes.get(i + 1 + name_len) == Some(&b'}') {
                    let name = &command[i + 1..i + 1 + name_len];
                    let Some(value) = params.get(name) else {
                        return Err((i, unknown(name, params)));
                    };
                    let text = value.to_string();
                    if text.contains('\0') {
                        return Err((
                            i,
                            format!(
                                "{{{name}}}: the value of parameter {name} has a NUL character, \
                                 which no command can hold"
                            ),
                        ));
                    }
                    out.push_str(&command[copied..i]);
                    out.push_str(&shell_quote(&text));
                    i += name_len + 2;
                    copied = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&command[copied..]);
    Ok(out)
}

/// The length of the parameter-like name at the start of `bytes` (0 if there is none).
fn name_at(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => bytes
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || b"_-.".contains(b))
            .count(),
        _ => 0,
    }
}

/// The message for a `{name}` the entry does not declare.
fn unknown(name: &str, params: &Params) -> String {
    let known: Vec<&str> = params.keys().map(String::as_str).collect();
    let close = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= 2 || (*d <= 3 && k.len() > 6))
        .min();
    let hint = match close {
        Some((_, k)) => format!("did you mean {{{k}}}? "),
        None => String::new(),
    };
    format!(
        "the command uses {{{name}}}, but {name} is not a parameter of this experiment (it has \
         {}); {hint}write {{{{{name}}}}} for the literal text {{{name}}}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamValue;

    fn params() -> Params {
        [
            ("lr".to_string(), ParamValue::Float(0.01)),
            (
                "name".to_string(),
                ParamValue::Str("a b;rm -rf x 'q'".into()),
            ),
            ("opt.beta1".to_string(), ParamValue::Float(0.9)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn references_are_replaced_and_quoted() {
        let p = params();
        assert_eq!(
            substitute("train --lr {lr} --name {name} --b {opt.beta1}", &p).unwrap(),
            r"train --lr 0.01 --name 'a b;rm -rf x '\''q'\''' --b 0.9"
        );
    }

    #[test]
    fn other_braces_stay() {
        let p = params();
        for command in [
            "echo ${HOME} ${lr} ${x:-1}",
            "find . -name x -exec rm {} +",
            r#"echo '{"a": {"b": 1}}'"#,
            "awk '{print $1}' f",
            "echo {a,b} { lr } {1x}",
        ] {
            assert_eq!(substitute(command, &p).unwrap(), command);
        }
        assert_eq!(
            substitute("echo {{lr}} {{ x }}", &p).unwrap(),
            "echo {lr} {{ x }}"
        );
    }

    #[test]
    fn unknown_names_say_where_and_suggest() {
        let (at, message) = substitute("run --lr {lrr}", &params()).unwrap_err();
        assert_eq!(at, 9);
        assert!(message.contains("did you mean {lr}?"), "{message}");
        assert!(message.contains("{{lrr}}"), "{message}");
    }
}
