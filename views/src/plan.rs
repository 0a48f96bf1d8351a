//! Compiling a view's defining query into a [`ViewPlan`]: the shapes the engine maintains
//! incrementally, with DataFusion physical expressions to evaluate on change batches.
//!
//! The query is planned and type-checked by DataFusion (analyzed, not optimized, so the plan
//! keeps the query's own shape) and then matched against
//! `[Projection] <- [HAVING Filter] <- [Aggregate] <- [WHERE Filter] <- source`, where the
//! source is a table, view or `TUMBLE`/`HOP` over one, optionally joined on its primary key
//! to a keyed table. Anything else is refused with the construct's name, never recomputed.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, JoinType};
use datafusion::execution::context::SessionState;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, Volatility};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use nowdb_catalog::provider::access::split_and;
use nowdb_catalog::provider::StoredTable;
use nowdb_catalog::Catalog;
use nowdb_udfs::window::{WindowSpec, WindowTable};

use crate::agg::{AggKind, AggSpec, NumKind};
use crate::error::ViewError;
use crate::Result;

/// A compiled physical expression.
pub type PhysExpr = Arc<dyn PhysicalExpr>;

/// Where change rows enter a view.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// The table or view read.
    pub table: String,
    /// Its catalog id.
    pub table_id: u32,
    /// `TUMBLE`/`HOP` over it: the time column and the window shape.
    pub window: Option<(usize, WindowSpec)>,
    /// Its rows' schema after windowing (the table's columns, then window_start/end).
    pub schema: SchemaRef,
    /// The table's own schema (its stored rows).
    pub base_schema: SchemaRef,
    /// The column holding each stream row's event time (the windowed column, else the
    /// table's [`TableDef::event_time_column`](nowdb_catalog::TableDef::event_time_column)),
    /// at the same index in the input rows.
    pub time_col: Option<usize>,
}

/// `stream JOIN keyed ON stream.k = keyed.pk`.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// The keyed table joined.
    pub right: String,
    /// Its catalog id.
    pub right_id: u32,
    /// Stream columns matched to the keyed table's primary key, in key order.
    pub left_keys: Vec<usize>,
    /// The keyed table's primary-key types, in key order.
    pub key_types: Vec<DataType>,
    /// The keyed table's schema (its stored rows).
    pub right_schema: SchemaRef,
    /// LEFT JOIN (keep unmatched stream rows with NULLs) rather than INNER.
    pub left_outer: bool,
}

/// What the view computes from its (filtered) input rows.
#[derive(Debug, Clone)]
pub enum Shape {
    /// One output row per input row.
    Project(Vec<PhysExpr>),
    /// One output row per group.
    Aggregate(AggPlan),
}

/// GROUP BY and aggregates.
#[derive(Debug, Clone)]
pub struct AggPlan {
    /// Group key expressions over the input rows.
    pub group: Vec<PhysExpr>,
    /// The aggregates.
    pub aggs: Vec<AggSpec>,
    /// Schema of (group values, aggregate values): what HAVING and the projection read.
    pub agg_schema: SchemaRef,
    /// HAVING.
    pub having: Option<PhysExpr>,
    /// Output expressions over `agg_schema`.
    pub project: Vec<PhysExpr>,
}

/// A view the engine can maintain.
#[derive(Debug, Clone)]
pub struct ViewPlan {
    /// The stream side.
    pub stream: StreamSource,
    /// The optional join.
    pub join: Option<JoinSpec>,
    /// Schema of the rows WHERE sees (stream columns, then the keyed table's).
    pub input_schema: SchemaRef,
    /// WHERE.
    pub filter: Option<PhysExpr>,
    /// Projection or aggregation.
    pub shape: Shape,
    /// Output columns as the query names and types them.
    pub output_schema: SchemaRef,
    /// Output columns forming the row key (the GROUP BY columns, when all are output as is).
    pub key: Vec<usize>,
    /// Output column holding `window_end`, if the view outputs it unchanged.
    pub window_end: Option<usize>,
    /// No input row is ever retracted (an event table, no join): cheaper aggregate state.
    pub append_only: bool,
    /// Models the view calls, with the versions it was compiled with.
    pub models: Vec<(String, u64)>,
}

