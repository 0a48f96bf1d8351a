//! Arrow batches to Postgres wire rows, for query results and COPY TO: `arrow-pg` encodes
//! most types; floats, timestamps and times go through [`crate::pgtext`] so that their text
//! form is PostgreSQL's.

use std::sync::Arc;

use arrow_pg::encoder::Encoder;
use bytes::Bytes;
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, RecordBatch, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema, SchemaRef, TimeUnit};
use datafusion::execution::SendableRecordBatchStream;
use futures::{stream, Stream, StreamExt, TryStreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyEncoder, DataRowEncoder, FieldFormat, FieldInfo, QueryResponse};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::types::format::FormatOptions;

use crate::copy::format::{CopyFormat, CopyKind};
use crate::copy::text_out::{self, CopyTextEncoder};
use crate::error::NowError;
use crate::pgtext::PgText;

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
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in &batches {
        match BatchColumns::new(batch, &fields) {
            Ok(columns) => {
                for row in 0..batch.num_rows() {
                    rows.push(columns.encode_row(&mut encoder, row));
                }
            }
            Err(e) => rows.push(Err(e)),
        }
    }
    QueryResponse::new(fields, stream::iter(rows))
}

/// A batch's columns, prepared once for encoding row by row.
struct BatchColumns<'a> {
    columns: Vec<ColumnSource>,
    schema: SchemaRef,
    fields: &'a [FieldInfo],
}

/// Where one column's values come from.
enum ColumnSource {
    Float8(Float64Array),
    Float4(Float32Array),
    Timestamp(TimestampMicrosecondArray),
    TimestampTz(TimestampMicrosecondArray, Tz),
    Time(Time64MicrosecondArray),
    /// A float array column sent as text: `{1.5,2,NULL}`.
    FloatListText(ArrayRef),
    /// Any other array column: empty arrays here, the rest by arrow-pg.
    List(ArrayRef),
    /// Everything else: arrow-pg's encoding.
    Arrow(ArrayRef),
}

fn api_error(e: impl std::error::Error + Send + Sync + 'static) -> PgWireError {
    PgWireError::ApiError(Box::new(e))
}

impl<'a> BatchColumns<'a> {
    fn new(batch: &RecordBatch, fields: &'a [FieldInfo]) -> PgWireResult<Self> {
        let columns = batch
            .columns()
            .iter()
            .zip(fields)
            .map(|(array, pg_field)| ColumnSource::new(array, pg_field.format()))
            .collect::<PgWireResult<_>>()?;
        Ok(Self { columns, schema: batch.schema(), fields })
    }

    fn encode_row<E: Encoder>(&self, encoder: &mut E, row: usize) -> PgWireResult<E::Item> {
        for (i, column) in self.columns.iter().enumerate() {
            column.encode(encoder, row, self.schema.field(i), &self.fields[i])?;
        }
        Ok(encoder.take_row())
    }
}

impl ColumnSource {
    fn new(array: &ArrayRef, format: FieldFormat) -> PgWireResult<Self> {
        Ok(match array.data_type() {
            DataType::Float64 => Self::Float8(array.as_primitive::<Float64Type>().clone()),
            DataType::Float32 => Self::Float4(array.as_primitive::<Float32Type>().clone()),
            DataType::Timestamp(_, tz) => {
                let micros = cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(api_error)?;
                let micros = micros.as_primitive().clone();
                match tz {
                    Some(tz) => Self::TimestampTz(micros, tz.parse().map_err(api_error)?),
                    None => Self::Timestamp(micros),
                }
            }
            DataType::Time32(_) | DataType::Time64(_) => {
                let micros = cast(array, &DataType::Time64(TimeUnit::Microsecond)).map_err(api_error)?;
                Self::Time(micros.as_primitive().clone())
            }
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _)
                if format == FieldFormat::Text && matches!(item.data_type(), DataType::Float32 | DataType::Float64) =>
            {
                Self::FloatListText(array.clone())
            }
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => Self::List(array.clone()),
            _ => Self::Arrow(array.clone()),
        })
    }

    fn encode<E: Encoder>(&self, encoder: &mut E, row: usize, field: &Field, pg_field: &FieldInfo) -> PgWireResult<()> {
        let value = match self {
            Self::Arrow(array) => return arrow_pg::encoder::encode_value(encoder, array, row, field, pg_field),
            _ if self.array().is_null(row) => None,
            Self::List(array) | Self::FloatListText(array) if list_len(array, row) == 0 => {
                let element = match pg_field.datatype().kind() {
                    postgres_types::Kind::Array(element) => element.oid(),
                    _ => 0,
                };
                Some(PgText::EmptyArray(element))
            }
            Self::List(array) => return arrow_pg::encoder::encode_value(encoder, array, row, field, pg_field),
            Self::Float8(a) => Some(PgText::Float8(a.value(row))),
            Self::Float4(a) => Some(PgText::Float4(a.value(row))),
            Self::Timestamp(a) => a.value_as_datetime(row).map(PgText::Timestamp),
            Self::TimestampTz(a, tz) => a.value_as_datetime_with_tz(row, *tz).map(|t| PgText::TimestampTz(t.fixed_offset())),
            Self::Time(a) => a.value_as_time(row).map(PgText::Time),
            Self::FloatListText(a) => Some(PgText::Array(float_list_text(a, row, pg_field))),
        };
        encoder.encode_field(&value, pg_field)
    }

    fn array(&self) -> &dyn Array {
        match self {
            Self::Float8(a) => a,
            Self::Float4(a) => a,
            Self::Timestamp(a) | Self::TimestampTz(a, _) => a,
            Self::Time(a) => a,
            Self::FloatListText(a) | Self::List(a) | Self::Arrow(a) => a.as_ref(),
        }
    }
}

