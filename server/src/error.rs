//! The server's error type and the one place errors become SQLSTATEs.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use nowdb_catalog::{CatalogError, CatalogErrorKind};
use nowdb_models::{ModelError, ModelErrorKind};
use nowdb_storage::{StorageError, StorageErrorKind};
use nowdb_views::{ViewError, ViewErrorKind};
use pgwire::error::{ErrorInfo, PgWireError};
use thiserror::Error;

/// Anything a statement can fail with.
#[derive(Debug, Error)]
pub enum NowError {
    /// SQL that does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Valid SQL nowdb does not support.
    #[error("{0}")]
    Unsupported(String),
    /// A bad value for a parameter, setting or COPY field, with its SQLSTATE.
    #[error("{message}")]
    InvalidValue {
        /// SQLSTATE (22xxx class).
        code: &'static str,
        /// Message for the client.
        message: String,
        /// Optional CONTEXT-like detail.
        detail: Option<String>,
    },
    /// An error with an explicit SQLSTATE decided where it happened.
    #[error("{message}")]
    Coded {
        /// SQLSTATE.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Canceled by a cancel request or a timeout.
    #[error("canceling statement due to user request")]
    Canceled,
    /// Catalog / table write errors.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Query engine errors.
    #[error(transparent)]
    Engine(#[from] DataFusionError),
    /// Storage errors.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Continuous view errors.
    #[error(transparent)]
    View(#[from] ViewError),
    /// A model failed to load or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Wire protocol errors from pgwire.
    #[error(transparent)]
    Wire(#[from] PgWireError),
}

/// Result type of the server.
pub type NowResult<T> = Result<T, NowError>;

impl NowError {
    /// An error with an explicit SQLSTATE.
    pub fn coded(code: &'static str, message: impl Into<String>) -> Self {
        NowError::Coded { code, message: message.into() }
    }

    /// The SQLSTATE, message and detail Postgres would send.
    pub fn to_error_info(&self) -> ErrorInfo {
        let (code, message, detail) = match self {
            NowError::Syntax(m) => ("42601", m.clone(), None),
            NowError::Unsupported(m) => ("0A000", m.clone(), None),
            NowError::InvalidValue { code, message, detail } => (*code, message.clone(), detail.clone()),
            NowError::Coded { code, message } => (*code, message.clone(), None),
            NowError::Canceled => ("57014", self.to_string(), None),
            NowError::Catalog(e) => catalog_sqlstate(e),
            NowError::Engine(e) => datafusion_sqlstate(e),
            NowError::Storage(e) => (storage_sqlstate(e.kind()), e.to_string(), None),
            NowError::View(e) => match (e.kind(), e) {
                (_, ViewError::Catalog(c)) => catalog_sqlstate(c),
                (_, ViewError::DataFusion(d)) => datafusion_sqlstate(d),
                (_, ViewError::Storage(s)) => (storage_sqlstate(s.kind()), s.to_string(), None),
                (ViewErrorKind::FeatureNotSupported, _) => ("0A000", e.to_string(), None),
                (ViewErrorKind::InvalidDefinition, _) => ("42P16", e.to_string(), None),
                _ => ("XX000", e.to_string(), None),
            },
            NowError::Model(e) => (model_sqlstate(e.kind()), e.to_string(), None),
            NowError::Wire(e) => {
                let info: ErrorInfo = clone_wire_error(e);
                return info;
            }
        };
        let mut info = ErrorInfo::new("ERROR".to_owned(), code.to_owned(), message);
        info.detail = detail;
        info
    }
}

impl From<NowError> for PgWireError {
    fn from(e: NowError) -> Self {
        match e {
            NowError::Wire(w) => w,
            other => PgWireError::UserError(Box::new(other.to_error_info())),
        }
    }
}

impl From<ParserError> for NowError {
    fn from(e: ParserError) -> Self {
        NowError::Syntax(parser_message(&e))
    }
}

fn parser_message(e: &ParserError) -> String {
    match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".into(),
    }
}

fn clone_wire_error(e: &PgWireError) -> ErrorInfo {
    match e {
        PgWireError::UserError(info) => {
            let mut copy = ErrorInfo::new(info.severity.clone(), info.code.clone(), info.message.clone());
            copy.detail = info.detail.clone();
            copy
        }
        other => ErrorInfo::new("ERROR".to_owned(), "08P01".to_owned(), other.to_string()),
    }
}

fn model_sqlstate(kind: ModelErrorKind) -> &'static str {
    match kind {
        ModelErrorKind::UndefinedModel => "42704",
        ModelErrorKind::UndefinedFunction => "42883",
        ModelErrorKind::DatatypeMismatch => "42804",
        ModelErrorKind::InvalidParameterValue => "22023",
        ModelErrorKind::FeatureNotSupported => "0A000",
        ModelErrorKind::Internal => "XX000",
    }
}

fn storage_sqlstate(kind: StorageErrorKind) -> &'static str {
    match kind {
        StorageErrorKind::Io => "58030",
        StorageErrorKind::DiskFull => "53100",
        StorageErrorKind::Corruption => "XX001",
        StorageErrorKind::InvalidInput => "22023",
    }
}

fn catalog_sqlstate(e: &CatalogError) -> (&'static str, String, Option<String>) {
    let code = match e.kind() {
        CatalogErrorKind::DuplicateTable => "42P07",
        CatalogErrorKind::UndefinedTable => "42P01",
        CatalogErrorKind::UndefinedColumn => "42703",
        CatalogErrorKind::UndefinedObject => "42704",
        CatalogErrorKind::DuplicateObject => "42710",
        CatalogErrorKind::InvalidDefinition => "42P16",
        CatalogErrorKind::UniqueViolation => "23505",
        CatalogErrorKind::NotNullViolation => "23502",
        CatalogErrorKind::Cardinality => "21000",
        CatalogErrorKind::FeatureNotSupported => "0A000",
        CatalogErrorKind::DependentObjectsStillExist => "2BP01",
        CatalogErrorKind::WrongObjectType => "42809",
        CatalogErrorKind::Storage(k) => storage_sqlstate(k),
        CatalogErrorKind::Engine => {
            if let CatalogError::DataFusion(df) = e {
                return datafusion_sqlstate(df);
            }
            "XX000"
        }
    };
    (code, e.to_string(), e.detail().map(str::to_owned))
}

/// Classifies a DataFusion error. DataFusion has no SQLSTATEs, so this reads the error's
/// variant first and its message only where the variant is too coarse.
pub fn datafusion_sqlstate(e: &DataFusionError) -> (&'static str, String, Option<String>) {
    use datafusion::arrow::error::ArrowError;
    use datafusion::common::SchemaError;
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::Shared(inner) => datafusion_sqlstate(inner),
        DataFusionError::Collection(errs) if !errs.is_empty() => datafusion_sqlstate(&errs[0]),
        DataFusionError::SQL(p, _) => ("42601", parser_message(p), None),
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound { field, .. } => {
                ("42703", format!("column \"{}\" does not exist", field.name), None)
            }
            SchemaError::AmbiguousReference { field } => {
                ("42702", format!("column reference \"{}\" is ambiguous", field.name), None)
            }
            other => ("42701", other.to_string(), None),
        },
        DataFusionError::NotImplemented(m) => ("0A000", m.clone(), None),
        DataFusionError::ResourcesExhausted(m) => ("53200", m.clone(), None),
        DataFusionError::Configuration(m) => ("22023", m.clone(), None),
        DataFusionError::Plan(m) => (plan_sqlstate(m), plan_message(m), None),
        DataFusionError::Execution(m) => (execution_sqlstate(m), m.clone(), None),
        DataFusionError::ArrowError(a, _) if matches!(a.as_ref(), ArrowError::ExternalError(_)) => {
            let ArrowError::ExternalError(inner) = a.as_ref() else { return ("XX000", a.to_string(), None) };
            if let Some(d) = inner.downcast_ref::<DataFusionError>() {
                datafusion_sqlstate(d)
            } else if let Some(m) = inner.downcast_ref::<ModelError>() {
                (model_sqlstate(m.kind()), m.to_string(), None)
            } else {
                ("XX000", inner.to_string(), None)
            }
        }
        DataFusionError::ArrowError(a, _) => {
            let code = match a.as_ref() {
                ArrowError::CastError(m) if m.contains("Can't cast value") => "22003",
                ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
                ArrowError::DivideByZero => "22012",
                ArrowError::ArithmeticOverflow(_) => "22003",
                ArrowError::ComputeError(m) => execution_sqlstate(m),
                _ => "XX000",
            };
            (code, a.to_string(), None)
        }
        DataFusionError::External(inner) => {
            if let Some(c) = inner.downcast_ref::<CatalogError>() {
                catalog_sqlstate(c)
            } else if let Some(d) = inner.downcast_ref::<DataFusionError>() {
                datafusion_sqlstate(d)
            } else if let Some(m) = inner.downcast_ref::<ModelError>() {
                (model_sqlstate(m.kind()), m.to_string(), None)
            } else if let Some(s) = inner.downcast_ref::<StorageError>() {
                (storage_sqlstate(s.kind()), s.to_string(), None)
            } else {
                ("XX000", inner.to_string(), None)
            }
        }
        other => ("XX000", other.to_string(), None),
    }
}

