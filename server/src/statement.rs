//! Statement dispatch: [`prepare`] plans a parsed statement (and infers its parameter types),
//! [`execute`] runs it with bound parameters. The simple protocol is prepare + execute with no
//! parameters, so both protocols share one path.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::sql::sqlparser::ast::{
    CopySource, CopyTarget, Expr as SqlExpr, ObjectType, OnConflict, Reset, Set, Statement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::scalar::ScalarValue;
use nowdb_catalog::provider::lookup::PointLookup;
use pgwire::api::results::{FieldInfo, Tag};
use pgwire::api::Type;
use tracing::{debug, warn};

use crate::copy::{self, CopyIn};
use crate::ddl::{self, ident_name};
use crate::dml;
use crate::error::{NowError, NowResult};
use crate::model_sql::{self, ModelStatement};
use crate::sink_sql::SinkStatement;
use crate::privileges::Access;
use crate::session::{CopyState, Session};

/// A parsed statement: SQL the Postgres parser knows, or one of nowdb's model statements.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// Postgres SQL.
    Sql(Box<Statement>),
    /// `CREATE MODEL` / `DROP MODEL`.
    Model(ModelStatement),
    /// `CREATE SINK` / `DROP SINK`.
    Sink(SinkStatement),
}

impl std::fmt::Display for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Parsed::Sql(s) => s.fmt(f),
            Parsed::Model(m) => m.fmt(f),
            Parsed::Sink(k) => k.fmt(f),
        }
    }
}

/// What a statement needs at execution time.
#[derive(Debug, Clone)]
pub enum PlanKind {
    /// A query DataFusion runs (SELECT, VALUES, EXPLAIN, ...).
    Query(LogicalPlan),
    /// INSERT, with its ON CONFLICT clause.
    Insert(LogicalPlan, Option<Box<OnConflict>>),
    /// UPDATE.
    Update(LogicalPlan),
    /// DELETE.
    Delete(LogicalPlan),
    /// Everything nowdb runs itself (DDL, SET/SHOW, COPY, transactions).
    Utility,
}

/// A statement ready to execute any number of times.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement as parsed.
    pub stmt: Parsed,
    /// Its SQL text (for logs and spans, computed once).
    pub sql: String,
    /// How it executes.
    pub kind: PlanKind,
    /// Parameter types DataFusion inferred (`$1` first); `None` where it could not.
    pub param_types: Vec<Option<DataType>>,
    /// Parameter types reported to the client (its own declarations win).
    pub param_wire_types: Vec<Type>,
    /// The row type, for statements that return rows.
    pub result: Option<SchemaRef>,
    /// Set when the query is a primary-key point read that can skip DataFusion.
    pub lookup: Option<PointLookup>,
    /// The catalog generation the plan was made against.
    pub generation: u64,
    /// The row description in binary format, built on first use (it does not depend on
    /// session settings, unlike text format).
    pub binary_fields: Arc<OnceLock<Arc<Vec<FieldInfo>>>>,
    /// The relations it reads and writes, for privilege checks.
    pub access: Access,
}

impl Prepared {
    /// The statement's kind, as metrics label it.
    pub fn metric_kind(&self) -> &'static str {
        match (&self.kind, &self.stmt) {
            (PlanKind::Query(_), _) if self.lookup.is_some() => "lookup",
            (PlanKind::Query(_), _) => "select",
            (PlanKind::Insert(..), _) => "insert",
            (PlanKind::Update(_), _) => "update",
            (PlanKind::Delete(_), _) => "delete",
            (PlanKind::Utility, Parsed::Model(_)) => "model",
            (PlanKind::Utility, Parsed::Sink(_)) => "ddl",
            (PlanKind::Utility, Parsed::Sql(s)) => match s.as_ref() {
                Statement::Copy { .. } => "copy",
                Statement::CreateTable(_) | Statement::CreateView(_) | Statement::Drop { .. } | Statement::AlterTable(_) => "ddl",
                Statement::CreateRole(_) | Statement::AlterRole { .. } | Statement::Grant(_) | Statement::Revoke(_) => "ddl",
                _ => "other",
            },
        }
    }
}