/// The number of elements of `list`'s `row`.
fn list_len(list: &ArrayRef, row: usize) -> usize {
    match list.data_type() {
        DataType::List(_) => list.as_list::<i32>().value_length(row) as usize,
        DataType::LargeList(_) => list.as_list::<i64>().value_length(row) as usize,
        _ => list.as_fixed_size_list().value_length() as usize,
    }
}

/// The text form of a float array: `{1.5,2,NULL}`.
fn float_list_text(list: &ArrayRef, row: usize, pg_field: &FieldInfo) -> String {
    let values = match list.data_type() {
        DataType::List(_) => list.as_list::<i32>().value(row),
        DataType::LargeList(_) => list.as_list::<i64>().value(row),
        _ => list.as_fixed_size_list().value(row),
    };
    let extra = pg_field.format_options().extra_float_digits;
    let items: Vec<String> = (0..values.len())
        .map(|i| {
            if values.is_null(i) {
                "NULL".to_string()
            } else if let Some(f) = values.as_primitive_opt::<Float64Type>() {
                crate::pgtext::float8(f.value(i), extra)
            } else {
                crate::pgtext::float4(values.as_primitive::<Float32Type>().value(i), extra)
            }
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

/// Encodes rows for COPY TO (STDOUT or a file), batch by batch: one CopyData per row; the
/// CSV header rides with the first row (so that the COPY row count stays right), or comes
/// alone at the end when there are no rows. In the binary format pgwire's encoder puts the
/// `PGCOPY` header before the first row, and [`CopyRowEncoder::finish`] gives the trailer
/// (with the header when there were no rows, in one message as PostgreSQL sends it).
pub struct CopyRowEncoder {
    fields: Arc<Vec<FieldInfo>>,
    encoder: RowEncoder,
    header: Option<Vec<u8>>,
}

/// pgwire's encoder for the binary format; ours for text and CSV (PostgreSQL's quoting).
enum RowEncoder {
    Binary(CopyEncoder),
    Text(CopyTextEncoder),
}

/// The binary COPY header: signature, flags, header extension length.
const PGCOPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

impl CopyRowEncoder {
    /// An encoder of rows of `schema` in `format` (text, CSV or binary).
    pub fn new(schema: SchemaRef, format: &CopyFormat) -> PgWireResult<Self> {
        if format.kind == CopyKind::Binary {
            let fields = Arc::new(fields(&schema, &Format::UnifiedBinary, None)?);
            let encoder = RowEncoder::Binary(CopyEncoder::new_binary(fields.clone()));
            return Ok(Self { fields, encoder, header: Some(PGCOPY_HEADER.to_vec()) });
        }
        let fields = Arc::new(fields(&schema, &Format::UnifiedText, None)?);
        let encoder = RowEncoder::Text(CopyTextEncoder::new(format));
        let header = format.header.then(|| {
            let mut line = bytes::BytesMut::new();
            for (i, f) in schema.fields().iter().enumerate() {
                if i > 0 {
                    line.extend_from_slice(&[format.delimiter]);
                }
                text_out::push_value(&mut line, f.name().as_bytes(), format);
            }
            line.extend_from_slice(b"\n");
            line.to_vec()
        });
        Ok(Self { fields, encoder, header })
    }

    /// Whether this encoder writes the binary format.
    pub fn is_binary(&self) -> bool {
        self.fields.first().is_some_and(|f| f.format() == FieldFormat::Binary)
    }

    /// The rows of `batch`.
    pub fn rows(&mut self, batch: &RecordBatch) -> PgWireResult<Vec<CopyData>> {
        let mut out = Vec::with_capacity(batch.num_rows());
        let columns = BatchColumns::new(batch, &self.fields)?;
        for row in 0..batch.num_rows() {
            let data = match &mut self.encoder {
                RowEncoder::Binary(e) => columns.encode_row(e, row)?,
                RowEncoder::Text(e) => columns.encode_row(e, row)?,
            };
            out.push(match self.header.take() {
                Some(_) if self.is_binary() => data,
                Some(mut bytes) => {
                    bytes.extend_from_slice(&data.data);
                    CopyData::new(Bytes::from(bytes))
                }
                None => data,
            });
        }
        Ok(out)
    }

    /// What is left after the last row: the header, when there were no rows; the binary
    /// trailer.
    pub fn finish(self) -> Option<CopyData> {
        let mut end = self.header.unwrap_or_default();
        if self.fields.first().is_some_and(|f| f.format() == FieldFormat::Binary) {
            end.extend_from_slice(&(-1i16).to_be_bytes());
        }
        (!end.is_empty()).then(|| CopyData::new(Bytes::from(end)))
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
