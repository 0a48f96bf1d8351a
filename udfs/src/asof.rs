//! `ASOF JOIN`: each left row joined to the one right row with the same keys whose time is
//! the closest at or before (or after) the left row's time.
//!
//! The server rewrites the SQL forms (DuckDB's `ASOF [LEFT] JOIN r ON l.k = r.k AND r.t <=
//! l.t`, Snowflake's `ASOF JOIN r MATCH_CONDITION (l.t >= r.t) ON ...`, and Flink's temporal
//! join `JOIN v FOR SYSTEM_TIME AS OF l.t AS f ON ...`) into ordinary joins whose condition is
//! wrapped in a marker function ([`ASOF_MARKER`], [`VERSIONED_MARKER`]). After DataFusion's
//! own analysis, [`AsOfJoinRule`] turns each marked join into an [`AsOfJoin`] node, which
//! [`AsOfPlanner`] executes as an [`exec::AsOfJoinExec`]: the right side hashed by its keys,
//! each key's rows sorted by time, one binary search per left row. Never a nested loop.
//!
//! A temporal join reads a view's history: the rule swaps the view's scan for its changes
//! (through the caller's [`HistoryResolver`]) and matches the latest version from at most
//! the left row's time, unless that version is the row's end.

pub mod exec;

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, DFSchemaRef, TableReference};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    cast, BinaryExpr, ColumnarValue, Expr, ExprSchemable, Extension, JoinType, LogicalPlan, LogicalPlanBuilder, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
    Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::datasource::provider_as_source;
use datafusion::catalog::Session;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;

/// Marks an `ASOF JOIN`'s condition: `ON nowdb_asof(cond)`.
pub const ASOF_MARKER: &str = "nowdb_asof";
/// Marks a temporal join's condition: `ON nowdb_versioned(left_time, cond)`.
pub const VERSIONED_MARKER: &str = "nowdb_versioned";

/// Finds the history (all changes, with `valid_from` and `ended` last) of the table a
/// temporal join reads.
pub type HistoryResolver = Arc<dyn Fn(&TableReference) -> Result<Arc<dyn TableProvider>> + Send + Sync>;

/// How the matched right time relates to the left time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum MatchOrder {
    /// The greatest right time `<=` the left time.
    AtOrBefore,
    /// The greatest right time `<` the left time.
    Before,
    /// The least right time `>=` the left time.
    AtOrAfter,
    /// The least right time `>` the left time.
    After,
}

impl MatchOrder {
    fn from_op(op: Operator) -> Option<Self> {
        match op {
            Operator::LtEq => Some(Self::AtOrBefore),
            Operator::Lt => Some(Self::Before),
            Operator::GtEq => Some(Self::AtOrAfter),
            Operator::Gt => Some(Self::After),
            _ => None,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::AtOrBefore => "<=",
            Self::Before => "<",
            Self::AtOrAfter => ">=",
            Self::After => ">",
        }
    }
}

/// The marker functions: placeholders the rule removes; calling one is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Marker {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for Marker {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::NotImplemented("an ASOF or temporal join condition can only be used as the ON condition of an INNER or LEFT join".into()))
    }
}

/// The two marker functions, for registration.
pub fn markers() -> Vec<ScalarUDF> {
    [ASOF_MARKER, VERSIONED_MARKER]
        .into_iter()
        .map(|name| ScalarUDF::new_from_impl(Marker { name, signature: Signature::variadic_any(Volatility::Immutable) }))
        .collect()
}

/// A planned ASOF join.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsOfJoin {
    left: LogicalPlan,
    right: LogicalPlan,
    /// Equality keys: (left expression, right expression), of one type each.
    on: Vec<(Expr, Expr)>,
    left_time: Expr,
    right_time: Expr,
    order: MatchOrder,
    /// For temporal joins, the right expression marking a row's end: matching an end is no
    /// match (the row did not exist at the left time).
    ended: Option<Expr>,
    left_outer: bool,
    /// How many right columns (the first ones) are output.
    right_output: usize,
    schema: DFSchemaRef,
}