impl ViewPlan {
    /// Names of the tables and views read.
    pub fn sources(&self) -> Vec<String> {
        let mut s = vec![self.stream.table.clone()];
        if let Some(j) = &self.join {
            s.push(j.right.clone());
        }
        s
    }
}

fn phys(e: &Expr, schema: &DFSchema, props: &ExecutionProps) -> datafusion::error::Result<PhysExpr> {
    create_physical_expr(e, schema, props, &PhysicalPlanningContext::default())
}

fn refuse<T>(what: impl Into<String>) -> Result<T> {
    Err(ViewError::NotIncremental(what.into()))
}

/// Plans and compiles `sql` (a SELECT).
pub async fn compile(state: &SessionState, catalog: &Catalog, sql: &str) -> Result<ViewPlan> {
    let plan = state.create_logical_plan(sql).await?;
    let plan = state.analyzer().execute_and_check(plan, state.config_options(), |_, _| {})?;
    check_expressions(&plan)?;
    let props = state.execution_props();

    // Peel the top: ORDER BY does not change a view's contents; LIMIT would.
    let mut node = &plan;
    loop {
        match node {
            LogicalPlan::Sort(s) if s.fetch.is_none() => node = s.input.as_ref(),
            LogicalPlan::Limit(_) | LogicalPlan::Sort(_) => return refuse("LIMIT / OFFSET"),
            LogicalPlan::Distinct(_) if node.inputs().iter().any(|i| matches!(i, LogicalPlan::Union(_))) => return refuse("UNION"),
            LogicalPlan::Distinct(_) => return refuse("SELECT DISTINCT (use GROUP BY)"),
            LogicalPlan::Union(_) => return refuse("UNION"),
            LogicalPlan::Window(_) => return refuse("window functions (OVER)"),
            _ => break,
        }
    }
    let LogicalPlan::Projection(top) = node else {
        return refuse(format!("query shape {}", node_name(node)));
    };
    let output_schema: SchemaRef = Arc::new(top.schema.as_arrow().clone());
    let mut below = top.input.as_ref();
    let mut having = None;
    if let LogicalPlan::Filter(f) = below {
        if matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)) {
            having = Some(&f.predicate);
            below = f.input.as_ref();
        }
    }
    let aggregate = match below {
        LogicalPlan::Aggregate(a) => {
            below = a.input.as_ref();
            Some(a)
        }
        _ => None,
    };
    let mut filter_expr = None;
    if let LogicalPlan::Filter(f) = below {
        filter_expr = Some(&f.predicate);
        below = f.input.as_ref();
    }
    let (stream, join, input_df) = source(catalog, below)?;
    let input_schema: SchemaRef = Arc::new(input_df.as_arrow().clone());
    let filter = filter_expr.map(|e| phys(e, input_df, props)).transpose()?;

    let retractable_stream = catalog.table(&stream.table).is_some_and(|t| t.is_keyed());
    let append_only = !retractable_stream && join.is_none();

    let mut key = Vec::new();
    let mut window_end = None;
    let shape = match aggregate {
        Some(a) => {
            if a.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))) {
                return refuse("GROUPING SETS / ROLLUP / CUBE");
            }
            let group = a.group_expr.iter().map(|e| phys(e, input_df, props)).collect::<std::result::Result<Vec<_>, _>>()?;
            let agg_df = a.schema.as_ref();
            let n_group = a.group_expr.len();
            let mut aggs = Vec::with_capacity(a.aggr_expr.len());
            for (i, e) in a.aggr_expr.iter().enumerate() {
                let out_type = agg_df.field(n_group + i).data_type().clone();
                aggs.push(agg_spec(e, input_df, props, out_type, append_only)?);
            }
            let agg_schema: SchemaRef = Arc::new(agg_df.as_arrow().clone());
            let having = having.map(|h| phys(h, agg_df, props)).transpose()?;
            let project = top.expr.iter().map(|e| phys(e, agg_df, props)).collect::<std::result::Result<Vec<_>, _>>()?;
            // The row key: every group column output as is.
            for g in 0..n_group {
                let col = agg_df.qualified_field(g);
                let pos = top.expr.iter().position(|e| match e.clone().unalias() {
                    Expr::Column(c) => c.name == col.1.name().as_str() && c.relation.as_ref() == col.0,
                    _ => false,
                });
                match pos {
                    Some(p) => key.push(p),
                    None => {
                        key.clear();
                        break;
                    }
                }
            }
            if !key.is_empty() || n_group == 0 {
                window_end = output_position(&top.expr, nowdb_udfs::window::WINDOW_END);
            }
            Shape::Aggregate(AggPlan { group, aggs, agg_schema, having, project })
        }
        None => {
            if having.is_some() {
                return refuse("HAVING without GROUP BY");
            }
            window_end = output_position(&top.expr, nowdb_udfs::window::WINDOW_END);
            Shape::Project(top.expr.iter().map(|e| phys(e, input_df, props)).collect::<std::result::Result<Vec<_>, _>>()?)
        }
    };
    if stream.window.is_none() {
        window_end = None;
    }
    let models = models_called(&plan);
    Ok(ViewPlan { stream, join, input_schema, filter, shape, output_schema, key, window_end, append_only, models })
}

