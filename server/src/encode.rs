//! Arrow batches to Postgres wire rows (via `arrow-pg`), for query results and COPY TO.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyCsvOptions, CopyEncoder, CopyTextOptions, FieldInfo, QueryResponse};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use pgwire::types::format::FormatOptions;

use crate::copy::format::CopyFormat;
use crate::error::NowError;

/// Describes the columns of `schema` for RowDescription.
pub fn fields(schema: &Schema, format: &Format, options: Option<Arc<FormatOptions>>) -> PgWireResult<Vec<FieldInfo>> {
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, options)
}

/// A query response over already computed batches.
pub fn query_response(
    schema: &Schema,
    batches: Vec<RecordBatch>,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields(schema, format, Some(options))?);
    Ok(rows_response(fields, batches))
}

/// A query response with a ready row description.
pub fn rows_response(fields: Arc<Vec<FieldInfo>>, batches: Vec<RecordBatch>) -> QueryResponse {
    let row_fields = fields.clone();
    let rows = batches
        .into_iter()
        .flat_map(move |b| arrow_pg::datatypes::encode_recordbatch(row_fields.clone(), b));
    QueryResponse::new(fields, stream::iter(rows.collect::<Vec<_>>()))
}

/// Encodes rows for COPY TO (STDOUT or a CSV file), batch by batch: one CopyData per row;
/// the CSV header rides with the first row (so that the COPY row count stays right), or
/// comes alone at the end when there are no rows.
pub struct CopyRowEncoder {
    schema: SchemaRef,
    fields: Arc<Vec<FieldInfo>>,
    encoder: CopyEncoder,
    header: Option<String>,
}

impl CopyRowEncoder {
    /// An encoder of rows of `schema` in `format` (text or CSV).
    pub fn new(schema: SchemaRef, format: &CopyFormat) -> PgWireResult<Self> {
        let fields = Arc::new(fields(&schema, &Format::UnifiedText, None)?);
        let delimiter = (format.delimiter as char).to_string();
        let encoder = if format.csv {
            CopyEncoder::new_csv(
                fields.clone(),
                CopyCsvOptions {
                    delimiter: delimiter.as_str().into(),
                    quote: (format.quote as char).to_string().as_str().into(),
                    escape: (format.escape as char).to_string().as_str().into(),
                    null_string: format.null.as_str().into(),
                    force_quote: vec![],
                },
            )
        } else {
            CopyEncoder::new_text(
                fields.clone(),
                CopyTextOptions { delimiter: delimiter.as_str().into(), null_string: format.null.as_str().into() },
            )
        };
        let header = format.header.then(|| {
            let names: Vec<String> = schema.fields().iter().map(|f| csv_quote(f.name(), format)).collect();
            format!("{}\n", names.join(&delimiter))
        });
        Ok(Self { schema, fields, encoder, header })
    }

    /// The rows of `batch`.
    pub fn rows(&mut self, batch: &RecordBatch) -> PgWireResult<Vec<CopyData>> {
        let mut out = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            for (i, (col, field)) in batch.columns().iter().zip(self.schema.fields()).enumerate() {
                arrow_pg::encoder::encode_value(&mut self.encoder, col, row, field, &self.fields[i])?;
            }
            let data = arrow_pg::encoder::Encoder::take_row(&mut self.encoder);
            out.push(match self.header.take() {
                Some(h) => {
                    let mut bytes = h.into_bytes();
                    bytes.extend_from_slice(&data.data);
                    CopyData::new(Bytes::from(bytes))
                }
                None => data,
            });
        }
        Ok(out)
    }

    /// What is left after the last row: the header, when there were no rows.
    pub fn finish(self) -> Option<CopyData> {
        self.header.map(|h| CopyData::new(Bytes::from(h.into_bytes())))
    }
}

/// COPY TO STDOUT data: `batches` encoded as they arrive.
pub fn copy_stream(batches: SendableRecordBatchStream, encoder: CopyRowEncoder) -> impl Stream<Item = PgWireResult<CopyData>> + Send + 'static {
    stream::unfold(Some((batches, encoder)), |state| async move {
        let (mut batches, mut encoder) = state?;
        match batches.next().await {
            Some(Ok(batch)) => {
                let rows = encoder.rows(&batch);
                Some((rows, Some((batches, encoder))))
            }
            Some(Err(e)) => Some((Err(NowError::from(e).into()), None)),
            None => Some((Ok(encoder.finish().into_iter().collect()), None)),
        }
    })
    .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
    .try_flatten()
}

fn csv_quote(name: &str, format: &CopyFormat) -> String {
    let q = format.quote as char;
    if name.contains([format.delimiter as char, q, '\n', '\r']) {
        format!("{q}{}{q}", name.replace(q, &format!("{q}{q}")))
    } else {
        name.to_string()
    }
}