impl PartialOrd for AsOfJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self == other).then_some(Ordering::Equal)
    }
}

impl AsOfJoin {
    #[allow(clippy::too_many_arguments)]
    fn try_new(
        left: LogicalPlan,
        right: LogicalPlan,
        on: Vec<(Expr, Expr)>,
        (left_time, right_time, order): (Expr, Expr, MatchOrder),
        ended: Option<Expr>,
        left_outer: bool,
        right_output: usize,
    ) -> Result<Self> {
        let kept: Vec<(Option<TableReference>, Arc<datafusion::arrow::datatypes::Field>)> = right
            .schema()
            .iter()
            .take(right_output)
            .map(|(q, f)| (q.cloned(), Arc::new(f.as_ref().clone().with_nullable(f.is_nullable() || left_outer))))
            .collect();
        let right_schema = DFSchema::new_with_metadata(kept, Default::default())?;
        let schema = Arc::new(left.schema().join(&right_schema)?);
        Ok(Self { left, right, on, left_time, right_time, order, ended, left_outer, right_output, schema })
    }
}

impl UserDefinedLogicalNodeCore for AsOfJoin {
    fn name(&self) -> &str {
        "AsOfJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.left, &self.right]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut e: Vec<Expr> = self.on.iter().flat_map(|(l, r)| [l.clone(), r.clone()]).collect();
        e.push(self.left_time.clone());
        e.push(self.right_time.clone());
        e.extend(self.ended.clone());
        e
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let on: Vec<String> = self.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
        write!(f, "AsOfJoin: type={}, on=[{}], match={} {} {}", if self.left_outer { "Left" } else { "Inner" }, on.join(", "), self.right_time, self.order.symbol(), self.left_time)?;
        if let Some(v) = &self.ended {
            write!(f, ", unless {v}")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, mut exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        if inputs.len() != 2 || exprs.len() != UserDefinedLogicalNodeCore::expressions(self).len() {
            return Err(DataFusionError::Internal("AsOfJoin rebuilt with the wrong inputs".into()));
        }
        let ended = self.ended.as_ref().and_then(|_| exprs.pop());
        let right_time = exprs.pop().ok_or_else(|| DataFusionError::Internal("AsOfJoin: no right time".into()))?;
        let left_time = exprs.pop().ok_or_else(|| DataFusionError::Internal("AsOfJoin: no left time".into()))?;
        let mut on = Vec::with_capacity(exprs.len() / 2);
        let mut it = exprs.into_iter();
        while let (Some(l), Some(r)) = (it.next(), it.next()) {
            on.push((l, r));
        }
        let right = inputs.pop().ok_or_else(|| DataFusionError::Internal("AsOfJoin: no right input".into()))?;
        let left = inputs.pop().ok_or_else(|| DataFusionError::Internal("AsOfJoin: no left input".into()))?;
        Self::try_new(left, right, on, (left_time, right_time, self.order), ended, self.left_outer, self.right_output)
    }
}

/// Turns marked joins into [`AsOfJoin`] nodes.
pub struct AsOfJoinRule {
    history: HistoryResolver,
}

impl fmt::Debug for AsOfJoinRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsOfJoinRule")
    }
}

impl AsOfJoinRule {
    /// A rule reading temporal joins' history through `history`.
    pub fn new(history: HistoryResolver) -> Self {
        Self { history }
    }

