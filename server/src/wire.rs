//! The Postgres wire protocol: pgwire handlers for startup, simple and extended queries, COPY
//! and cancel, all funnelled into [`crate::statement`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{stream, Sink, SinkExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers, Type,
    DEFAULT_NAME,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::api::results::DescribeResponse;
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{Bind, BindComplete, Describe, Parse, ParseComplete, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::messages::response::CommandComplete;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::PgWireBackendMessage;
use pgwire::types::format::FormatOptions;
use tracing::{debug, info_span, warn, Instrument};

use crate::auth::Startup;
use crate::dialect::SqlFrontEnd;
use crate::encode;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};
use crate::session::{CopyState, Session};
use crate::settings::REPORTED;
use crate::model_sql::{self, Piece};
use crate::statement::{self, Outcome, Parsed, Prepared};

/// All pgwire handlers of one server.
#[derive(Clone)]
pub struct Handlers {
    engine: Arc<Engine>,
    parser: Arc<Parser>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    /// Handlers over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        let manager = Arc::new(ConnectionManager::new());
        Self {
            parser: Arc::new(Parser { engine: engine.clone(), sql: SqlFrontEnd::new() }),
            startup: Arc::new(Startup::new(engine.clone(), manager.clone())),
            cancel: Arc::new(DefaultCancelHandler::new(manager)),
            engine,
        }
    }
}

/// The query front door: parses text into statements.
pub struct Parser {
    engine: Arc<Engine>,
    sql: SqlFrontEnd,
}

impl Parser {
    fn parse(&self, sql: &str) -> NowResult<Vec<Parsed>> {
        let sql = crate::extensions::rewrite(sql);
        let Some(pieces) = model_sql::split(&sql) else {
            return self.parse_sql(&sql);
        };
        let mut out = Vec::with_capacity(pieces.len());
        for piece in pieces {
            match piece {
                Piece::Model(text) => out.push(Parsed::Model(model_sql::parse(text)?)),
                Piece::Sink(text) => out.push(Parsed::Sink(crate::sink_sql::parse(text)?)),
                Piece::Sql(text) => out.extend(self.parse_sql(text)?),
            }
        }
        Ok(out)
    }

    /// Postgres SQL, with nowdb's time-travel syntax where it is used.
    fn parse_sql(&self, sql: &str) -> NowResult<Vec<Parsed>> {
        let time_travel = match crate::temporal::mentions(sql) {
            true => crate::temporal::parse(sql, self.engine.catalog()),
            false => Ok(None),
        };
        let statements = match time_travel {
            Ok(Some(statements)) => statements.into_iter().map(|s| self.sql.rewrite(s)).collect(),
            Ok(None) => self.sql.parse(sql)?,
            // Not time travel after all (e.g. a column named `asof`), or a real error.
            Err(e) => self.sql.parse(sql).map_err(|_| e)?,
        };
        Ok(statements.into_iter().map(|s| Parsed::Sql(Box::new(s))).collect())
    }
}

fn session<C: ClientInfo + ?Sized>(client: &C, engine: &Arc<Engine>) -> Arc<Session> {
    client.session_extensions().get_or_insert_with(|| Session::new(engine.clone(), &crate::auth::user_of(client)))
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = self.parse(sql)?;
        if statements.len() > 1 {
            return Err(NowError::Syntax("cannot insert multiple commands into a prepared statement".into()).into());
        }
        let Some(stmt) = statements.pop() else { return Ok(None) };
        let session = session(client, &self.engine);
        let prepared = statement::prepare(&session, stmt, types)
            .instrument(info_span!("parse", sql = %truncate(sql)))
            .await?;
        Ok(Some(Arc::new(prepared)))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_wire_types.clone())
    }

    fn get_result_schema(&self, stmt: &Self::Statement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.result {
            Some(schema) => encode::fields(schema, format.unwrap_or(&Format::UnifiedText), None),
            None => Ok(vec![]),
        }
    }
}