/// The result of executing a statement.
#[derive(Debug)]
pub enum Outcome {
    /// Rows.
    Rows(SchemaRef, Vec<RecordBatch>),
    /// A command with its completion tag.
    Command(Tag),
    /// BEGIN.
    TxStart(Tag),
    /// COMMIT / ROLLBACK.
    TxEnd(Tag),
    /// SET of a parameter: report it if Postgres would (ParameterStatus).
    Set(&'static str, String),
    /// COPY FROM STDIN started, expecting this many columns, in the binary format or not.
    CopyIn(usize, bool),
    /// COPY TO STDOUT: rows to encode in the given format, as the query produces them.
    CopyOut(SchemaRef, BatchStream, copy::format::CopyFormat),
}

/// Bytes of a `COPY ... TO STDOUT` result computed before the first row is sent.
const COPY_BUFFER: usize = 16 << 20;

/// A query's batches as they are produced.
pub struct BatchStream(pub SendableRecordBatchStream);

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchStream")
    }
}

/// Plans `stmt`. `client_types` are the parameter types from the Parse message.
pub async fn prepare(session: &Session, stmt: Parsed, client_types: &[Option<Type>]) -> NowResult<Prepared> {
    let stmt = match stmt {
        Parsed::Sql(s) => crate::session_sql::resolve(session, *s)?,
        Parsed::Model(m) => return Ok(prepare_model(session, m, client_types)),
        Parsed::Sink(k) => return Ok(prepared_utility(session, Parsed::Sink(k), vec![], vec![])),
    };
    let ctx = session.engine().ctx();
    let generation = session.engine().catalog().generation();
    // A query's analyzed (type-coerced) plan: it describes the result, and compiles a point
    // lookup's computed select list.
    let mut analyzed = None;
    let (kind, result) = match &stmt {
        Statement::Query(_) | Statement::Explain { .. } => {
            let mut names = crate::naming::OutputNames::of(&stmt);
            let plan = match dml::plan_statement(ctx, names.stmt.clone()).await {
                Err(e) if e.to_string().contains("unique expression names") => {
                    names = crate::naming::OutputNames::aliased(&stmt);
                    dml::plan_statement(ctx, names.stmt.clone()).await?
                }
                planned => planned?,
            };
            if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)) {
                return Err(NowError::Unsupported(format!("statement not supported: {stmt}")));
            }
            // Described from the analyzed plan: type coercion settles the output types (a
            // UNION of an integer and a float is float8, not the first branch's bigint).
            let state = ctx.state();
            analyzed = state.analyzer().execute_and_check(plan.clone(), state.config_options(), |_, _| {}).ok();
            let described_plan = analyzed.as_ref().unwrap_or(&plan);
            let described = described_plan.schema().as_arrow().clone();
            let origins = column_origins(session.engine(), described_plan).await?;
            let schema = crate::encode::with_origins(names.client_schema(Arc::new(described)), &origins);
            (PlanKind::Query(plan), Some(schema))
        }
        Statement::Insert(insert) => {
            let (plan, on_conflict) = dml::plan_insert(ctx, insert).await?;
            (PlanKind::Insert(plan, on_conflict.map(Box::new)), None)
        }
        Statement::Update(_) | Statement::Delete(_) => {
            let plan = dml::plan_statement(ctx, stmt.clone()).await?;
            match dml::dml_op(&plan) {
                Some(WriteOp::Update) => (PlanKind::Update(plan), None),
                Some(WriteOp::Delete) => (PlanKind::Delete(plan), None),
                _ => return Err(NowError::Unsupported(format!("statement not supported: {stmt}"))),
            }
        }
        Statement::ShowVariable { variable } => {
            let name = show_name(variable);
            let schema = if name == "all" {
                text_schema(&["name", "setting", "description"])
            } else {
                text_schema(&[name.as_str()])
            };
            (PlanKind::Utility, Some(schema))
        }
        Statement::ShowTables { .. } => (PlanKind::Utility, Some(text_schema(&["table_name", "table_type"]))),
        _ => (PlanKind::Utility, None),
    };
    let mut param_types = match &kind {
        PlanKind::Query(p) | PlanKind::Insert(p, _) | PlanKind::Update(p) | PlanKind::Delete(p) => ordered_params(p)?,
        PlanKind::Utility => Vec::new(),
    };
    let sql = stmt.to_string();
    limit_params_are_bigint(&sql, &mut param_types);
    let mut param_wire_types = wire_types(&mut param_types, client_types);
    oid_params(&stmt, client_types, &mut param_wire_types);
    let lookup = match &kind {
        PlanKind::Query(plan) => PointLookup::recognize(session.engine().catalog(), plan)
            .filter(PointLookup::is_plain)
            .or_else(|| analyzed.as_ref().and_then(|p| PointLookup::recognize(session.engine().catalog(), p))),
        _ => None,
    };
    let stmt = Parsed::Sql(Box::new(stmt));
    let access = Access::of(session, &stmt, &kind);
    Ok(Prepared { stmt, sql, kind, param_types, param_wire_types, result, lookup, generation, binary_fields: Default::default(), access })
}

