//! INSERT / UPDATE / DELETE.
//!
//! DataFusion plans each statement (type coercion, defaults for missing columns, parameter
//! type inference from the target columns); nowdb executes the plan's *input* to get the rows
//! and applies them itself through the catalog's constraint-checking writers, so that a
//! statement is one atomic, durable storage write.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{Column, ParamValues};
use datafusion::logical_expr::{cast, DmlStatement, Expr, LogicalPlan, Projection, WriteOp};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AssignmentTarget, ConflictTarget, Expr as SqlExpr, Ident, Insert,
    OnConflict, OnConflictAction, OnInsert, Statement,
};
use nowdb_catalog::write::{self, ConflictResolver, OnConflict as ConflictPolicy};
use nowdb_catalog::{CatalogError, Table};

use crate::ddl::ident_name;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};

const EXCLUDED_PREFIX: &str = "__nowdb_excluded_";
const OLD_KEY_PREFIX: &str = "__nowdb_old_key_";
const APPLIES: &str = "__nowdb_applies";

/// Plans an INSERT: DataFusion plans it without its `ON CONFLICT` clause, which is returned
/// separately.
pub async fn plan_insert(ctx: &SessionContext, insert: &Insert) -> NowResult<(LogicalPlan, Option<OnConflict>)> {
    let mut stripped = insert.clone();
    if stripped.returning.is_some() {
        return Err(NowError::Unsupported("INSERT ... RETURNING is not supported yet".into()));
    }
    let on_conflict = match stripped.on.take() {
        None => None,
        Some(OnInsert::OnConflict(c)) => Some(c),
        Some(other) => return Err(NowError::Unsupported(format!("{other} is not supported; use ON CONFLICT"))),
    };
    let plan = plan_statement(ctx, Statement::Insert(stripped)).await?;
    Ok((plan, on_conflict))
}

/// Plans any statement with DataFusion.
pub async fn plan_statement(ctx: &SessionContext, stmt: Statement) -> NowResult<LogicalPlan> {
    let plan = ctx.state().statement_to_plan(DfStatement::Statement(Box::new(stmt))).await?;
    type_placeholders(plan)
}

/// Types untyped `$n` placeholders from their context, in one pass over the plan: `$n::type`
/// gives `$n` that type, as in PostgreSQL, and an argument of a model gets the model input's
/// type (DataFusion leaves both unknown, and clients would be told to send text).
fn type_placeholders(plan: LogicalPlan) -> NowResult<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::expr::Placeholder;
    use datafusion::logical_expr::Expr;
    let typed = plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Cast(mut c) => match c.expr.as_ref() {
                    Expr::Placeholder(Placeholder { id, field: None }) => {
                        let field = Arc::new(datafusion::arrow::datatypes::Field::new(id.as_str(), c.field.data_type().clone(), true));
                        c.expr = Box::new(Expr::Placeholder(Placeholder { id: id.clone(), field: Some(field) }));
                        Ok(Transformed::yes(Expr::Cast(c)))
                    }
                    _ => Ok(Transformed::no(Expr::Cast(c))),
                },
                other => nowdb_models::function::type_model_arguments(other),
            })
        })
    })?;
    Ok(typed.data)
}

fn dml_parts(plan: &LogicalPlan) -> NowResult<&DmlStatement> {
    match plan {
        LogicalPlan::Dml(dml) => Ok(dml),
        other => Err(NowError::coded("XX000", format!("expected a DML plan, got {}", other.display()))),
    }
}

fn target_table(engine: &Engine, dml: &DmlStatement) -> NowResult<Arc<Table>> {
    Ok(engine.catalog().require(dml.table_name.table())?)
}

async fn run(ctx: &SessionContext, plan: LogicalPlan) -> NowResult<Option<RecordBatch>> {
    let df = ctx.execute_logical_plan(plan).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(None);
    }
    Ok(Some(concat_batches(&schema, &batches).map_err(datafusion::error::DataFusionError::from)?))
}

