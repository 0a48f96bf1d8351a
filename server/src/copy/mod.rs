//! `COPY ... FROM STDIN` and `COPY ... TO STDOUT`, in Postgres' text and CSV formats.

pub mod export;
pub mod binary_in;
pub mod format;
pub mod text_out;
pub mod values;

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, RecordBatch};
use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};
use nowdb_catalog::write::{self, OnConflict};
use nowdb_catalog::{CatalogError, Table};

use crate::error::{NowError, NowResult};
use format::{CopyFormat, CopyKind, RecordSplitter};

/// Rows converted to Arrow at a time while a COPY streams in.
const CHUNK_ROWS: usize = 8192;

/// Reads COPY options, new style (`WITH (FORMAT csv, HEADER)`) and old (`CSV HEADER`).
pub fn parse_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> NowResult<CopyFormat> {
    let mut f = CopyFormat::text();
    let mut header = false;
    let mut delimiter = None;
    let mut null = None;
    for o in options {
        match o {
            CopyOption::Format(name) => match name.value.to_ascii_lowercase().as_str() {
                "csv" => f = CopyFormat { header: f.header, ..CopyFormat::csv() },
                "text" => f = CopyFormat { header: f.header, ..CopyFormat::text() },
                "binary" => f = CopyFormat { kind: CopyKind::Binary, ..CopyFormat::text() },
                "parquet" => f = CopyFormat { kind: CopyKind::Parquet, ..CopyFormat::text() },
                other => return Err(NowError::Unsupported(format!("COPY format \"{other}\" is not supported"))),
            },
            CopyOption::Header(h) => header = *h,
            CopyOption::Delimiter(c) => delimiter = Some(*c),
            CopyOption::Null(s) => null = Some(s.clone()),
            CopyOption::Quote(c) => f.quote = ascii(*c)?,
            CopyOption::Escape(c) => f.escape = ascii(*c)?,
            CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => return Err(NowError::Unsupported(format!("COPY option {other} is not supported"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(csv_opts) => {
                f = CopyFormat { header: f.header, ..CopyFormat::csv() };
                for c in csv_opts {
                    match c {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(q) => f.quote = ascii(*q)?,
                        CopyLegacyCsvOption::Escape(e) => f.escape = ascii(*e)?,
                        other => return Err(NowError::Unsupported(format!("COPY option {other} is not supported"))),
                    }
                }
            }
            CopyLegacyOption::Header => header = true,
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
            CopyLegacyOption::Null(s) => null = Some(s.clone()),
            other => return Err(NowError::Unsupported(format!("COPY option {other} is not supported"))),
        }
    }
    if matches!(f.kind, CopyKind::Binary | CopyKind::Parquet) && (delimiter.is_some() || null.is_some()) {
        return Err(NowError::coded("42601", "cannot specify DELIMITER or NULL in BINARY or PARQUET mode"));
    }
    if let Some(d) = delimiter {
        f.delimiter = ascii(d)?;
    }
    if let Some(n) = null {
        f.null = n;
    }
    if header && f.kind != CopyKind::Csv {
        return Err(NowError::Unsupported("COPY HEADER is available only in CSV mode".into()));
    }
    f.header = header;
    Ok(f)
}

fn ascii(c: char) -> NowResult<u8> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        Err(NowError::coded("22023", "COPY delimiter, quote and escape must be single one-byte characters"))
    }
}

/// A `COPY table FROM STDIN` in progress: bytes in, Arrow batches out, one atomic write at
/// the end (like Postgres, a failed COPY writes nothing).
#[derive(Debug)]
pub struct CopyIn {
    table: Arc<Table>,
    /// Table column index of each input field.
    targets: Vec<usize>,
    splitter: Framing,
    /// Pending text fields, per input field.
    fields: Vec<Vec<Option<String>>>,
    batches: Vec<RecordBatch>,
    line: usize,
    first_line_of_chunk: usize,
}

impl CopyIn {
    /// Starts a COPY into `table` of `columns` (all when empty).
    pub fn new(table: Arc<Table>, columns: Vec<String>, format: CopyFormat) -> NowResult<Self> {
        if format.kind == CopyKind::Parquet {
            return Err(NowError::Unsupported("COPY FROM in FORMAT parquet is not supported (text, csv and binary are)".into()));
        }
        let def = table.def();
        let targets = if columns.is_empty() {
            (0..def.columns.len()).collect()
        } else {
            columns
                .iter()
                .map(|c| {
                    def.column_index(c).ok_or_else(|| {
                        NowError::from(CatalogError::NoSuchColumn { table: def.name.clone(), column: c.clone() })
                    })
                })
                .collect::<NowResult<Vec<_>>>()?
        };
        let n = targets.len();
        let splitter = match format.kind {
            CopyKind::Binary => Framing::Binary(binary_in::BinaryRecords::new(targets.iter().map(|&i| def.columns[i].ty.clone()).collect())),
            _ => Framing::Text(RecordSplitter::new(format)),
        };
        Ok(Self {
            table,
            targets,
            splitter,
            fields: vec![Vec::new(); n],
            batches: Vec::new(),
            line: 0,
            first_line_of_chunk: 1,
        })
    }

    /// Number of columns the client sends.
    pub fn columns(&self) -> usize {
        self.targets.len()
    }

    /// Takes one CopyData payload.
    pub fn feed(&mut self, data: &[u8]) -> NowResult<()> {
        for record in self.splitter.push(data)? {
            self.add_record(record)?;
        }
        Ok(())
    }

    fn add_record(&mut self, record: Vec<Option<String>>) -> NowResult<()> {
        self.line += 1;
        let n = self.targets.len();
        if record.len() < n {
            let missing = &self.table.def().columns[self.targets[record.len()]].name;
            return Err(bad_copy("22P04", format!("missing data for column \"{missing}\""), self.context()));
        }
        if record.len() > n {
            return Err(bad_copy("22P04", "extra data after last expected column".into(), self.context()));
        }
        for (col, v) in self.fields.iter_mut().zip(record) {
            col.push(v);
        }
        if self.fields[0].len() >= CHUNK_ROWS {
            self.convert_chunk()?;
        }
        Ok(())
    }

    fn context(&self) -> String {
        format!("COPY {}, line {}", self.table.name(), self.line + self.splitter.header_lines())
    }
}

/// How the COPY data is cut into records.
#[derive(Debug)]
enum Framing {
    Text(RecordSplitter),
    Binary(binary_in::BinaryRecords),
}

impl Framing {
    fn push(&mut self, data: &[u8]) -> NowResult<Vec<Vec<Option<String>>>> {
        match self {
            Framing::Text(s) => s.push(data),
            Framing::Binary(b) => b.push(data),
        }
    }

    fn finish(&mut self) -> NowResult<Vec<Vec<Option<String>>>> {
        match self {
            Framing::Text(s) => s.finish(),
            Framing::Binary(b) => b.finish().map(|()| vec![]),
        }
    }

    fn header_lines(&self) -> usize {
        match self {
            Framing::Text(s) => s.header_lines(),
            Framing::Binary(_) => 0,
        }
    }
}

impl CopyIn {

    fn convert_chunk(&mut self) -> NowResult<()> {
        let rows = self.fields.first().map_or(0, Vec::len);
        if rows == 0 {
            return Ok(());
        }
        let def = self.table.def();
        let schema = self.table.schema().clone();
        let mut columns: Vec<ArrayRef> = (0..def.columns.len())
            .map(|i| new_null_array(schema.field(i).data_type(), rows))
            .collect();
        for (k, &target) in self.targets.iter().enumerate() {
            let texts = std::mem::take(&mut self.fields[k]);
            let ty = schema.field(target).data_type();
            columns[target] = values::parse_column(&texts, ty).map_err(|bad| {
                bad_copy(
                    "22P02",
                    format!("invalid input syntax for type {}: \"{}\"", def.columns[target].ty.pg_name(), bad.value),
                    format!(
                        "COPY {}, line {}, column {}: \"{}\"",
                        def.name,
                        self.first_line_of_chunk + bad.row + self.splitter.header_lines(),
                        def.columns[target].name,
                        bad.value
                    ),
                )
            })?;
        }
        // NOT NULL and types are checked by the writer's `conform`.
        let batch = RecordBatch::try_new(self.relaxed_schema(), columns).map_err(datafusion::error::DataFusionError::from)?;
        self.batches.push(batch);
        self.first_line_of_chunk = self.line + 1;
        Ok(())
    }

    fn relaxed_schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        let fields: Vec<_> = self.table.schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
    }

    /// Ends the COPY: converts what is left and writes everything in one atomic write.
    pub async fn finish(mut self) -> NowResult<u64> {
        for record in self.splitter.finish()? {
            self.add_record(record)?;
        }
        self.convert_chunk()?;
        if self.batches.is_empty() {
            return Ok(0);
        }
        let all = datafusion::arrow::compute::concat_batches(&self.relaxed_schema(), &self.batches)
            .map_err(datafusion::error::DataFusionError::from)?;
        Ok(write::insert(&self.table, all, OnConflict::Error).await?)
    }
}

fn bad_copy(code: &'static str, message: String, context: String) -> NowError {
    NowError::InvalidValue { code, message, detail: Some(context) }
}