fn truncate(sql: &str) -> &str {
    match sql.char_indices().nth(200) {
        Some((i, _)) => &sql[..i],
        None => sql,
    }
}

/// Turns an outcome into a pgwire response, sending ParameterStatus for reported settings.
async fn respond<C>(client: &mut C, outcome: Outcome, format: &Format) -> PgWireResult<Response>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    Ok(match outcome {
        Outcome::Rows(schema, batches) => {
            let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
            Response::Query(encode::query_response(&schema, batches, format, options)?)
        }
        Outcome::Command(tag) => Response::Execution(tag),
        Outcome::TxStart(tag) => Response::TransactionStart(tag),
        Outcome::TxEnd(tag) => Response::TransactionEnd(tag),
        Outcome::Set(name, value) => {
            if REPORTED.contains(&name) {
                client.metadata_mut().insert(name.to_string(), value.clone());
                client.send(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name.to_string(), value))).await?;
            }
            Response::Execution(Tag::new("SET"))
        }
        Outcome::CopyIn(columns, binary) => Response::CopyIn(CopyResponse::new(i8::from(binary), columns, stream::empty())),
        Outcome::CopyOut(schema, batches, copy_format) => {
            let columns = schema.fields().len();
            let encoder = encode::CopyRowEncoder::new(schema, &copy_format)?;
            let format = i8::from(encoder.is_binary());
            // Format 0 at construction: pgwire would append its own binary trailer, in a
            // message of its own; the encoder ends the data as PostgreSQL does.
            let mut response = CopyResponse::new(0, columns, encode::copy_stream(batches.0, encoder));
            response.format = format;
            Response::CopyOut(response)
        }
    })
}

#[async_trait]
impl SimpleQueryHandler for Handlers {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = self.parser.parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let session = session(client, &self.engine);
        let mut responses = Vec::with_capacity(statements.len());
        let no_params = datafusion::common::ParamValues::List(vec![]);
        let span = info_span!("query", sql = %truncate(query));
        for stmt in statements {
            let result = async {
                let prepared = statement::prepare(&session, stmt, &[]).await?;
                statement::execute(&session, &prepared, &no_params).await
            }
            .instrument(span.clone())
            .await;
            match result {
                Ok(outcome) => responses.push(respond(client, outcome, &Format::UnifiedText).await?),
                Err(e) => {
                    debug!(error = %e, "statement failed");
                    // Like Postgres, the rest of a multi-statement query is skipped.
                    responses.push(Response::Error(Box::new(e.to_error_info())));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handlers {
    type Statement = Arc<Prepared>;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    // Parse and Bind answer with ParseComplete / BindComplete *buffered*: they leave with the
    // Execute's rows instead of as TCP segments of their own (pgwire's defaults flush each one,
    // and every segment wakes the client up: a third of a lookup's CPU time was the kernel's
    // network path). Sync and the end of Execute still flush.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned());
        match StoredStatement::parse(client, &message, self.parser.clone()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client.feed(PgWireBackendMessage::ParseComplete(ParseComplete::new())).await?;
        Ok(())
    }

    // A statement without result columns (INSERT, UPDATE, SET...) is described with
    // ParameterDescription then NoData, as PostgreSQL does; pgwire would send an empty
    // RowDescription when it has parameters, and pgjdbc then takes it for a query.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                if stmt.statement.result.is_none() {
                    let described = self.do_describe_statement(client, &stmt).await?;
                    let oids = described.parameters().unwrap_or_default().iter().map(Type::oid).collect();
                    client.feed(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(oids))).await?;
                    client.send(PgWireBackendMessage::NoData(NoData::new())).await?;
                    return Ok(());
                }
            }
        }
        self._on_describe(client, message).await
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) if message.parameters.is_empty() => client.portal_store().put_empty_portal(portal_name),
            Some(Entry::Empty) => {
                return Err(NowError::coded(
                    "08P01",
                    format!("bind message supplies {} parameters, but prepared statement requires 0", message.parameters.len()),
                )
                .into())
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client.feed(PgWireBackendMessage::BindComplete(BindComplete::new())).await?;
        Ok(())
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Self::Statement>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = portal.statement.statement.clone();
        let inferred: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
            prepared.param_types.iter().map(Option::as_ref).collect();
        // oid and oid[] parameters hold the same 4-byte integers as int4 / int4[].
        let wire: Vec<Option<&Type>> = prepared
            .param_wire_types
            .iter()
            .map(|t| match *t {
                Type::OID => Some(&Type::INT4),
                Type::OID_ARRAY => Some(&Type::INT4_ARRAY),
                _ => Some(t),
            })
            .collect();
        if portal.parameter_len() != prepared.param_wire_types.len() && !prepared.param_wire_types.is_empty() {
            return Err(NowError::coded(
                "08P01",
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    portal.parameter_len(),
                    prepared.param_wire_types.len()
                ),
            )
            .into());
        }
        let params = arrow_pg::datatypes::df::deserialize_parameters_with_server_types(portal, &inferred, &wire)?;
        let session = session(client, &self.engine);
        let outcome = statement::execute(&session, &prepared, &params)
            .instrument(info_span!("execute", sql = %truncate(&prepared.sql)))
            .await?;
        match (outcome, &portal.result_column_format) {
            // Binary rows of a known shape: reuse the statement's row description.
            (Outcome::Rows(schema, batches), Format::UnifiedBinary)
                if prepared.result.as_ref().is_some_and(|r| r.fields().len() == schema.fields().len()) =>
            {
                let fields = match prepared.binary_fields.get() {
                    Some(f) => f.clone(),
                    None => {
                        let f = Arc::new(encode::fields(&schema, &Format::UnifiedBinary, None)?);
                        prepared.binary_fields.get_or_init(|| f).clone()
                    }
                };
                Ok(Response::Query(encode::rows_response(fields, batches)))
            }
            (outcome, format) => respond(client, outcome, format).await,
        }
    }
}

