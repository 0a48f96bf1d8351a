//! Role statements, as PostgreSQL spells them: `CREATE ROLE|USER name [WITH] [LOGIN|NOLOGIN]
//! [SUPERUSER|NOSUPERUSER] [PASSWORD 'p'|NULL]`, `ALTER ROLE|USER` with the same options or
//! `RENAME TO`, `DROP ROLE|USER [IF EXISTS]`, and `GRANT|REVOKE privileges ON [TABLE] t, ... |
//! ALL TABLES IN SCHEMA public TO|FROM role, ...`. `CREATE USER` is `CREATE ROLE ... LOGIN`
//! (the front door rewrites `USER` to `ROLE`, [`crate::extensions`]).

use std::collections::BTreeSet;

use datafusion::sql::sqlparser::ast::{
    Action, AlterRoleOperation, CreateRole, Expr, GrantObjects, Grantee, GranteeName, GranteesType, ObjectName, Password,
    Privileges, RoleOption, Value,
};
use nowdb_catalog::{Privilege, RoleDef};

use crate::auth::verifiers;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};

fn password_text(expr: &Expr) -> NowResult<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Ok(s.clone()),
            other => Err(NowError::coded("22023", format!("password must be a string literal, not {other}"))),
        },
        other => Err(NowError::coded("22023", format!("password must be a string literal, not {other}"))),
    }
}

fn set_password(def: &mut RoleDef, password: &Password) -> NowResult<()> {
    match password {
        Password::Password(expr) => {
            let text = password_text(expr)?;
            if text.is_empty() {
                // PostgreSQL: an empty password is the same as none.
                def.scram = None;
                def.md5 = None;
            } else {
                let (scram, md5) = verifiers(&def.name, &text);
                def.scram = Some(scram);
                def.md5 = Some(md5);
            }
        }
        Password::NullPassword => {
            def.scram = None;
            def.md5 = None;
        }
    }
    Ok(())
}

fn role_name(name: &ObjectName) -> NowResult<String> {
    match name.0.as_slice() {
        [part] => part.as_ident().map(crate::ddl::ident_name).ok_or_else(|| NowError::Syntax(format!("invalid role name {name}"))),
        _ => Err(NowError::Syntax(format!("invalid role name {name}"))),
    }
}

/// `CREATE ROLE` (and `CREATE USER`, rewritten to it with LOGIN).
pub fn create(engine: &Engine, stmt: &CreateRole) -> NowResult<&'static str> {
    for name in &stmt.names {
        let name = role_name(name)?;
        if engine.roles().get(&name).is_some() {
            if stmt.if_not_exists {
                continue;
            }
            return Err(nowdb_catalog::CatalogError::RoleExists(name).into());
        }
        let mut def = RoleDef::new(&name);
        def.login = stmt.login.unwrap_or(false);
        def.superuser = stmt.superuser.unwrap_or(false);
        if let Some(p) = &stmt.password {
            set_password(&mut def, p)?;
        }
        engine.roles().create(def)?;
    }
    Ok("CREATE ROLE")
}

/// `ALTER ROLE name [WITH] options` / `ALTER ROLE name RENAME TO other`.
pub fn alter(engine: &Engine, name: &str, operation: &AlterRoleOperation) -> NowResult<&'static str> {
    match operation {
        AlterRoleOperation::WithOptions { options } => {
            let mut failed = None;
            engine.roles().alter(name, |def| {
                for option in options {
                    let applied = match option {
                        RoleOption::Login(v) => {
                            def.login = *v;
                            Ok(())
                        }
                        RoleOption::SuperUser(v) => {
                            def.superuser = *v;
                            Ok(())
                        }
                        RoleOption::Password(p) => set_password(def, p),
                        // Attributes nowdb has no use for are accepted, as PostgreSQL stores them.
                        _ => Ok(()),
                    };
                    if let Err(e) = applied {
                        failed = Some(e);
                        return;
                    }
                }
            })?;
            match failed {
                Some(e) => Err(e),
                None => Ok("ALTER ROLE"),
            }
        }
        AlterRoleOperation::RenameRole { role_name } => {
            let new_name = crate::ddl::ident_name(role_name);
            let mut def = engine.roles().get(name).map(|d| d.as_ref().clone()).ok_or_else(|| nowdb_catalog::CatalogError::NoSuchRole(name.to_string()))?;
            if engine.roles().get(&new_name).is_some() {
                return Err(nowdb_catalog::CatalogError::RoleExists(new_name).into());
            }
            def.name = new_name;
            // PostgreSQL clears an md5 password on rename: it was salted with the old name.
            def.md5 = None;
            engine.roles().create(def)?;
            engine.roles().drop_role(name)?;
            Ok("ALTER ROLE")
        }
        other => Err(NowError::Unsupported(format!("ALTER ROLE {other} is not supported"))),
    }
}

