//! `EXP ls`: parse the arguments, hand them to [`expman::catalog`], print. Query and sort-key
//! errors show the text with a caret under the spot and exit 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use expman::catalog::{Catalog, Format, Listing, listing};
use expman::query::{FieldPath, Query, QueryError, SortKey};

/// `EXP ls <dir> [--where EXPR] [--sort [-]FIELD]... [--columns F,...] [--limit N] [--format F]`.
#[derive(clap::Args)]
pub struct LsArgs {
    /// The experiments directory.
    dir: PathBuf,
    /// Only experiments matching this query (e.g. `params.lr < 1e-3 and status = finished`).
    #[arg(long = "where", value_name = "EXPR")]
    where_: Option<String>,
    /// Sort by this field, descending with a leading `-` (repeatable; the first decides).
    #[arg(long, value_name = "[-]FIELD", allow_hyphen_values = true)]
    sort: Vec<String>,
    /// The columns, as query fields (default: status, name, the params that differ, a few
    /// metrics, and the params and metrics that --where and --sort name).
    #[arg(long, value_name = "FIELD,...", value_delimiter = ',')]
    columns: Vec<String>,
    /// At most this many experiments.
    #[arg(long)]
    limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Table,
    Csv,
    Json,
}

/// Runs `EXP ls`.
pub fn ls(args: &LsArgs) -> expman::Result<ExitCode> {
    let query = match Query::parse(args.where_.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(e) => return Ok(refuse("--where", &e)),
    };
    let mut keys = Vec::new();
    for text in &args.sort {
        match SortKey::parse(text) {
            Ok(key) => keys.push(key),
            Err(e) => return Ok(refuse("--sort", &e)),
        }
    }
    let mut columns = Vec::new();
    for text in &args.columns {
        match FieldPath::parse(text.trim()) {
            Ok(field) => columns.push(field),
            Err(e) => return Ok(refuse("--columns", &e)),
        }
    }
    let mut catalog = Catalog::new(&args.dir);
    catalog.refresh()?;
    if let Err(e) = listing::check(&query, &catalog) {
        return Ok(refuse("--where", &e));
    }
    for record in catalog.records() {
        let dir = args.dir.join(&record.id);
        for problem in &record.unreadable {
            eprintln!(
                "EXP ls: warning: {}: {problem}; listed as Error until the file is fixed",
                dir.display()
            );
        }
        if let Some(why) = &record.metrics_error {
            eprintln!(
                "EXP ls: warning: {}: its metrics cannot be read: {why}; the metrics shown \
                 are what was read before, if anything",
                dir.display()
            );
        }
    }
    let mut records = catalog.select(&query, &keys);
    records.truncate(args.limit.unwrap_or(usize::MAX));
    if columns.is_empty() {
        columns = Listing::default_columns(&records);
        // What the listing was filtered and sorted on is what the reader wants to see: the
        // params and metrics the query and the sort keys name, when not shown already.
        let named = query
            .fields()
            .into_iter()
            .chain(keys.iter().map(|k| k.field().clone()));
        for field in named {
            if matches!(field, FieldPath::Param(_) | FieldPath::Metric { .. })
                && !columns.contains(&field)
            {
                columns.push(field);
            }
        }
    }
    let format = match args.format {
        FormatArg::Table => Format::Table,
        FormatArg::Csv => Format::Csv,
        FormatArg::Json => Format::Json,
    };
    let mut out = std::io::stdout().lock();
    let written = Listing { columns, records }
        .write(format, &mut out)
        .and_then(|()| out.flush());
    match written {
        // `EXP ls ... | head` closes the pipe early: not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("EXP ls: cannot write the listing: {e}");
            Ok(ExitCode::from(1))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Prints a query error with the text and a caret under the spot; exit status 2.
fn refuse(option: &str, e: &QueryError) -> ExitCode {
    eprintln!("EXP ls: {option} {}", e.render());
    ExitCode::from(2)
}