/// For each output column that is a column of a nowdb table or view (by the plan's
/// qualifiers, through table aliases), that relation's `pg_class` OID and the column's number.
async fn column_origins(engine: &crate::engine::Engine, plan: &LogicalPlan) -> NowResult<Vec<Option<(i32, i16)>>> {
    let mut aliases = std::collections::HashMap::new();
    use datafusion::common::tree_node::TreeNode;
    let _ = plan.apply(|node| {
        if let LogicalPlan::SubqueryAlias(a) = node {
            if let LogicalPlan::TableScan(scan) = a.input.as_ref() {
                aliases.insert(a.alias.table().to_string(), scan.table_name.table().to_string());
            }
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    let catalog = engine.catalog();
    let sources: Vec<Option<(Arc<nowdb_catalog::Table>, usize)>> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let name = qualifier?.table();
            let table = catalog.table(aliases.get(name).map(String::as_str).unwrap_or(name))?;
            let column = table.def().column_index(field.name())?;
            Some((table, column))
        })
        .collect();
    if sources.iter().all(Option::is_none) {
        return Ok(vec![None; sources.len()]);
    }
    let oids = engine.table_oids().await?;
    Ok(sources
        .into_iter()
        .map(|s| s.and_then(|(t, column)| Some((*oids.get(t.name())?, i16::try_from(column + 1).ok()?))))
        .collect())
}

/// The client's declared parameter types where it gave them, else the inferred ones; pads
/// `param_types` to the same length.
fn wire_types(param_types: &mut Vec<Option<DataType>>, client_types: &[Option<Type>]) -> Vec<Type> {
    let n = param_types.len().max(client_types.len());
    let wire = (0..n)
        .map(|i| match (client_types.get(i).cloned().flatten(), param_types.get(i).cloned().flatten()) {
            (Some(t), _) if t != Type::UNKNOWN => t,
            (_, Some(dt)) => arrow_pg::datatypes::into_pg_type(&dt).unwrap_or(Type::TEXT),
            _ => Type::TEXT,
        })
        .collect();
    param_types.resize(n, None);
    wire
}

/// A model statement: run by nowdb itself; `FROM $n` takes a bytea parameter.
fn prepare_model(session: &Session, stmt: ModelStatement, client_types: &[Option<Type>]) -> Prepared {
    let mut param_types: Vec<Option<DataType>> = Vec::new();
    if let Some(n) = model_sql::param_count(&stmt) {
        param_types.resize(n, None);
        param_types[n - 1] = Some(DataType::Binary);
    }
    let param_wire_types = wire_types(&mut param_types, client_types);
    prepared_utility(session, Parsed::Model(stmt), param_types, param_wire_types)
}

/// A utility statement of nowdb's own (model, sink): no result.
fn prepared_utility(session: &Session, stmt: Parsed, param_types: Vec<Option<DataType>>, param_wire_types: Vec<Type>) -> Prepared {
    let access = Access::of(session, &stmt, &PlanKind::Utility);
    Prepared {
        sql: stmt.to_string(),
        stmt,
        access,
        kind: PlanKind::Utility,
        param_types,
        param_wire_types,
        result: None,
        lookup: None,
        generation: session.engine().catalog().generation(),
        binary_fields: Default::default(),
    }
}

fn ordered_params(plan: &LogicalPlan) -> NowResult<Vec<Option<DataType>>> {
    let types = plan.get_parameter_types()?;
    let mut out: Vec<Option<DataType>> = Vec::new();
    for (id, ty) in types {
        let idx: usize = id
            .trim_start_matches('$')
            .parse()
            .map_err(|_| NowError::Syntax(format!("invalid parameter {id}")))?;
        if idx == 0 || idx > 65535 {
            return Err(NowError::Syntax(format!("invalid parameter {id}")));
        }
        if out.len() < idx {
            out.resize(idx, None);
        }
        out[idx - 1] = ty;
    }
    Ok(out)
}

/// `LIMIT $n` / `OFFSET $n`: Postgres types these bigint; DataFusion leaves them untyped.
fn limit_params_are_bigint(sql: &str, types: &mut Vec<Option<DataType>>) {
    let sql = sql.to_ascii_uppercase();
    for keyword in ["LIMIT $", "OFFSET $"] {
        for (pos, _) in sql.match_indices(keyword) {
            let digits: String = sql[pos + keyword.len()..].chars().take_while(char::is_ascii_digit).collect();
            if let Ok(i @ 1..=65535) = digits.parse::<usize>() {
                if types.len() < i {
                    types.resize(i, None);
                }
                types[i - 1] = Some(DataType::Int64);
            }
        }
    }
}

/// Parameters cast to `oid` or `oid[]` (`$1::oid[]`, as asyncpg's type introspection
/// writes) are described as such, not as the int4 they are planned as: drivers pick their
/// encoder by the described type, and know oid[] where they may not know int4[].
fn oid_params(stmt: &Statement, client_types: &[Option<Type>], wire: &mut [Type]) {
    use datafusion::sql::sqlparser::ast::{visit_expressions, DataType as SqlType, Expr, Value};
    let is_oid = |t: &SqlType| matches!(t, SqlType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("oid"));
    let _ = visit_expressions(stmt, |e| {
        let Expr::Cast { expr, data_type, .. } = e else { return std::ops::ControlFlow::<()>::Continue(()) };
        let Expr::Value(v) = expr.as_ref() else { return std::ops::ControlFlow::Continue(()) };
        let Value::Placeholder(p) = &v.value else { return std::ops::ControlFlow::Continue(()) };
        let described = match data_type {
            t if is_oid(t) => Some(Type::OID),
            SqlType::Array(elem) if elem_is(elem, &is_oid) => Some(Type::OID_ARRAY),
            _ => None,
        };
        let index = p.trim_start_matches('$').parse::<usize>().ok().and_then(|n| n.checked_sub(1));
        if let (Some(ty), Some(i)) = (described, index) {
            let client_typed = client_types.get(i).cloned().flatten().is_some_and(|t| t != Type::UNKNOWN);
            if let (false, Some(slot)) = (client_typed, wire.get_mut(i)) {
                *slot = ty;
            }
        }
        std::ops::ControlFlow::Continue(())
    });
}

fn elem_is(elem: &datafusion::sql::sqlparser::ast::ArrayElemTypeDef, is: &impl Fn(&datafusion::sql::sqlparser::ast::DataType) -> bool) -> bool {
    use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
    match elem {
        ArrayElemTypeDef::AngleBracket(t) | ArrayElemTypeDef::SquareBracket(t, _) | ArrayElemTypeDef::Parenthesis(t) => is(t),
        ArrayElemTypeDef::None => false,
    }
}

fn text_schema(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>()))
}

