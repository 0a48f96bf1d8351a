//! Arrow batches to Postgres wire rows (via `arrow-pg`), for query results and COPY TO.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use futures::stream;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyCsvOptions, CopyEncoder, CopyTextOptions, FieldInfo, QueryResponse};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use pgwire::types::format::FormatOptions;

use crate::copy::format::CopyFormat;

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

/// COPY TO STDOUT payloads: one CopyData per row (the CSV header rides with the first row,
/// so that the COPY row count stays right).
pub fn copy_rows(schema: &Schema, batches: &[RecordBatch], format: &CopyFormat) -> PgWireResult<Vec<CopyData>> {
    let fields = Arc::new(fields(schema, &Format::UnifiedText, None)?);
    let delimiter = (format.delimiter as char).to_string();
    let mut encoder = if format.csv {
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
    let mut out = Vec::new();
    let mut header = format.header.then(|| {
        let names: Vec<String> = schema.fields().iter().map(|f| csv_quote(f.name(), format)).collect();
        format!("{}\n", names.join(&delimiter))
    });
    for batch in batches {
        for row in 0..batch.num_rows() {
            for (i, (col, field)) in batch.columns().iter().zip(schema.fields()).enumerate() {
                let pg_field = &fields[i];
                arrow_pg::encoder::encode_value(&mut encoder, col, row, field, pg_field)?;
            }
            let data = arrow_pg::encoder::Encoder::take_row(&mut encoder);
            out.push(match header.take() {
                Some(h) => {
                    let mut bytes = h.into_bytes();
                    bytes.extend_from_slice(&data.data);
                    CopyData::new(Bytes::from(bytes))
                }
                None => data,
            });
        }
    }
    if let Some(h) = header {
        out.push(CopyData::new(Bytes::from(h.into_bytes())));
    }
    Ok(out)
}

fn csv_quote(name: &str, format: &CopyFormat) -> String {
    let q = format.quote as char;
    if name.contains([format.delimiter as char, q, '\n', '\r']) {
        format!("{q}{}{q}", name.replace(q, &format!("{q}{q}")))
    } else {
        name.to_string()
    }
}