    fn rewrite(&self, plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else { return Ok(Transformed::no(plan)) };
        let Some(Expr::ScalarFunction(ScalarFunction { func, args })) = &join.filter else { return Ok(Transformed::no(plan)) };
        let versioned = match func.name() {
            ASOF_MARKER => false,
            VERSIONED_MARKER => true,
            _ => return Ok(Transformed::no(plan)),
        };
        let left_outer = match join.join_type {
            JoinType::Inner => false,
            JoinType::Left => true,
            other => return Err(unsupported(format!("{other} ASOF or temporal join (they are INNER or LEFT)"))),
        };
        if !join.on.is_empty() {
            return Err(DataFusionError::Internal("marked join with equijoin keys".into()));
        }
        let left = join.left.as_ref().clone();
        let (right, right_output, cond, time) = if versioned {
            let [time, cond] = args.as_slice() else { return Err(DataFusionError::Internal("temporal join marker arity".into())) };
            let (history, n) = self.versions_of(&join.right)?;
            (history, n, cond, Some(time.clone()))
        } else {
            let [cond] = args.as_slice() else { return Err(DataFusionError::Internal("ASOF join marker arity".into())) };
            let n = join.right.schema().fields().len();
            (join.right.as_ref().clone(), n, cond, None)
        };
        let (l_schema, r_schema) = (left.schema().clone(), right.schema().clone());
        let side = |e: &Expr| -> Side {
            let cols = e.column_refs();
            if cols.is_empty() {
                Side::Neither
            } else if cols.iter().all(|c| l_schema.has_column(c)) {
                Side::Left
            } else if cols.iter().all(|c| r_schema.has_column(c)) {
                Side::Right
            } else {
                Side::Both
            }
        };
        let mut on = Vec::new();
        let mut inequality: Option<(Expr, Expr, MatchOrder)> = None;
        for c in split_conjunction(cond) {
            let Expr::BinaryExpr(BinaryExpr { left: a, op, right: b }) = c else {
                return Err(condition_error(c));
            };
            let (a, b, op) = match (side(a), side(b)) {
                (Side::Left, Side::Right) => (a.as_ref().clone(), b.as_ref().clone(), *op),
                (Side::Right, Side::Left) => (b.as_ref().clone(), a.as_ref().clone(), op.swap().unwrap_or(*op)),
                _ => return Err(condition_error(c)),
            };
            // Now `a` is the left side's, `b` the right side's: `a op b`.
            if op == Operator::Eq {
                on.push(coerce_pair(a, b, &l_schema, &r_schema)?);
            } else if let (false, Some(order)) = (versioned, op.swap().and_then(MatchOrder::from_op)) {
                if inequality.is_some() {
                    return Err(unsupported("an ASOF JOIN with more than one inequality (it takes one between the two sides' times)".into()));
                }
                inequality = Some((a, b, order));
            } else {
                return Err(condition_error(c));
            }
        }
        let (times, ended) = match time {
            Some(t) => {
                let fields = right.schema();
                let column = |i: usize| Expr::Column(Column::from(fields.qualified_field(i)));
                ((t, column(right_output), MatchOrder::AtOrBefore), Some(column(right_output + 1)))
            }
            None => (inequality.ok_or_else(|| unsupported("an ASOF JOIN without an inequality between the two sides' times (e.g. ON l.k = r.k AND r.ts <= l.ts)".into()))?, None),
        };
        for (e, schema) in [(&times.0, &l_schema), (&times.1, &r_schema)] {
            let ty = e.get_type(schema.as_ref())?;
            if exec::time_kind(&ty).is_none() {
                return Err(unsupported(format!("an ASOF JOIN time of type {ty} (times are timestamps, dates or integers)")));
            }
        }
        let node = AsOfJoin::try_new(left, right, on, times, ended, left_outer, right_output)?;
        Ok(Transformed::yes(LogicalPlan::Extension(Extension { node: Arc::new(node) })))
    }