fn output_position(exprs: &[Expr], name: &str) -> Option<usize> {
    exprs.iter().position(|e| matches!(e.clone().unalias(), Expr::Column(c) if c.name == name))
}

fn node_name(plan: &LogicalPlan) -> String {
    plan.display().to_string().split(':').next().unwrap_or("?").trim().to_string()
}

/// Refuses subqueries and functions whose value changes over time.
/// The models (and versions) a plan calls.
fn models_called(plan: &LogicalPlan) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let _ = plan.apply(|node| {
        for e in node.expressions() {
            let _ = e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if let Some(m) = nowdb_models::ModelFunction::of(&f.func) {
                        let entry = (m.name().to_string(), m.version());
                        if !out.contains(&entry) {
                            out.push(entry);
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

fn check_expressions(plan: &LogicalPlan) -> Result<()> {
    let mut problem: Option<String> = None;
    plan.apply(|node| {
        if let LogicalPlan::Subquery(_) = node {
            problem = Some("subqueries".into());
            return Ok(TreeNodeRecursion::Stop);
        }
        for e in node.expressions() {
            e.apply(|e| {
                match e {
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => {
                        problem = Some("subqueries".into());
                    }
                    Expr::ScalarFunction(f) if f.func.signature().volatility != Volatility::Immutable => {
                        problem = Some(format!("function {}() is not immutable (its value changes over time)", f.func.name()));
                    }
                    Expr::WindowFunction(_) => problem = Some("window functions (OVER)".into()),
                    _ => {}
                }
                Ok(if problem.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
            })?;
        }
        Ok(if problem.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    match problem {
        Some(p) => refuse(p),
        None => Ok(()),
    }
}

fn provider_of(plan: &LogicalPlan) -> Option<(Arc<dyn TableProvider>, &DFSchema)> {
    let mut node = plan;
    while let LogicalPlan::SubqueryAlias(a) = node {
        node = a.input.as_ref();
    }
    match node {
        LogicalPlan::TableScan(scan) => {
            if !scan.filters.is_empty() || scan.fetch.is_some() {
                return None;
            }
            source_as_provider(&scan.source).ok().map(|p| (p, plan.schema().as_ref()))
        }
        _ => None,
    }
}

fn stream_source(catalog: &Catalog, plan: &LogicalPlan) -> Result<StreamSource> {
    let Some((provider, _)) = provider_of(plan) else {
        return refuse(format!("reading from {} (a view reads a table, a view, or TUMBLE/HOP over one)", node_name(plan)));
    };
    let any: &dyn Any = provider.as_ref();
    if let Some(w) = any.downcast_ref::<WindowTable>() {
        let table = catalog.require(&w.table_name)?;
        return Ok(StreamSource {
            table: w.table_name.clone(),
            table_id: table.def().id,
            window: Some((w.ts_col, w.spec)),
            schema: w.schema(),
            base_schema: table.schema().clone(),
            time_col: Some(w.ts_col),
        });
    }
    if let Some(s) = any.downcast_ref::<StoredTable>() {
        let t = s.table();
        return Ok(StreamSource {
            table: t.name().to_string(),
            table_id: t.def().id,
            window: None,
            schema: t.schema().clone(),
            base_schema: t.schema().clone(),
            time_col: t.def().event_time_column(),
        });
    }
    refuse("reading a system table")
}

fn source<'a>(catalog: &Catalog, plan: &'a LogicalPlan) -> Result<(StreamSource, Option<JoinSpec>, &'a DFSchema)> {
    let mut node = plan;
    while let LogicalPlan::SubqueryAlias(a) = node {
        node = a.input.as_ref();
    }
    match node {
        LogicalPlan::TableScan(_) => Ok((stream_source(catalog, plan)?, None, plan.schema().as_ref())),
        LogicalPlan::Join(j) => {
            let left_outer = match j.join_type {
                JoinType::Inner => false,
                JoinType::Left => true,
                other => return refuse(format!("{} JOIN (inner and LEFT JOIN are maintained)", other.to_string().to_uppercase())),
            };
            let stream = stream_source(catalog, &j.left)?;
            let Some((right_provider, _)) = provider_of(&j.right) else {
                return refuse("a JOIN whose right side is not a keyed table");
            };
            let right_any: &dyn Any = right_provider.as_ref();
            let Some(right) = right_any.downcast_ref::<StoredTable>().map(|s| s.table().clone()) else {
                return refuse("a JOIN whose right side is not a keyed table");
            };
            if !right.is_keyed() || right.is_view() {
                return refuse(format!("a JOIN with \"{}\", which is not a keyed table (join an event stream to a table with a primary key)", right.name()));
            }
            let left_schema = j.left.schema();
            let right_schema = j.right.schema();
            let mut pairs: Vec<(usize, usize)> = Vec::new();
            let mut conds: Vec<(&Expr, &Expr)> = j.on.iter().map(|(l, r)| (l, r)).collect();
            let mut rest = Vec::new();
            if let Some(f) = &j.filter {
                split_and(f, &mut rest);
            }
            for e in rest {
                match e {
                    Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => conds.push((left, right)),
                    other => return refuse(format!("join condition {other} (only equality on the keyed table's primary key)")),
                }
            }
            for (l, r) in conds {
                let (l, r) = (strip_cast(l), strip_cast(r));
                let (Expr::Column(lc), Expr::Column(rc)) = (l, r) else {
                    return refuse("join condition on expressions (only columns equal to the primary key)");
                };
                let (lc, rc) = match (left_schema.index_of_column(lc), right_schema.index_of_column(rc)) {
                    (Ok(li), Ok(ri)) => (li, ri),
                    _ => match (left_schema.index_of_column(rc), right_schema.index_of_column(lc)) {
                        (Ok(li), Ok(ri)) => (li, ri),
                        _ => return refuse("join condition comparing columns of the same side"),
                    },
                };
                pairs.push((lc, rc));
            }
            let pk = right.def().primary_key();
            let mut left_keys = Vec::with_capacity(pk.len());
            for &k in pk {
                match pairs.iter().find(|(_, r)| *r == k) {
                    Some((l, _)) => left_keys.push(*l),
                    None => {
                        return refuse(format!(
                            "a JOIN not on the whole primary key of \"{}\"",
                            right.name()
                        ))
                    }
                }
            }
            if pairs.iter().any(|(_, r)| !pk.contains(r)) {
                return refuse(format!("a JOIN on columns of \"{}\" outside its primary key", right.name()));
            }
            let key_types = pk.iter().map(|&k| right.schema().field(k).data_type().clone()).collect();
            let join = JoinSpec { right: right.name().to_string(), right_id: right.def().id, left_keys, key_types, right_schema: right.schema().clone(), left_outer };
            Ok((stream, Some(join), j.schema.as_ref()))
        }
        other => refuse(format!("reading from {}", node_name(other))),
    }
}

fn strip_cast(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip_cast(&c.expr),
        Expr::TryCast(c) => strip_cast(&c.expr),
        other => other,
    }
}

fn agg_spec(
    e: &Expr,
    input: &DFSchema,
    props: &ExecutionProps,
    output_type: DataType,
    append_only: bool,
) -> Result<AggSpec> {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(f) = e else {
        return refuse(format!("aggregate expression {e}"));
    };
    let name = f.func.name().to_ascii_lowercase();
    let p = &f.params;
    let arg = |i: usize| -> Result<PhysExpr> {
        let a = p.args.get(i).ok_or_else(|| ViewError::InvalidDefinition(format!("{name} needs an argument")))?;
        Ok(phys(a, input, props)?)
    };
    let arg_type = |i: usize| -> Result<DataType> {
        let a = p.args.get(i).ok_or_else(|| ViewError::InvalidDefinition(format!("{name} needs an argument")))?;
        Ok(a.get_type(input)?)
    };
    let is_star = p.args.is_empty() || matches!(p.args.first(), Some(Expr::Literal(v, _)) if !v.is_null());
    let kind = match (name.as_str(), p.distinct) {
        ("count", false) if is_star => AggKind::CountStar,
        ("count", false) => AggKind::Count,
        ("count", true) => AggKind::CountDistinct,
        ("sum", false) => AggKind::Sum(NumKind::of(&arg_type(0)?)?),
        ("avg" | "mean", false) => AggKind::Avg(NumKind::of(&arg_type(0)?)?),
        ("min", _) => AggKind::Min,
        ("max", _) => AggKind::Max,
        ("var" | "var_samp" | "var_sample", false) => AggKind::Var { population: false, sqrt: false },
        ("var_pop" | "var_population", false) => AggKind::Var { population: true, sqrt: false },
        ("stddev" | "stddev_samp", false) => AggKind::Var { population: false, sqrt: true },
        ("stddev_pop", false) => AggKind::Var { population: true, sqrt: true },
        ("bool_and", _) => AggKind::BoolAnd,
        ("bool_or", _) => AggKind::BoolOr,
        ("last_value" | "first_value", false) => {
            let [order] = p.order_by.as_slice() else {
                return refuse(format!("{name}() without exactly one ORDER BY expression (write {name}(x ORDER BY ts))"));
            };
            let last = (name == "last_value") == order.asc;
            let order_expr = phys(&order.expr, input, props)?;
            let order_type = order.expr.get_type(input)?;
            AggKind::Latest { last, order: order_expr, order_type }
        }
        (other, true) => return refuse(format!("{other}(DISTINCT ...)")),
        (other, false) => return refuse(format!("aggregate function {other}()")),
    };
    let args = match kind {
        AggKind::CountStar => Vec::new(),
        _ => vec![arg(0)?],
    };
    let input_type = match kind {
        AggKind::CountStar => DataType::Int64,
        _ => arg_type(0)?,
    };
    let filter = p.filter.as_ref().map(|f| phys(f, input, props)).transpose()?;
    let needs_values = matches!(kind, AggKind::Min | AggKind::Max | AggKind::Latest { .. }) && !append_only
        || matches!(kind, AggKind::CountDistinct);
    Ok(AggSpec { kind, args, filter, input_type, output_type, needs_values })
}