#[async_trait]
impl CopyHandler for Handlers {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session(client, &self.engine);
        let mut slot = session.copy()?;
        if let Some(CopyState::Receiving(copy)) = slot.as_mut() {
            if let Err(e) = copy.feed(&copy_data.data) {
                *slot = Some(CopyState::Failed(e));
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session(client, &self.engine);
        let state = session.copy()?.take();
        let rows = match state {
            Some(CopyState::Receiving(copy)) => copy.finish().instrument(info_span!("copy_in")).await?,
            Some(CopyState::Failed(e)) => return Err(e.into()),
            None => return Err(NowError::coded("08P01", "CopyDone without COPY in progress").into()),
        };
        self.engine.metrics().rows_ingested.inc_by(rows);
        let tag = Tag::new("COPY").with_rows(rows as usize);
        client.send(PgWireBackendMessage::CommandComplete(CommandComplete::from(tag))).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session(client, &self.engine);
        if let Ok(mut slot) = session.copy() {
            *slot = None;
        }
        NowError::coded("57014", format!("COPY from stdin failed: {}", fail.message)).into()
    }
}

/// Logs errors sent to clients.
pub struct LogErrors {
    engine: Arc<Engine>,
}

impl ErrorHandler for LogErrors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        let sqlstate = match error {
            PgWireError::UserError(info) => info.code.clone(),
            _ => "08P01".to_string(),
        };
        self.engine.metrics().client_errors.get_or_create(&crate::metrics::SqlStateLabel { sqlstate }).inc();
        match error {
            PgWireError::UserError(_) => debug!(error = %error, "statement error"),
            other => warn!(error = %other, "protocol error"),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(self.clone())
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(self.clone())
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::new(self.clone())
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors { engine: self.engine.clone() })
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}