/// Executes a planned INSERT (parameters already bound); returns the rows inserted or updated.
pub async fn insert(
    engine: &Engine,
    plan: &LogicalPlan,
    on_conflict: Option<&OnConflict>,
    params: &ParamValues,
) -> NowResult<u64> {
    let dml = dml_parts(plan)?;
    let table = target_table(engine, dml)?;
    let Some(rows) = run(engine.ctx(), dml.input.as_ref().clone()).await? else {
        return Ok(0);
    };
    let n = match on_conflict {
        None => write::insert(&table, rows, ConflictPolicy::Error).await?,
        Some(c) => {
            check_conflict_target(&table, c)?;
            match &c.action {
                OnConflictAction::DoNothing => write::insert(&table, rows, ConflictPolicy::DoNothing).await?,
                OnConflictAction::DoUpdate(update) => {
                    if c.conflict_target.is_none() {
                        return Err(NowError::Syntax(
                            "ON CONFLICT DO UPDATE requires inference specification or constraint name".into(),
                        ));
                    }
                    let resolver = SqlResolver::new(engine.ctx().clone(), &table, &update.assignments, update.selection.as_ref(), params.clone())?;
                    write::insert(&table, rows, ConflictPolicy::DoUpdate(&resolver)).await?
                }
            }
        }
    };
    Ok(n)
}

fn check_conflict_target(table: &Table, c: &OnConflict) -> NowResult<()> {
    let def = table.def();
    let no_match = || {
        NowError::coded(
            "42P10",
            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        )
    };
    if !table.is_keyed() {
        return Err(no_match());
    }
    match &c.conflict_target {
        None => Ok(()),
        Some(ConflictTarget::Columns(cols)) => {
            let mut named: Vec<String> = cols.iter().map(ident_name).collect();
            let mut key: Vec<String> = def.primary_key().iter().map(|&i| def.columns[i].name.clone()).collect();
            named.sort();
            key.sort();
            if named == key { Ok(()) } else { Err(no_match()) }
        }
        Some(ConflictTarget::OnConstraint(name)) => {
            let given = name.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default();
            if given == def.pkey_name() {
                Ok(())
            } else {
                Err(NowError::coded("42704", format!("constraint \"{given}\" for table \"{}\" does not exist", def.name)))
            }
        }
    }
}

/// `ON CONFLICT DO UPDATE SET ...` evaluated by DataFusion over the stored rows beside the
/// `excluded` rows.
struct SqlResolver {
    ctx: SessionContext,
    columns: Vec<(String, datafusion::arrow::datatypes::DataType)>,
    assignments: Vec<Option<String>>,
    selection: Option<String>,
    params: ParamValues,
}

impl SqlResolver {
    fn new(
        ctx: SessionContext,
        table: &Table,
        assignments: &[datafusion::sql::sqlparser::ast::Assignment],
        selection: Option<&SqlExpr>,
        params: ParamValues,
    ) -> NowResult<Self> {
        let def = table.def();
        let mut per_column: Vec<Option<String>> = vec![None; def.columns.len()];
        for a in assignments {
            let AssignmentTarget::ColumnName(name) = &a.target else {
                return Err(NowError::Unsupported("tuple assignment in ON CONFLICT DO UPDATE".into()));
            };
            let col = name.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default();
            let idx = def.column_index(&col).ok_or_else(|| CatalogError::NoSuchColumn {
                table: def.name.clone(),
                column: col.clone(),
            })?;
            per_column[idx] = Some(rewrite_excluded(&a.value, &def.name));
        }
        Ok(Self {
            ctx,
            columns: def.columns.iter().map(|c| (c.name.clone(), c.ty.arrow_type())).collect(),
            assignments: per_column,
            selection: selection.map(|s| rewrite_excluded(s, &def.name)),
            params,
        })
    }
}