fn plan_sqlstate(m: &str) -> &'static str {
    let lower = m.to_ascii_lowercase();
    if lower.contains("table '") && lower.contains("not found") {
        "42P01"
    } else if lower.contains("no function matches")
        || lower.contains("invalid function")
        || lower.contains("function does not exist")
    {
        "42883"
    } else if lower.contains("coerce")
        || lower.contains("cannot infer common")
        || lower.contains("cannot cast")
        || lower.contains("unsupported cast")
        || lower.contains("type mismatch")
        || lower.contains("does not support arguments of type")
    {
        "42804"
    } else if lower.contains("column count") || lower.contains("same schema") || lower.contains("more values") {
        "42601"
    } else if lower.contains("placeholder") && lower.contains("not provided") {
        "42P02"
    } else if lower.contains("placeholder") {
        "42P18"
    } else {
        "42000"
    }
}

/// Postgres-style text for the errors clients match on.
fn plan_message(m: &str) -> String {
    let lower = m.to_ascii_lowercase();
    if let (Some(start), true) = (lower.find("table '"), lower.contains("not found")) {
        let rest = &m[start + 7..];
        if let Some(end) = rest.find('\'') {
            let name = rest[..end].rsplit('.').next().unwrap_or(&rest[..end]);
            return format!("relation \"{name}\" does not exist");
        }
    }
    m.to_string()
}

fn execution_sqlstate(m: &str) -> &'static str {
    let lower = m.to_ascii_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        "22012"
    } else if lower.contains("overflow") || lower.contains("out of range") || lower.contains("can't cast value") {
        "22003"
    } else if lower.contains("placeholder") {
        "42P02"
    } else if lower.contains("cast") || lower.contains("parse") || lower.contains("invalid input") {
        "22P02"
    } else {
        "XX000"
    }
}