    /// The history of the view a temporal join reads, under the same alias, and how many
    /// of its columns are the view's.
    fn versions_of(&self, right: &LogicalPlan) -> Result<(LogicalPlan, usize)> {
        let (alias, scan) = match right {
            LogicalPlan::SubqueryAlias(a) => match a.input.as_ref() {
                LogicalPlan::TableScan(s) => (Some(a.alias.clone()), s),
                _ => return Err(unsupported("FOR SYSTEM_TIME AS OF on a subquery (it reads a materialized view)".into())),
            },
            LogicalPlan::TableScan(s) => (None, s),
            _ => return Err(unsupported("FOR SYSTEM_TIME AS OF on this relation (it reads a materialized view)".into())),
        };
        let provider = (self.history)(&scan.table_name)?;
        let n = scan.source.schema().fields().len();
        let history = LogicalPlanBuilder::scan(scan.table_name.clone(), provider_as_source(provider), None)?;
        let history = match alias {
            Some(a) => history.alias(a)?,
            None => history,
        };
        Ok((history.build()?, n))
    }
}

#[derive(PartialEq)]
enum Side {
    Left,
    Right,
    Both,
    Neither,
}

fn unsupported(what: String) -> DataFusionError {
    DataFusionError::NotImplemented(format!("{what} is not supported"))
}

fn condition_error(c: &Expr) -> DataFusionError {
    DataFusionError::NotImplemented(format!(
        "ASOF and temporal join conditions are equalities between the two sides' columns (and, for ASOF JOIN, one inequality between their times); cannot use {c}"
    ))
}

/// Casts an equality's two sides to their common type.
fn coerce_pair(a: Expr, b: Expr, l: &DFSchema, r: &DFSchema) -> Result<(Expr, Expr)> {
    let (lt, rt) = (a.get_type(l)?, b.get_type(r)?);
    if lt == rt {
        return Ok((a, b));
    }
    let common = comparison_coercion(&lt, &rt).ok_or_else(|| DataFusionError::Plan(format!("cannot compare {lt} with {rt} in a join condition")))?;
    let fit = |e: Expr, t: &DataType| if t == &common { e } else { cast(e, common.clone()) };
    Ok((fit(a, &lt), fit(b, &rt)))
}

impl AnalyzerRule for AsOfJoinRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan.transform_up_with_subqueries(|p| self.rewrite(p))?.data)
    }

    fn name(&self) -> &str {
        "nowdb_asof_join"
    }
}

/// Plans [`AsOfJoin`] nodes.
#[derive(Debug, Default)]
pub struct AsOfPlanner;

#[async_trait]
impl ExtensionPlanner for AsOfPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(join) = node.as_any().downcast_ref::<AsOfJoin>() else { return Ok(None) };
        let ([l, r], [pl, pr]) = (logical_inputs, physical_inputs) else {
            return Err(DataFusionError::Internal("AsOfJoin has two inputs".into()));
        };
        let phys = |e: &Expr, s: &DFSchema| planner.create_physical_expr(e, s, session, planning_ctx);
        let on = join.on.iter().map(|(a, b)| Ok((phys(a, l.schema())?, phys(b, r.schema())?))).collect::<Result<Vec<_>>>()?;
        let spec = exec::AsOfSpec {
            on,
            left_time: phys(&join.left_time, l.schema())?,
            right_time: phys(&join.right_time, r.schema())?,
            order: join.order,
            ended: join.ended.as_ref().map(|v| phys(v, r.schema())).transpose()?,
            left_outer: join.left_outer,
            right_output: join.right_output,
        };
        let schema = Arc::new(join.schema.as_arrow().clone());
        Ok(Some(Arc::new(exec::AsOfJoinExec::new(pl.clone(), pr.clone(), spec, schema))))
    }
}

/// The query planner: DataFusion's, plus [`AsOfPlanner`].
#[derive(Debug, Default)]
pub struct NowdbQueryPlanner;

#[async_trait]
impl QueryPlanner for NowdbQueryPlanner {
    async fn create_physical_plan(&self, plan: &LogicalPlan, session: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(AsOfPlanner)]).create_physical_plan(plan, session).await
    }
}
