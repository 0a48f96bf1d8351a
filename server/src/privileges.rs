//! Privilege checks: what a statement touches ([`Access`], computed once when it is prepared)
//! against what the session's role may do (checked at every execution, so a REVOKE applies to
//! statements prepared before it). As in PostgreSQL: superusers pass every check; other roles
//! need `SELECT` on each table or view a statement reads, `INSERT`/`UPDATE`/`DELETE` on the one
//! it writes, and only superusers change the schema (tables, views, models, roles). Models are
//! functions, which PostgreSQL lets every role execute; system catalogs are readable by all.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::sql::sqlparser::ast::{CopySource, CopyTarget, ObjectType, Statement};
use nowdb_catalog::Privilege;

use crate::error::{NowError, NowResult};
use crate::model_sql::ModelStatement;
use crate::session::Session;
use crate::statement::{Parsed, PlanKind};

/// What a statement needs.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Relations read.
    pub reads: Vec<String>,
    /// Relations written, and how.
    pub writes: Vec<(String, Privilege)>,
    /// Set for statements only a superuser may run: the refusal's message.
    pub superuser_only: Option<String>,
}

impl Access {
    /// What `stmt`, planned as `kind`, touches.
    pub fn of(session: &Session, stmt: &Parsed, kind: &PlanKind) -> Access {
        let mut access = Access::default();
        match kind {
            PlanKind::Query(plan) => access.reads = reads_of(session, plan),
            PlanKind::Insert(plan, on_conflict) => {
                access.add_dml(session, plan);
                if on_conflict.is_some() {
                    if let Some((table, _)) = access.writes.first().cloned() {
                        access.writes.push((table, Privilege::Update));
                    }
                }
            }
            PlanKind::Update(plan) | PlanKind::Delete(plan) => access.add_dml(session, plan),
            PlanKind::Utility => access.superuser_only = superuser_only(stmt),
        }
        if let Parsed::Sql(s) = stmt {
            if let Statement::Copy { source: CopySource::Table { table_name, .. }, to: false, target: CopyTarget::Stdin, .. } = s.as_ref() {
                if let Ok(name) = crate::ddl::table_name(table_name) {
                    access.writes.push((name, Privilege::Insert));
                }
            }
        }
        access
    }

    fn add_dml(&mut self, session: &Session, plan: &LogicalPlan) {
        let _ = plan.apply(|node| {
            if let LogicalPlan::Dml(dml) = node {
                let privilege = match dml.op {
                    WriteOp::Update => Privilege::Update,
                    WriteOp::Delete => Privilege::Delete,
                    _ => Privilege::Insert,
                };
                self.writes.push((dml.table_name.table().to_string(), privilege));
                self.reads.extend(reads_of(session, &dml.input));
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if self.writes.is_empty() {
            self.reads = reads_of(session, plan);
        }
    }

    /// Refuses (42501) what the session's role may not do.
    pub fn check(&self, session: &Session) -> NowResult<()> {
        if session.is_superuser() {
            return Ok(());
        }
        if let Some(message) = &self.superuser_only {
            return Err(NowError::coded("42501", message.clone()));
        }
        let role = session.engine().roles().get(session.user());
        let may = |p: Privilege, relation: &str| role.as_ref().is_some_and(|r| r.may(p, relation));
        for (relation, privilege) in &self.writes {
            if !may(*privilege, relation) {
                return Err(denied(session, relation));
            }
        }
        for relation in &self.reads {
            if !may(Privilege::Select, relation) {
                return Err(denied(session, relation));
            }
        }
        Ok(())
    }
}

/// Refuses (42501) reading `plan` unless the session may read every relation it scans.
pub fn require_reads(session: &Session, plan: &LogicalPlan) -> NowResult<()> {
    Access { reads: reads_of(session, plan), ..Default::default() }.check(session)
}

fn denied(session: &Session, relation: &str) -> NowError {
    let kind = match session.engine().catalog().table(relation) {
        Some(t) if t.is_view() => "materialized view",
        _ => "table",
    };
    NowError::coded("42501", format!("permission denied for {kind} {relation}"))
}

/// The nowdb tables and views `plan` scans, subqueries included (system catalogs excluded).
fn reads_of(session: &Session, plan: &LogicalPlan) -> Vec<String> {
    let catalog = session.engine().catalog();
    let mut out = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let public = scan.table_name.schema().is_none_or(|s| s == nowdb_catalog::SCHEMA);
            let name = scan.table_name.table();
            if public && catalog.table(name).is_some() && !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// The refusal for a schema or role change by a non-superuser; `None` for statements every
/// role may run (SET, SHOW, transactions, COPY, which checks its table).
fn superuser_only(stmt: &Parsed) -> Option<String> {
    let s = match stmt {
        Parsed::Model(ModelStatement::Create(_)) => return Some("permission denied to create model".into()),
        Parsed::Model(ModelStatement::Drop { .. }) => return Some("must be superuser to drop a model".into()),
        Parsed::Sink(_) => return Some("must be superuser to create or drop a sink".into()),
        Parsed::Sql(s) => s.as_ref(),
    };
    match s {
        Statement::CreateTable(_) | Statement::CreateView(_) | Statement::CreateIndex(_) | Statement::AlterTable(_) => {
            Some("permission denied for schema public".into())
        }
        Statement::Drop { object_type: ObjectType::Role | ObjectType::User, .. } => Some("permission denied to drop role".into()),
        Statement::Drop { names, .. } => Some(format!("must be owner of {}", names.first().map(|n| n.to_string()).unwrap_or_default())),
        Statement::Truncate(_) => Some("permission denied: TRUNCATE needs a superuser".into()),
        Statement::CreateRole(_) | Statement::AlterRole { .. } => Some("permission denied to create or alter role".into()),
        Statement::Grant(_) | Statement::Revoke(_) => Some("permission denied to grant or revoke privileges".into()),
        _ => None,
    }
}