fn show_name(variable: &[datafusion::sql::sqlparser::ast::Ident]) -> String {
    let parts: Vec<String> = variable.iter().map(|i| i.value.to_ascii_lowercase()).collect();
    match parts.join(" ").as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        other => other.replace(' ', "_"),
    }
}

/// Executes a prepared statement, honouring `statement_timeout`. A statement prepared before
/// a CREATE or DROP TABLE is planned again first, like Postgres re-plans cached statements.
pub async fn execute(session: &Session, prepared: &Prepared, params: &ParamValues) -> NowResult<Outcome> {
    let started = Instant::now();
    let result = execute_current(session, prepared, params).await;
    let elapsed = started.elapsed();
    let engine = session.engine();
    engine.metrics().observe(prepared.metric_kind(), elapsed, result.is_ok());
    let slow_ms = engine.config().slow_query_ms;
    if slow_ms > 0 && elapsed >= Duration::from_millis(slow_ms) {
        engine.metrics().slow_statements.inc();
        warn!(target: "nowdb::slow_query", duration_ms = elapsed.as_millis() as u64, user = session.user(), statement = %prepared.sql, "slow statement");
    }
    result
}

async fn execute_current(session: &Session, prepared: &Prepared, params: &ParamValues) -> NowResult<Outcome> {
    if prepared.generation != session.engine().catalog().generation() && !matches!(prepared.kind, PlanKind::Utility) {
        let types: Vec<Option<Type>> = prepared.param_wire_types.iter().cloned().map(Some).collect();
        let fresh = prepare(session, prepared.stmt.clone(), &types).await?;
        if fresh.result.as_ref().map(|s| s.fields().len()) != prepared.result.as_ref().map(|s| s.fields().len()) {
            return Err(NowError::Unsupported("cached plan must not change result type".into()));
        }
        return execute_planned(session, &fresh, params).await;
    }
    execute_planned(session, prepared, params).await
}

