//! Quoting for a POSIX shell: the one place that decides how a word or a command line is
//! written so that `sh` reads it back unchanged (`--dry-run`, `sbatch --wrap`, the demo).

/// One word quoted for a POSIX shell (as is when it needs no quoting; an empty word is `''`).
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A command line as a POSIX shell reads it back (for `--dry-run` and messages).
pub fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/usr/bin/EXP"), "/usr/bin/EXP");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
