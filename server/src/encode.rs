//! Arrow batches to Postgres wire rows, for query results and COPY TO: `arrow-pg` encodes
//! most types; floats, timestamps and times go through [`crate::pgtext`] so that their text
//! form is PostgreSQL's.

use std::sync::Arc;

use arrow_pg::encoder::Encoder;
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, DurationMicrosecondArray, Float32Array, IntervalMonthDayNanoArray, Float64Array, RecordBatch, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions as ArrowFormatOptions};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, DurationMicrosecondType, Field, Float32Type, IntervalMonthDayNanoType, IntervalUnit, Float64Type, Schema, SchemaRef, TimeUnit};
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

/// Field metadata naming the `pg_class` OID and column number a result column comes from.
const TABLE_OID_KEY: &str = "nowdb.table_oid";
const ATTNUM_KEY: &str = "nowdb.attnum";

/// `schema` with each column's origin (`pg_class` OID, column number) recorded for the row
/// description (pgjdbc's `getTableName`, node-postgres' `tableID`).
pub fn with_origins(schema: SchemaRef, origins: &[Option<(i32, i16)>]) -> SchemaRef {
    if origins.iter().all(Option::is_none) || origins.len() != schema.fields().len() {
        return schema;
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .zip(origins)
        .map(|(f, origin)| match origin {
            Some((oid, attnum)) => {
                let mut metadata = f.metadata().clone();
                metadata.insert(TABLE_OID_KEY.into(), oid.to_string());
                metadata.insert(ATTNUM_KEY.into(), attnum.to_string());
                Arc::new(f.as_ref().clone().with_metadata(metadata))
            }
            None => f.clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Describes the columns of `schema` for RowDescription.
pub fn fields(schema: &Schema, format: &Format, options: Option<Arc<FormatOptions>>) -> PgWireResult<Vec<FieldInfo>> {
    let mut fields = described(schema, format, options)?;
    for (info, field) in fields.iter_mut().zip(schema.fields()) {
        let origin = field.metadata().get(TABLE_OID_KEY).zip(field.metadata().get(ATTNUM_KEY));
        if let Some((Ok(oid), Ok(attnum))) = origin.map(|(o, a)| (o.parse::<i32>(), a.parse::<i16>())) {
            let options = info.format_options().clone();
            *info = FieldInfo::new(info.name().to_string(), Some(oid), Some(attnum), info.datatype().clone(), info.format())
                .with_format_options(options);
        }
    }
    Ok(fields)
}

fn described(schema: &Schema, format: &Format, options: Option<Arc<FormatOptions>>) -> PgWireResult<Vec<FieldInfo>> {
    if schema.fields().iter().any(|f| stale_type_tag(f).is_some()) {
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| match stale_type_tag(f) {
                Some(key) => {
                    let mut metadata = f.metadata().clone();
                    metadata.remove(key);
                    Arc::new(f.as_ref().clone().with_metadata(metadata))
                }
                None => f.clone(),
            })
            .collect();
        return arrow_pg::datatypes::arrow_schema_to_pg_fields(&Schema::new(fields), format, options);
    }
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, options)
}

/// A pg_catalog type tag (`oid` alias, `"char"`) that an expression carried over to a value
/// of another type (`elemtype::regtype::text` keeps the oid tag on text): describing the
/// column by it would announce an oid and send text.
fn stale_type_tag(field: &Field) -> Option<&'static str> {
    use arrow_pg::datatypes::{PG_CHAR_KEY, PG_OID_ALIAS_KEY};
    let metadata = field.metadata();
    if metadata.contains_key(PG_OID_ALIAS_KEY) && !matches!(field.data_type(), DataType::Int32 | DataType::UInt32) {
        return Some(PG_OID_ALIAS_KEY);
    }
    if metadata.contains_key(PG_CHAR_KEY) && !matches!(field.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
        return Some(PG_CHAR_KEY);
    }
    None
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
    TimestampTz(TimestampMicrosecondArray),
    Time(Time64MicrosecondArray),
    Numeric(Decimal128Array, i8),
    Interval(IntervalMonthDayNanoArray),
    Duration(DurationMicrosecondArray),
    /// An array column sent as text, its elements rendered as PostgreSQL renders them:
    /// `{1.5,2,NULL}`, `{"2024-01-01 00:00:00"}`.
    ListText(ArrayRef),
    /// An array column sent in binary: empty arrays here, the rest by arrow-pg.
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
            // A duration (timestamp - timestamp) is an interval of microseconds.
            DataType::Duration(_) => {
                let micros = cast(array, &DataType::Duration(TimeUnit::Microsecond)).map_err(api_error)?;
                Self::Duration(micros.as_primitive::<DurationMicrosecondType>().clone())
            }
            DataType::Interval(_) => {
                let mdn = cast(array, &DataType::Interval(IntervalUnit::MonthDayNano)).map_err(api_error)?;
                Self::Interval(mdn.as_primitive::<IntervalMonthDayNanoType>().clone())
            }
            DataType::Decimal128(_, scale) => Self::Numeric(array.as_primitive::<Decimal128Type>().clone(), *scale),
            DataType::Timestamp(_, tz) => {
                let micros = cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(api_error)?;
                let micros = micros.as_primitive().clone();
                // A timestamptz prints in the session time zone, which is UTC in nowdb.
                match tz {
                    Some(_) => Self::TimestampTz(micros),
                    None => Self::Timestamp(micros),
                }
            }
            DataType::Time32(_) | DataType::Time64(_) => {
                let micros = cast(array, &DataType::Time64(TimeUnit::Microsecond)).map_err(api_error)?;
                Self::Time(micros.as_primitive().clone())
            }
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) if format == FieldFormat::Text => {
                Self::ListText(array.clone())
            }
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => Self::List(array.clone()),
            _ => Self::Arrow(array.clone()),
        })
    }

    fn encode<E: Encoder>(&self, encoder: &mut E, row: usize, field: &Field, pg_field: &FieldInfo) -> PgWireResult<()> {
        let element = match pg_field.datatype().kind() {
            postgres_types::Kind::Array(element) => element.oid(),
            _ => 0,
        };
        match self.value(row, pg_field.format_options().extra_float_digits, element)? {
            Value::Pg(value) => encoder.encode_field(&value, pg_field),
            Value::Arrow(array) => arrow_pg::encoder::encode_value(encoder, array, row, field, pg_field),
        }
    }

    /// Value `row`: rendered by pgtext (`None` for NULL), or left to arrow-pg. `extra` is
    /// `extra_float_digits` (for array text); `element` the OID an empty array names.
    fn value(&self, row: usize, extra: i8, element: u32) -> PgWireResult<Value<'_>> {
        Ok(Value::Pg(match self {
            Self::Arrow(array) => return Ok(Value::Arrow(array)),
            _ if self.array().is_null(row) => None,
            Self::List(array) | Self::ListText(array) if list_len(array, row) == 0 => Some(PgText::EmptyArray(element)),
            Self::List(array) => return Ok(Value::Arrow(array)),
            Self::Float8(a) => Some(PgText::Float8(a.value(row))),
            Self::Float4(a) => Some(PgText::Float4(a.value(row))),
            Self::Timestamp(a) => a.value_as_datetime(row).map(PgText::Timestamp),
            Self::TimestampTz(a) => a.value_as_datetime(row).map(|t| PgText::TimestampTz(t.and_utc().fixed_offset())),
            Self::Time(a) => a.value_as_time(row).map(PgText::Time),
            Self::Numeric(a, scale) => Some(PgText::Numeric(a.value(row), *scale)),
            Self::Duration(a) => Some(PgText::Interval(0, 0, a.value(row))),
            Self::Interval(a) => {
                let v = a.value(row);
                Some(PgText::Interval(v.months, v.days, v.nanoseconds / 1000))
            }
            Self::ListText(a) => Some(PgText::Array(list_text(a, row, extra)?)),
        }))
    }

    fn array(&self) -> &dyn Array {
        match self {
            Self::Float8(a) => a,
            Self::Float4(a) => a,
            Self::Timestamp(a) | Self::TimestampTz(a) => a,
            Self::Time(a) => a,
            Self::Numeric(a, _) => a,
            Self::Interval(a) => a,
            Self::Duration(a) => a,
            Self::ListText(a) | Self::List(a) | Self::Arrow(a) => a.as_ref(),
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

/// The elements of `list`'s `row`.
fn list_values(list: &ArrayRef, row: usize) -> ArrayRef {
    match list.data_type() {
        DataType::List(_) => list.as_list::<i32>().value(row),
        DataType::LargeList(_) => list.as_list::<i64>().value(row),
        _ => list.as_fixed_size_list().value(row),
    }
}

/// The text form of an array: `{1.5,2,NULL}`, elements quoted as PostgreSQL's array_out
/// quotes them.
fn list_text(list: &ArrayRef, row: usize, extra_float_digits: i8) -> PgWireResult<String> {
    let values = list_values(list, row);
    let elements = ColumnSource::new(&values, FieldFormat::Text)?;
    let mut items = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        items.push(match elements.text(i, extra_float_digits)? {
            None => "NULL".to_string(),
            Some(t) if matches!(elements, ColumnSource::ListText(_)) => t,
            Some(t) => crate::pgtext::array_element(&t),
        });
    }
    Ok(format!("{{{}}}", items.join(",")))
}

/// How a value is encoded.
enum Value<'a> {
    Pg(Option<PgText>),
    Arrow(&'a ArrayRef),
}

impl ColumnSource {
    /// Value `i`'s text form (an array element's), `None` for NULL.
    fn text(&self, i: usize, extra: i8) -> PgWireResult<Option<String>> {
        if self.array().is_null(i) {
            return Ok(None);
        }
        Ok(Some(match self.value(i, extra, 0)? {
            Value::Pg(v) => v.map(|v| v.text(extra)).unwrap_or_default(),
            Value::Arrow(a) => match a.as_boolean_opt() {
                Some(b) => if b.value(i) { "t" } else { "f" }.to_string(),
                None => ArrayFormatter::try_new(a.as_ref(), &ArrowFormatOptions::default()).map_err(api_error)?.value(i).to_string(),
            },
        }))
    }
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
        matches!(self.encoder, RowEncoder::Binary(_))
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
        let binary = self.is_binary();
        let mut end = self.header.unwrap_or_default();
        if binary {
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
