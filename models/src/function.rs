//! [`ModelFunction`]: a model version as a DataFusion scalar function.
//!
//! The function holds the version it was made from: a plan keeps the `Arc` of the function it
//! was planned with, so a query in flight finishes on the version it started with when
//! `CREATE OR REPLACE MODEL` registers a new function under the same name.

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::Transformed;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::model::{argument_type, is_numeric, Model};
use crate::signature::Display;
use crate::ModelError;

/// A model callable from SQL.
#[derive(Debug)]
pub struct ModelFunction {
    model: Arc<Model>,
    signature: Signature,
}

impl ModelFunction {
    /// The function of `model`.
    pub fn new(model: Arc<Model>) -> Self {
        // Immutable: a given version always gives the same output for the same input, which
        // also lets continuous views use it. Any arguments: the checks against the graph are
        // in `return_type` (planning time) with nowdb's own errors, and `Model::score` casts.
        Self { model, signature: Signature::variadic_any(Volatility::Immutable) }
    }

    /// As a DataFusion UDF, to register.
    pub fn udf(model: Arc<Model>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self::new(model))
    }

    /// The model version it runs.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The model behind a UDF, if it is a model's function.
    pub fn of(udf: &ScalarUDF) -> Option<&Arc<Model>> {
        let any: &dyn Any = udf.inner().as_ref();
        any.downcast_ref::<ModelFunction>().map(|f| &f.model)
    }
}

impl PartialEq for ModelFunction {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.model, &other.model)
    }
}

impl Eq for ModelFunction {}

impl Hash for ModelFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.model.name().hash(state);
        self.model.version().hash(state);
    }
}

/// In a call of a model, gives each untyped `$n` argument the type of the model input it
/// feeds, so that clients that leave parameter types to the server (`SELECT fraud($2, f.n,
/// ...)`) are told to send a number. One step of a bottom-up expression rewrite.
pub fn type_model_arguments(e: Expr) -> DfResult<Transformed<Expr>> {
    let Expr::ScalarFunction(mut call) = e else { return Ok(Transformed::no(e)) };
    let Some(model) = ModelFunction::of(&call.func).cloned() else {
        return Ok(Transformed::no(Expr::ScalarFunction(call)));
    };
    let mut changed = false;
    for (i, arg) in call.args.iter_mut().enumerate() {
        if let (Expr::Placeholder(Placeholder { id, field: None }), Some(element)) = (&*arg, argument_type(model.signature(), i)) {
            let field = Arc::new(Field::new(id.as_str(), element.data_type(), true));
            *arg = Expr::Placeholder(Placeholder { id: id.clone(), field: Some(field) });
            changed = true;
        }
    }
    let e = Expr::ScalarFunction(call);
    Ok(if changed { Transformed::yes(e) } else { Transformed::no(e) })
}

fn external(e: ModelError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl ScalarUDFImpl for ModelFunction {
    fn name(&self) -> &str {
        self.model.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Checks the call against the graph's inputs at planning time: the number of
    /// arguments (42883) and that each is numeric (42804).
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        let sig = self.model.signature();
        let expected = || Display(self.model.name(), sig).to_string();
        if arg_types.len() != sig.arity() {
            let given: Vec<&str> = arg_types.iter().map(sql_type_name).collect();
            return Err(external(ModelError::WrongArity {
                name: self.model.name().to_string(),
                given: given.join(", "),
                signature: expected(),
            }));
        }
        if let Some((i, t)) = arg_types.iter().enumerate().find(|(i, t)| argument_type(sig, *i).is_none() || !is_numeric(t)) {
            return Err(external(ModelError::WrongType {
                name: self.model.name().to_string(),
                position: i + 1,
                given: sql_type_name(t).to_string(),
                signature: expected(),
            }));
        }
        Ok(sig.return_type())
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = self.model.score(&arrays, rows).map_err(external)?;
        Ok(ColumnarValue::Array(out))
    }
}

/// The Postgres name of an argument's type, for error messages.
fn sql_type_name(dt: &DataType) -> &str {
    match dt {
        DataType::Null => "unknown",
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint",
        DataType::Float16 | DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..) => "numeric",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(_, None) => "timestamp",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::Interval(_) => "interval",
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => "array",
        _ => "unsupported type",
    }
}
