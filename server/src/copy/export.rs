//! `COPY (query) TO 'file' (FORMAT parquet | csv [, HEADER] | text)`: a query's result
//! written to a file under the export directory, on the server.
//!
//! Batches stream from the query to a writer thread through a small channel, so memory stays
//! bounded by a few batches whatever the result's size. The file is written under a
//! temporary name and renamed when complete: a failed export leaves no partial file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::info;

use super::format::{CopyFormat, CopyKind};
use crate::encode::CopyRowEncoder;
use crate::error::{NowError, NowResult};

/// Batches in flight between the query and the writer.
const IN_FLIGHT: usize = 2;

/// Writes `batches` to `path` (already confined to the export directory) in `format`;
/// returns the number of rows written.
pub async fn write(path: PathBuf, schema: SchemaRef, mut batches: SendableRecordBatchStream, format: CopyFormat) -> NowResult<u64> {
    let (tx, rx) = mpsc::channel::<RecordBatch>(IN_FLIGHT);
    let target = path.clone();
    let writer = tokio::task::spawn_blocking(move || write_file(&target, schema, &format, rx));
    let mut failure = None;
    while let Some(batch) = batches.next().await {
        match batch {
            Ok(b) => {
                if tx.send(b).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Err(e) => {
                failure = Some(NowError::from(e));
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| NowError::coded("XX000", e.to_string()))?;
    match (failure, written) {
        (Some(e), _) => {
            let _ = std::fs::remove_file(temporary(&path));
            Err(e)
        }
        (None, Ok(rows)) => {
            std::fs::rename(temporary(&path), &path).map_err(|e| io_error(&path, e))?;
            info!(path = %path.display(), rows, "exported");
            Ok(rows)
        }
        (None, Err(e)) => {
            let _ = std::fs::remove_file(temporary(&path));
            Err(e)
        }
    }
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.partial", std::process::id()));
    path.with_file_name(name)
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> NowError {
    NowError::coded("58030", format!("could not write to file \"{}\": {e}", path.display()))
}

/// The writer thread: everything `rx` delivers, into the temporary file.
fn write_file(path: &Path, schema: SchemaRef, format: &CopyFormat, mut rx: mpsc::Receiver<RecordBatch>) -> NowResult<u64> {
    let tmp = temporary(path);
    let file = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    let mut rows = 0u64;
    if format.kind == CopyKind::Parquet {
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| io_error(&tmp, e))?;
        while let Some(batch) = rx.blocking_recv() {
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(|e| io_error(&tmp, e))?;
        }
        writer.close().map_err(|e| io_error(&tmp, e))?;
    } else {
        let mut out = BufWriter::new(file);
        let mut encoder = CopyRowEncoder::new(schema, format)?;
        while let Some(batch) = rx.blocking_recv() {
            rows += batch.num_rows() as u64;
            for line in encoder.rows(&batch)? {
                out.write_all(&line.data).map_err(|e| io_error(&tmp, e))?;
            }
        }
        if let Some(end) = encoder.finish() {
            out.write_all(&end.data).map_err(|e| io_error(&tmp, e))?;
        }
        out.into_inner().map_err(|e| io_error(&tmp, e.error()))?.sync_all().map_err(|e| io_error(&tmp, e))?;
    }
    Ok(rows)
}