/// `excluded.c` -> `"__nowdb_excluded_c"`, `<table>.c` -> `c`; returns SQL text.
fn rewrite_excluded(expr: &SqlExpr, table: &str) -> String {
    let mut e = expr.clone();
    let _ = visit_expressions_mut(&mut e, |e| {
        if let SqlExpr::CompoundIdentifier(parts) = e {
            if parts.len() == 2 {
                let qualifier = ident_name(&parts[0]);
                let column = ident_name(&parts[1]);
                if qualifier == "excluded" {
                    *e = SqlExpr::Identifier(Ident::with_quote('"', format!("{EXCLUDED_PREFIX}{column}")));
                } else if qualifier == table {
                    *e = SqlExpr::Identifier(Ident::with_quote('"', column));
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

#[async_trait]
impl ConflictResolver for SqlResolver {
    async fn resolve(&self, existing: RecordBatch, excluded: RecordBatch) -> nowdb_catalog::Result<(RecordBatch, Vec<bool>)> {
        let mut fields: Vec<Field> = existing.schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        fields.extend(
            excluded
                .schema()
                .fields()
                .iter()
                .map(|f| Field::new(format!("{EXCLUDED_PREFIX}{}", f.name()), f.data_type().clone(), true)),
        );
        let mut columns = existing.columns().to_vec();
        columns.extend(excluded.columns().iter().cloned());
        let combined = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(datafusion::error::DataFusionError::from)?;
        let df = self.ctx.read_batch(combined)?;
        let mut exprs = Vec::with_capacity(self.columns.len() + 1);
        for ((name, ty), assigned) in self.columns.iter().zip(&self.assignments) {
            let e = match assigned {
                Some(sql) => cast(df.parse_sql_expr(sql)?, ty.clone()).alias(name),
                None => Expr::Column(Column::from_name(name)),
            };
            exprs.push(e);
        }
        if let Some(sel) = &self.selection {
            exprs.push(df.parse_sql_expr(sel)?.alias(APPLIES));
        }
        let plan = df.select(exprs)?.into_unoptimized_plan().replace_params_with_values(&self.params)?;
        let out = self.ctx.execute_logical_plan(plan).await?;
        let schema = Arc::new(out.schema().as_arrow().clone());
        let batches = out.collect().await?;
        let all = concat_batches(&schema, &batches).map_err(datafusion::error::DataFusionError::from)?;
        let n = self.columns.len();
        let applies = match &self.selection {
            Some(_) => {
                let col = all.column(n).as_boolean_opt().ok_or_else(|| {
                    CatalogError::DataFusion(datafusion::error::DataFusionError::Plan(
                        "argument of WHERE must be type boolean".into(),
                    ))
                })?;
                (0..col.len()).map(|i| col.is_valid(i) && col.value(i)).collect()
            }
            None => vec![true; all.num_rows()],
        };
        let updated = all.project(&(0..n).collect::<Vec<_>>()).map_err(datafusion::error::DataFusionError::from)?;
        Ok((updated, applies))
    }
}

/// Executes a planned UPDATE; returns the number of rows updated.
pub async fn update(engine: &Engine, plan: &LogicalPlan) -> NowResult<u64> {
    let dml = dml_parts(plan)?;
    let table = target_table(engine, dml)?;
    require_keyed(&table, "UPDATE")?;
    let def = table.def();
    // Carry the old primary key beside the new row, so key changes can move rows.
    let LogicalPlan::Projection(p) = dml.input.as_ref() else {
        return Err(NowError::coded("XX000", "unexpected UPDATE plan shape"));
    };
    let mut exprs = p.expr.clone();
    let input_columns = p.input.schema().columns();
    for &i in def.primary_key() {
        let name = &def.columns[i].name;
        let c = input_columns.iter().find(|c| &c.name == name).cloned().ok_or_else(|| {
            CatalogError::NoSuchColumn { table: def.name.clone(), column: name.clone() }
        })?;
        exprs.push(Expr::Column(c).alias(format!("{OLD_KEY_PREFIX}{name}")));
    }
    let plan = LogicalPlan::Projection(Projection::try_new(exprs, p.input.clone())?);
    // Read and write under the table's write lock: concurrent `SET n = n + 1` lose nothing.
    let lock = table.lock_writes().await;
    let Some(rows) = run(engine.ctx(), plan).await? else {
        return Ok(0);
    };
    let n = def.columns.len();
    let new_rows = rows.project(&(0..n).collect::<Vec<_>>()).map_err(datafusion::error::DataFusionError::from)?;
    let key_fields: Vec<Field> = def
        .primary_key()
        .iter()
        .zip(n..)
        .map(|(&i, j)| Field::new(&def.columns[i].name, rows.column(j).data_type().clone(), true))
        .collect();
    let old_keys = RecordBatch::try_new(Arc::new(Schema::new(key_fields)), rows.columns()[n..].to_vec())
        .map_err(datafusion::error::DataFusionError::from)?;
    Ok(write::update(&table, &lock, &old_keys, &new_rows).await?)
}

/// Executes a planned DELETE; returns the number of rows deleted.
pub async fn delete(engine: &Engine, plan: &LogicalPlan) -> NowResult<u64> {
    let dml = dml_parts(plan)?;
    let table = target_table(engine, dml)?;
    require_keyed(&table, "DELETE")?;
    let lock = table.lock_writes().await;
    let Some(rows) = run(engine.ctx(), dml.input.as_ref().clone()).await? else {
        return Ok(0);
    };
    Ok(write::delete(&table, &lock, &rows).await?)
}

fn require_keyed(table: &Table, what: &str) -> NowResult<()> {
    if table.is_keyed() {
        Ok(())
    } else {
        Err(NowError::Unsupported(format!(
            "{what} needs a primary key: \"{}\" is an append-only event table",
            table.name()
        )))
    }
}

/// Which DML a plan is.
pub fn dml_op(plan: &LogicalPlan) -> Option<&WriteOp> {
    match plan {
        LogicalPlan::Dml(d) => Some(&d.op),
        _ => None,
    }
}
