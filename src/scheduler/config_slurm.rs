//! The Slurm keys of the scheduler's TOML file (`[scheduler]` defaults and per-experiment
//! overrides): checking them, the sbatch arguments expman sets itself, and Slurm's time format.

use toml::Spanned;

use std::ops::Range;

use crate::error::quote;
use crate::store::SlurmLaunch;

/// A message and where it points, before it becomes an error with file:line:column.
pub(super) type Located = (Option<Range<usize>>, String);

/// The Slurm keys, from `[scheduler]` or an experiment (serde's `flatten` would lose the spans
/// and `deny_unknown_fields`, so both structs list them and hand them over in this one).
pub(super) struct RawSlurm {
    pub(super) partition: Option<Spanned<String>>,
    pub(super) account: Option<Spanned<String>>,
    pub(super) time: Option<Spanned<String>>,
    pub(super) cpus_per_task: Option<Spanned<u32>>,
    pub(super) mem: Option<Spanned<String>>,
    pub(super) extra_sbatch_args: Option<Spanned<Vec<String>>>,
}

/// Fails on the first Slurm key in `keys` (found in `place`), for the local backend.
pub(super) fn reject_slurm_keys(keys: &RawSlurm, place: &str) -> std::result::Result<(), Located> {
    let spans = [
        ("partition", keys.partition.as_ref().map(Spanned::span)),
        ("account", keys.account.as_ref().map(Spanned::span)),
        ("time", keys.time.as_ref().map(Spanned::span)),
        (
            "cpus_per_task",
            keys.cpus_per_task.as_ref().map(Spanned::span),
        ),
        ("mem", keys.mem.as_ref().map(Spanned::span)),
        (
            "extra_sbatch_args",
            keys.extra_sbatch_args.as_ref().map(Spanned::span),
        ),
    ];
    match spans.into_iter().find(|(_, span)| span.is_some()) {
        None => Ok(()),
        Some((key, span)) => Err((
            span,
            format!(
                "{place} sets `{key}`, a Slurm setting, but the backend is \"local\"; add \
                 backend = \"slurm\" to [scheduler] or remove `{key}`"
            ),
        )),
    }
}

/// `sbatch` arguments that expman sets itself (or that would break how it follows a job), and
/// why they cannot be in `extra_sbatch_args`.
const RESERVED_SBATCH_ARGS: &[(&str, Option<char>, &str)] = &[
    (
        "--output",
        Some('o'),
        "the job's output goes to logs/<run_id>.log",
    ),
    (
        "--error",
        Some('e'),
        "the job's output goes to logs/<run_id>.log",
    ),
    ("--open-mode", None, "the run log is opened in append mode"),
    (
        "--parsable",
        None,
        "expman reads the job id from sbatch's output",
    ),
    (
        "--wrap",
        None,
        "the job runs expman's supervisor (EXP __job)",
    ),
    ("--array", Some('a'), "each run is one Slurm job"),
    (
        "--requeue",
        None,
        "a run starts once; retry it (a new run) instead",
    ),
    ("--wait", Some('W'), "expman follows the job itself"),
];

/// Checks the Slurm keys; returns them as launch settings, plus whether `extra_sbatch_args`
/// was given (an override of an empty list is still an override).
pub(super) fn check_slurm(keys: RawSlurm) -> std::result::Result<(SlurmLaunch, bool), Located> {
    let given = keys.extra_sbatch_args.is_some();
    let launch = SlurmLaunch {
        partition: check_word("partition", keys.partition)?,
        account: check_word("account", keys.account)?,
        time: keys.time.map(check_time).transpose()?,
        cpus_per_task: keys.cpus_per_task.map(check_cpus).transpose()?,
        mem: keys.mem.map(check_mem).transpose()?,
        extra_sbatch_args: keys
            .extra_sbatch_args
            .map(check_extra_args)
            .transpose()?
            .unwrap_or_default(),
    };
    Ok((launch, given))
}

/// A name Slurm takes as one word (partition, account).
fn check_word(
    key: &str,
    value: Option<Spanned<String>>,
) -> std::result::Result<Option<String>, Located> {
    match value {
        None => Ok(None),
        Some(v) if v.get_ref().is_empty() || v.get_ref().chars().any(char::is_whitespace) => Err((
            Some(v.span()),
            format!(
                "{key} = {} must be a non-empty name without spaces",
                quote(v.get_ref())
            ),
        )),
        Some(v) => Ok(Some(v.into_inner())),
    }
}