async fn execute_planned(session: &Session, prepared: &Prepared, params: &ParamValues) -> NowResult<Outcome> {
    prepared.access.check(session)?;
    let timeout = session.settings()?.statement_timeout();
    match timeout {
        Some(limit) => run_with_timeout(session, prepared, params, limit).await,
        None => run(session, prepared, params).await,
    }
}

async fn run_with_timeout(session: &Session, prepared: &Prepared, params: &ParamValues, limit: Duration) -> NowResult<Outcome> {
    match tokio::time::timeout(limit, run(session, prepared, params)).await {
        Ok(r) => r,
        Err(_) => Err(NowError::coded("57014", "canceling statement due to statement timeout")),
    }
}

fn bind(plan: &LogicalPlan, params: &ParamValues) -> NowResult<LogicalPlan> {
    let empty = match params {
        ParamValues::List(l) => l.is_empty(),
        ParamValues::Map(m) => m.is_empty(),
    };
    if empty {
        Ok(plan.clone())
    } else {
        Ok(plan.clone().replace_params_with_values(params)?)
    }
}

async fn run(session: &Session, prepared: &Prepared, params: &ParamValues) -> NowResult<Outcome> {
    let engine = session.engine();
    match &prepared.kind {
        PlanKind::Query(plan) => {
            if let (Some(lookup), Some(schema)) = (&prepared.lookup, &prepared.result) {
                let values: Vec<ScalarValue> = match params {
                    ParamValues::List(l) => l.iter().map(|p| p.value.clone()).collect(),
                    ParamValues::Map(_) => vec![],
                };
                if let Some(batch) = lookup.execute(engine.catalog(), &values, schema)? {
                    return Ok(Outcome::Rows(schema.clone(), vec![batch]));
                }
            }
            let df = engine.ctx().execute_logical_plan(bind(plan, params)?).await?;
            let schema = match &prepared.result {
                Some(s) if s.fields().len() == df.schema().fields().len() => s.clone(),
                _ => Arc::new(df.schema().as_arrow().clone()),
            };
            Ok(Outcome::Rows(schema, crate::limits::collect(engine, df).await?))
        }
        PlanKind::Insert(plan, on_conflict) => {
            let n = dml::insert(engine, &bind(plan, params)?, on_conflict.as_deref(), params).await?;
            engine.metrics().rows_ingested.inc_by(n);
            Ok(Outcome::Command(Tag::new("INSERT").with_oid(0).with_rows(n as usize)))
        }
        PlanKind::Update(plan) => {
            let n = dml::update(engine, &bind(plan, params)?).await?;
            Ok(Outcome::Command(Tag::new("UPDATE").with_rows(n as usize)))
        }
        PlanKind::Delete(plan) => {
            let n = dml::delete(engine, &bind(plan, params)?).await?;
            Ok(Outcome::Command(Tag::new("DELETE").with_rows(n as usize)))
        }
        PlanKind::Utility => utility(session, prepared, params).await,
    }
}

