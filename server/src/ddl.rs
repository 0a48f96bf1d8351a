//! `CREATE TABLE` and `DROP TABLE`: from the SQL AST to catalog definitions.

use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, Expr as SqlExpr, Ident, ObjectName, ObjectType, TableConstraint,
};
use nowdb_catalog::{Catalog, ColumnDef, SqlType};

use crate::error::{NowError, NowResult};

/// Postgres identifier folding: unquoted names are lower-cased.
pub fn ident_name(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// The table name of a possibly schema-qualified object name (`public.t` or `t`).
pub fn table_name(name: &ObjectName) -> NowResult<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(ident_name).ok_or_else(|| NowError::Syntax(format!("invalid name {name}"))))
        .collect::<NowResult<_>>()?;
    match parts.as_slice() {
        [t] => Ok(t.clone()),
        [s, t] if s == nowdb_catalog::SCHEMA => Ok(t.clone()),
        [d, s, t] if s == nowdb_catalog::SCHEMA && d == nowdb_catalog::DATABASE => Ok(t.clone()),
        [.., s, _] => Err(NowError::coded("3F000", format!("schema \"{s}\" does not exist"))),
        [] => Err(NowError::Syntax("empty table name".into())),
    }
}

/// `CREATE TABLE`. Returns false when the table existed and `IF NOT EXISTS` was given.
pub fn create_table(catalog: &Catalog, ct: &CreateTable) -> NowResult<bool> {
    if ct.query.is_some() {
        return Err(NowError::Unsupported("CREATE TABLE ... AS SELECT is not supported; create the table, then INSERT ... SELECT".into()));
    }
    if ct.temporary {
        return Err(NowError::Unsupported("temporary tables are not supported".into()));
    }
    let name = table_name(&ct.name)?;
    let mut columns = Vec::with_capacity(ct.columns.len());
    let mut primary_key: Vec<String> = Vec::new();
    let mut set_pk = |cols: Vec<String>| -> NowResult<()> {
        if !primary_key.is_empty() {
            return Err(NowError::coded("42P16", format!("multiple primary keys for table \"{name}\" are not allowed")));
        }
        primary_key = cols;
        Ok(())
    };
    for col in &ct.columns {
        let col_name = ident_name(&col.name);
        let ty = SqlType::parse(&col.data_type.to_string())?;
        let mut nullable = true;
        for opt in &col.options {
            match &opt.option {
                ColumnOption::Null => nullable = true,
                ColumnOption::NotNull => nullable = false,
                ColumnOption::PrimaryKey(_) => set_pk(vec![col_name.clone()])?,
                ColumnOption::Collation(_) | ColumnOption::Comment(_) => {}
                ColumnOption::Default(_) => {
                    return Err(NowError::Unsupported(format!(
                        "column defaults are not supported yet (column \"{col_name}\")"
                    )))
                }
                other => {
                    return Err(NowError::Unsupported(format!(
                        "column constraint {other} is not supported (column \"{col_name}\"); only NOT NULL and PRIMARY KEY are"
                    )))
                }
            }
        }
        columns.push(ColumnDef { name: col_name, ty, nullable });
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let cols = pk
                    .columns
                    .iter()
                    .map(|c| match &c.column.expr {
                        SqlExpr::Identifier(id) => Ok(ident_name(id)),
                        other => Err(NowError::Unsupported(format!("primary key on expression {other}"))),
                    })
                    .collect::<NowResult<Vec<_>>>()?;
                set_pk(cols)?;
            }
            other => {
                return Err(NowError::Unsupported(format!(
                    "table constraint {other} is not supported; only PRIMARY KEY is"
                )))
            }
        }
    }
    Ok(catalog.create_table(&name, columns, primary_key, ct.if_not_exists)?)
}

/// `DROP TABLE [IF EXISTS] a, b`. All names are checked before anything is dropped.
pub fn drop(catalog: &Catalog, object_type: &ObjectType, if_exists: bool, names: &[ObjectName]) -> NowResult<()> {
    if !matches!(object_type, ObjectType::Table) {
        return Err(NowError::Unsupported(format!("DROP {object_type} is not supported")));
    }
    let names = names.iter().map(table_name).collect::<NowResult<Vec<_>>>()?;
    if !if_exists {
        for n in &names {
            catalog.require(n)?;
        }
    }
    for n in &names {
        catalog.drop_table(n, if_exists)?;
    }
    Ok(())
}