fn check_time(t: Spanned<String>) -> std::result::Result<String, Located> {
    slurm_time(t.get_ref()).map_err(|why| {
        (
            Some(t.span()),
            format!(
                "time = {} {why}; write Slurm's format (\"30\" minutes, \"2:00:00\", \
                 \"1-12:00:00\", \"UNLIMITED\") or a duration (\"90m\", \"2h\")",
                quote(t.get_ref())
            ),
        )
    })
}

fn check_cpus(n: Spanned<u32>) -> std::result::Result<u32, Located> {
    if *n.get_ref() == 0 {
        return Err((
            Some(n.span()),
            "cpus_per_task = 0, but a job needs at least one CPU; use 1 or more".into(),
        ));
    }
    Ok(n.into_inner())
}

fn check_mem(m: Spanned<String>) -> std::result::Result<String, Located> {
    let text = m.get_ref();
    let digits = text.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || text.len() > digits.len() + 1
    {
        return Err((
            Some(m.span()),
            format!(
                "mem = {} is not a Slurm memory size; write a number of megabytes or one with \
                 a unit: \"500M\", \"16G\"",
                quote(text)
            ),
        ));
    }
    Ok(m.into_inner())
}

/// Extra sbatch arguments, none of them one that expman sets itself.
fn check_extra_args(args: Spanned<Vec<String>>) -> std::result::Result<Vec<String>, Located> {
    for arg in args.get_ref() {
        let reserved = RESERVED_SBATCH_ARGS.iter().find(|(long, short, _)| {
            arg == long
                || arg.starts_with(&format!("{long}="))
                || short.is_some_and(|c| {
                    let mut chars = arg.chars();
                    chars.next() == Some('-') && chars.next() == Some(c)
                })
        });
        if let Some((long, _, why)) = reserved {
            return Err((
                Some(args.span()),
                format!(
                    "{} ({long}) cannot be in extra_sbatch_args: {why}; remove it",
                    quote(arg)
                ),
            ));
        }
        if arg.is_empty() {
            return Err((
                Some(args.span()),
                "extra_sbatch_args holds an empty string; remove it".into(),
            ));
        }
    }
    Ok(args.into_inner())
}

/// The `[scheduler]` settings with an experiment's overrides (each key given replaces the
/// default; `extra_sbatch_args` replaces the whole list).
pub(super) fn merge_slurm(
    defaults: &SlurmLaunch,
    overrides: SlurmLaunch,
    extra_given: bool,
) -> SlurmLaunch {
    SlurmLaunch {
        partition: overrides.partition.or_else(|| defaults.partition.clone()),
        account: overrides.account.or_else(|| defaults.account.clone()),
        time: overrides.time.or_else(|| defaults.time.clone()),
        cpus_per_task: overrides.cpus_per_task.or(defaults.cpus_per_task),
        mem: overrides.mem.or_else(|| defaults.mem.clone()),
        extra_sbatch_args: if extra_given {
            overrides.extra_sbatch_args
        } else {
            defaults.extra_sbatch_args.clone()
        },
    }
}

/// A time limit in Slurm's `--time` format: Slurm's own forms pass through; a duration such as
/// "90m" or "2h" becomes `[D-]HH:MM:SS`.
pub(super) fn slurm_time(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") || text.eq_ignore_ascii_case("infinite") {
        return Ok(text.to_ascii_uppercase());
    }
    let numbers = |s: &str, most: usize| {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() <= most
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    // minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]]
    let slurm_form = match text.split_once('-') {
        Some((days, rest)) => numbers(days, 1) && numbers(rest, 3),
        None => numbers(text, 3),
    };
    if slurm_form {
        return Ok(text.to_string());
    }
    let duration = humantime::parse_duration(text).map_err(|e| format!("is not a time ({e})"))?;
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    if secs == 0 {
        return Err("is zero".into());
    }
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    Ok(if days > 0 {
        format!("{days}-{hours:02}:{minutes:02}:{seconds:02}")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    })
}