async fn utility(session: &Session, prepared: &Prepared, params: &ParamValues) -> NowResult<Outcome> {
    let engine = session.engine();
    let stmt = match &prepared.stmt {
        Parsed::Sql(s) => s.as_ref(),
        Parsed::Model(ModelStatement::Create(c)) => return Ok(Outcome::Command(Tag::new(model_sql::create(engine, c, params).await?))),
        Parsed::Model(ModelStatement::Drop { names, if_exists, cascade }) => {
            return Ok(Outcome::Command(Tag::new(model_sql::drop(engine, names, *if_exists, *cascade).await?)))
        }
        Parsed::Sink(k) => return Ok(Outcome::Command(Tag::new(crate::sink_sql::execute(engine, k)?))),
    };
    debug!(%stmt, "utility statement");
    match stmt {
        Statement::CreateRole(role) => Ok(Outcome::Command(Tag::new(crate::roles_sql::create(engine, role)?))),
        Statement::AlterRole { name, operation } => Ok(Outcome::Command(Tag::new(crate::roles_sql::alter(engine, &ident_name(name), operation)?))),
        Statement::Drop { object_type: ObjectType::Role | ObjectType::User, names, if_exists, .. } => {
            Ok(Outcome::Command(Tag::new(crate::roles_sql::drop(engine, names, *if_exists, session.user())?)))
        }
        Statement::Grant(g) => Ok(Outcome::Command(Tag::new(crate::roles_sql::grant(engine, true, &g.privileges, g.objects.as_ref(), &g.grantees)?))),
        Statement::Revoke(r) => Ok(Outcome::Command(Tag::new(crate::roles_sql::grant(engine, false, &r.privileges, r.objects.as_ref(), &r.grantees)?))),
        Statement::CreateTable(ct) => {
            if ddl::create_table(engine.catalog(), ct)? {
                let name = ddl::table_name(&ct.name)?;
                if let Some(table) = engine.catalog().table(&name).filter(|t| t.def().connector.is_some()) {
                    engine.connectors().start_source(&table)?;
                }
            }
            Ok(Outcome::Command(Tag::new("CREATE TABLE")))
        }
        Statement::CreateView(cv) => {
            let state = engine.ctx().state();
            match ddl::create_view(engine.views(), &state, cv).await? {
                Some(rows) => Ok(Outcome::Command(Tag::new("SELECT").with_rows(rows.max(0) as usize))),
                None => Ok(Outcome::Command(Tag::new("CREATE MATERIALIZED VIEW"))),
            }
        }
        Statement::Drop { object_type, if_exists, names, cascade, .. } => {
            if *object_type == ObjectType::MaterializedView {
                let views = names.iter().map(ddl::table_name).collect::<NowResult<Vec<_>>>()?;
                crate::sink_sql::check_view_drop(engine, &views, *cascade)?;
            }
            let tag = ddl::drop(engine.catalog(), engine.views(), object_type, *if_exists, *cascade, names)?;
            crate::roles_sql::forget_dropped(engine)?;
            crate::sink_sql::forget_dropped(engine)?;
            Ok(Outcome::Command(Tag::new(tag)))
        }
        Statement::StartTransaction { .. } => Ok(Outcome::TxStart(Tag::new("BEGIN"))),
        Statement::Commit { .. } => Ok(Outcome::TxEnd(Tag::new("COMMIT"))),
        Statement::Rollback { savepoint: Some(_), .. } => Ok(Outcome::Command(Tag::new("ROLLBACK"))),
        Statement::Rollback { .. } => Ok(Outcome::TxEnd(Tag::new("ROLLBACK"))),
        // Statements are atomic on their own and transactions are not isolated (docs/SQL.md),
        // so savepoints have nothing to mark; accepted so that drivers' nested transactions
        // (psycopg's, SQLAlchemy's) work.
        Statement::Savepoint { .. } => Ok(Outcome::Command(Tag::new("SAVEPOINT"))),
        Statement::ReleaseSavepoint { .. } => Ok(Outcome::Command(Tag::new("RELEASE"))),
        // nowdb has no cursors nor notifications: what a pool's reset query closes is empty.
        Statement::Close { .. } => Ok(Outcome::Command(Tag::new("CLOSE CURSOR ALL"))),
        Statement::UNLISTEN { .. } => Ok(Outcome::Command(Tag::new("UNLISTEN"))),
        Statement::Set(set) => set_statement(session, set),
        Statement::Reset(r) => {
            let mut settings = session.settings()?;
            match &r.reset {
                Reset::ALL => settings.reset_all(),
                Reset::ConfigurationParameter(name) => {
                    let canon = settings.reset(&name.to_string())?;
                    let value = settings.get(canon)?;
                    return Ok(Outcome::Set(canon, value));
                }
            }
            Ok(Outcome::Command(Tag::new("RESET")))
        }
        Statement::ShowVariable { variable } => {
            let name = show_name(variable);
            let settings = session.settings()?;
            let columns: Vec<Vec<String>> = if name == "all" {
                let all = settings.all();
                vec![
                    all.iter().map(|r| r.0.clone()).collect(),
                    all.iter().map(|r| r.1.clone()).collect(),
                    all.iter().map(|r| r.2.clone()).collect(),
                ]
            } else {
                vec![vec![settings.get(&name)?]]
            };
            rows(prepared, columns)
        }
        Statement::ShowTables { .. } => {
            let tables = engine.catalog().tables();
            rows(
                prepared,
                vec![
                    tables.iter().map(|t| t.name().to_string()).collect(),
                    tables
                        .iter()
                        .map(|t| match (t.is_view(), t.is_keyed()) {
                            (true, _) => "materialized view",
                            (false, true) => "keyed",
                            (false, false) => "event",
                        }.to_string())
                        .collect(),
                ],
            )
        }
        Statement::Discard { .. } => Ok(Outcome::Command(Tag::new("DISCARD ALL"))),
        Statement::Deallocate { .. } => Ok(Outcome::Command(Tag::new("DEALLOCATE"))),
        Statement::Copy { source, to, target, options, legacy_options, .. } => {
            let format = copy::parse_options(options, legacy_options)?;
            match (to, target, source) {
                (false, CopyTarget::Stdin, CopySource::Table { table_name, columns }) => {
                    let table = engine.catalog().require(&ddl::table_name(table_name)?)?;
                    let cols = columns.iter().map(ident_name).collect();
                    let binary = format.kind == copy::format::CopyKind::Binary;
                    let copy_in = CopyIn::new(table, cols, format)?;
                    let n = copy_in.columns();
                    *session.copy()? = Some(CopyState::Receiving(Box::new(copy_in)));
                    Ok(Outcome::CopyIn(n, binary))
                }
                (true, CopyTarget::Stdout | CopyTarget::File { .. }, source) => {
                    let query: Statement = match source {
                        CopySource::Table { table_name, columns } => {
                            let name = ddl::table_name(table_name)?;
                            engine.catalog().require(&name)?;
                            let cols = if columns.is_empty() {
                                "*".to_string()
                            } else {
                                columns.iter().map(|c| format!("\"{}\"", ident_name(c))).collect::<Vec<_>>().join(", ")
                            };
                            let sql = format!("SELECT {cols} FROM \"{name}\"");
                            let mut parsed = Parser::parse_sql(&PostgreSqlDialect {}, &sql)?;
                            parsed.pop().ok_or_else(|| NowError::Syntax(sql))?
                        }
                        CopySource::Query(q) => Statement::Query(q.clone()),
                    };
                    let plan = dml::plan_statement(engine.ctx(), query).await?;
                    crate::privileges::require_reads(session, &plan)?;
                    let df = engine.ctx().execute_logical_plan(plan).await?;
                    let schema = Arc::new(df.schema().as_arrow().clone());
                    let batches = df.execute_stream().await?;
                    match target {
                        CopyTarget::File { filename } => {
                            let path = crate::paths::writable_under(engine.export_dir(), filename, "export directory")?;
                            let rows = copy::export::write(path, schema, batches, format).await?;
                            Ok(Outcome::Command(Tag::new("COPY").with_rows(rows as usize)))
                        }
                        _ if format.kind == copy::format::CopyKind::Parquet => Err(NowError::Unsupported("COPY TO STDOUT in FORMAT parquet is not supported; write it to a file (COPY ... TO 'file.parquet')".into())),
                        _ => {
                            // Up to COPY_BUFFER bytes of rows are computed before answering, so
                            // that an error there is a clean ErrorResponse rather than one in
                            // the middle of the COPY data; larger results stream from there.
                            let mut batches = batches;
                            let mut ahead = Vec::new();
                            let mut bytes = 0;
                            while bytes < COPY_BUFFER {
                                let Some(batch) = batches.next().await.transpose()? else { break };
                                bytes += batch.get_array_memory_size();
                                ahead.push(Ok(batch));
                            }
                            let rest = futures::stream::iter(ahead).chain(batches);
                            let stream = RecordBatchStreamAdapter::new(schema.clone(), rest);
                            Ok(Outcome::CopyOut(schema, BatchStream(Box::pin(stream)), format))
                        }
                    }
                }
                (false, CopyTarget::Stdout, _) | (true, CopyTarget::Stdin, _) => {
                    Err(NowError::Syntax("COPY FROM needs STDIN and COPY TO needs STDOUT".into()))
                }
                _ => Err(NowError::Unsupported(
                    "COPY FROM a file or a program on the server is not supported; use STDIN (psql's \\copy)".into(),
                )),
            }
        }
        other => Err(NowError::Unsupported(format!("statement not supported: {}", first_words(other)))),
    }
}