/// `DROP ROLE [IF EXISTS] names`.
pub fn drop(engine: &Engine, names: &[ObjectName], if_exists: bool, current_user: &str) -> NowResult<&'static str> {
    for name in names {
        let name = role_name(name)?;
        if name == current_user {
            return Err(NowError::coded("55006", "current user cannot be dropped"));
        }
        if !engine.roles().drop_role(&name)? && !if_exists {
            return Err(nowdb_catalog::CatalogError::NoSuchRole(name).into());
        }
    }
    Ok("DROP ROLE")
}

fn privileges_of(privileges: &Privileges) -> NowResult<Vec<Privilege>> {
    match privileges {
        Privileges::All { .. } => Ok(Privilege::ALL.to_vec()),
        Privileges::Actions(actions) => actions
            .iter()
            .map(|a| match a {
                Action::Select { .. } => Ok(Privilege::Select),
                Action::Insert { .. } => Ok(Privilege::Insert),
                Action::Update { .. } => Ok(Privilege::Update),
                Action::Delete | Action::Truncate => Ok(Privilege::Delete),
                other => Err(NowError::Unsupported(format!("privilege {other} is not supported on tables"))),
            })
            .collect(),
    }
}

fn relations_of(engine: &Engine, objects: Option<&GrantObjects>) -> NowResult<Vec<String>> {
    match objects {
        Some(GrantObjects::Tables(names)) => names
            .iter()
            .map(|n| {
                let name = crate::ddl::table_name(n)?;
                engine.catalog().require(&name)?;
                Ok(name)
            })
            .collect(),
        Some(
            GrantObjects::AllTablesInSchema { schemas }
            | GrantObjects::AllMaterializedViewsInSchema { schemas }
            | GrantObjects::AllViewsInSchema { schemas },
        ) => {
            for schema in schemas {
                let s = schema.to_string();
                if !s.eq_ignore_ascii_case(nowdb_catalog::SCHEMA) {
                    return Err(NowError::coded("3F000", format!("schema \"{s}\" does not exist")));
                }
            }
            let views_only = matches!(objects, Some(GrantObjects::AllMaterializedViewsInSchema { .. } | GrantObjects::AllViewsInSchema { .. }));
            Ok(engine.catalog().tables().iter().filter(|t| !views_only || t.is_view()).map(|t| t.name().to_string()).collect())
        }
        Some(other) => Err(NowError::Unsupported(format!("GRANT ON {other} is not supported: grant on tables, views or ALL TABLES IN SCHEMA public"))),
        None => Err(NowError::Unsupported("granting role membership is not supported".into())),
    }
}

fn grantees_of(engine: &Engine, grantees: &[Grantee]) -> NowResult<Vec<String>> {
    grantees
        .iter()
        .map(|g| match (&g.grantee_type, &g.name) {
            (GranteesType::Public, _) => Err(NowError::Unsupported("GRANT TO PUBLIC is not supported: grant to roles".into())),
            (_, Some(GranteeName::ObjectName(name))) => {
                let name = role_name(name)?;
                engine.roles().get(&name).ok_or_else(|| nowdb_catalog::CatalogError::NoSuchRole(name.clone()))?;
                Ok(name)
            }
            _ => Err(NowError::Syntax(format!("invalid grantee {g}"))),
        })
        .collect()
}

/// `GRANT` (`grant = true`) or `REVOKE` of table privileges.
pub fn grant(engine: &Engine, grant: bool, privileges: &Privileges, objects: Option<&GrantObjects>, grantees: &[Grantee]) -> NowResult<&'static str> {
    let privileges = privileges_of(privileges)?;
    let relations = relations_of(engine, objects)?;
    for role in grantees_of(engine, grantees)? {
        engine.roles().alter(&role, |def| {
            for relation in &relations {
                let held = def.privileges.entry(relation.clone()).or_insert_with(BTreeSet::new);
                for p in &privileges {
                    if grant {
                        held.insert(*p);
                    } else {
                        held.remove(p);
                    }
                }
                if held.is_empty() {
                    def.privileges.remove(relation);
                }
            }
        })?;
    }
    Ok(if grant { "GRANT" } else { "REVOKE" })
}

/// Forgets privileges on relations that no longer exist (after a DROP, CASCADE included).
pub fn forget_dropped(engine: &Engine) -> NowResult<()> {
    let gone: BTreeSet<String> = engine
        .roles()
        .all()
        .iter()
        .flat_map(|r| r.privileges.keys().cloned().collect::<Vec<_>>())
        .filter(|relation| engine.catalog().table(relation).is_none())
        .collect();
    for relation in gone {
        engine.roles().forget_relation(&relation)?;
    }
    Ok(())
}