fn first_words(stmt: &Statement) -> String {
    stmt.to_string().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn rows(prepared: &Prepared, columns: Vec<Vec<String>>) -> NowResult<Outcome> {
    let schema = prepared.result.clone().unwrap_or_else(|| text_schema(&[]));
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as datafusion::arrow::array::ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(datafusion::error::DataFusionError::from)?;
    Ok(Outcome::Rows(schema, vec![batch]))
}

fn set_statement(session: &Session, set: &Set) -> NowResult<Outcome> {
    let (name, values): (String, Vec<&SqlExpr>) = match set {
        Set::SingleAssignment { variable, values, .. } => (variable.to_string(), values.iter().collect()),
        Set::SetTimeZone { value, .. } => ("timezone".into(), vec![value]),
        Set::SetNames { charset_name, .. } => {
            let canon = session.settings()?.set("client_encoding", &charset_name.value)?;
            return Ok(Outcome::Set(canon, "UTF8".into()));
        }
        Set::SetTransaction { .. } | Set::SetNamesDefault {} => return Ok(Outcome::Command(Tag::new("SET"))),
        other => return Err(NowError::Unsupported(format!("{other} is not supported"))),
    };
    let value = values.iter().map(|v| unquote(&v.to_string())).collect::<Vec<_>>().join(", ");
    let mut settings = session.settings()?;
    let canon = if value.eq_ignore_ascii_case("default") {
        settings.reset(&name)?
    } else {
        settings.set(&name, &value)?
    };
    let shown = settings.get(canon)?;
    Ok(Outcome::Set(canon, shown))
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => s.to_string(),
    }
}

