//! Connection startup: client authentication (trust, md5, SCRAM-SHA-256) against the roles
//! in the catalog, then registration for cancel requests and the server parameters.
//!
//! The exchange follows PostgreSQL: any failure is a FATAL `28P01 password authentication
//! failed for user "..."` (the same for an unknown user, who is taken through a SCRAM exchange
//! with a random salt so that the answer does not tell which names exist), and any message
//! other than a password response while one is expected ends the connection (08P01), so no
//! query runs before authentication has finished.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramServerAuth, ScramServerAuthWaitingForClientFinal};
use pgwire::api::auth::sasl::SCRAM_SHA_256_METHOD;
use pgwire::api::auth::{finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, Password, ServerParameterProvider, StartupHandler};
use pgwire::api::{ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use nowdb_catalog::{RoleDef, ScramSecret};
use tracing::{debug, warn};

use crate::config::AuthMethod;
use crate::engine::Engine;
use crate::session::Session;

/// SCRAM iterations for new verifiers (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// The role name used when the startup message names none, and the superuser created by
/// `superuser_password`.
pub const DEFAULT_USER: &str = "nowdb";

/// Both password verifiers of `password` for role `name`.
pub fn verifiers(name: &str, password: &str) -> (ScramSecret, String) {
    let salt: [u8; 16] = rand::random();
    let salted_password = gen_salted_password(password, &salt, SCRAM_ITERATIONS as usize);
    let scram = ScramSecret { salt: salt.to_vec(), iterations: SCRAM_ITERATIONS, salted_password };
    (scram, format!("md5{:x}", md5::compute(format!("{password}{name}"))))
}

/// Where one connection's authentication stands (kept in its session extensions).
enum Exchange {
    /// An md5 challenge was sent with this salt.
    Md5 { salt: [u8; 4] },
    /// SASL mechanisms were offered.
    ScramOffered,
    /// The server-first message was sent; `known` is false for an unknown user or one
    /// without a SCRAM verifier, who will be refused after the exchange.
    ScramFinal { waiting: Box<ScramServerAuthWaitingForClientFinal>, known: bool },
}

/// The startup handler.
pub struct Startup {
    engine: Arc<Engine>,
    manager: Arc<ConnectionManager>,
    keys: RandomPidSecretKeyGenerator,
    scram: ScramServerAuth,
}

impl Startup {
    /// A startup handler registering connections in `manager`.
    pub fn new(engine: Arc<Engine>, manager: Arc<ConnectionManager>) -> Self {
        let mut scram = ScramServerAuth::new();
        scram.set_iterations(SCRAM_ITERATIONS as usize);
        Self { engine, manager, keys: RandomPidSecretKeyGenerator::default(), scram }
    }

    fn method(&self) -> AuthMethod {
        self.engine.config().auth
    }
}

/// The user named in the startup message (`nowdb` when it names none).
pub(crate) fn user_of<C: ClientInfo + ?Sized>(client: &C) -> String {
    client.metadata().get("user").cloned().unwrap_or_else(|| DEFAULT_USER.to_string())
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".to_owned(), code.to_owned(), message)))
}

fn auth_failed(user: &str) -> PgWireError {
    fatal("28P01", format!("password authentication failed for user \"{user}\""))
}

fn exchange<C: ClientInfo + ?Sized>(client: &C) -> Option<Exchange> {
    client.session_extensions().get::<Mutex<Option<Exchange>>>().and_then(|slot| slot.lock().ok()?.take())
}

fn set_exchange<C: ClientInfo + ?Sized>(client: &C, next: Exchange) {
    client.session_extensions().insert(Mutex::new(Some(next)));
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) if matches!(client.state(), PgWireConnectionState::AwaitingStartup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let user = user_of(client);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                match self.method() {
                    AuthMethod::Trust => {
                        if let Some(role) = self.engine.roles().get(&user) {
                            if !role.login {
                                return Err(fatal("28000", format!("role \"{user}\" is not permitted to log in")));
                            }
                        }
                        self.finish(client, &user).await
                    }
                    AuthMethod::Md5 => {
                        let salt: [u8; 4] = rand::random();
                        set_exchange(client, Exchange::Md5 { salt });
                        client.send(PgWireBackendMessage::Authentication(Authentication::MD5Password(salt.to_vec()))).await?;
                        Ok(())
                    }
                    AuthMethod::ScramSha256 => {
                        set_exchange(client, Exchange::ScramOffered);
                        let offered = vec![SCRAM_SHA_256_METHOD.to_string()];
                        client.send(PgWireBackendMessage::Authentication(Authentication::SASL(offered))).await?;
                        Ok(())
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) if matches!(client.state(), PgWireConnectionState::AuthenticationInProgress) => {
                let user = user_of(client);
                let role = self.engine.roles().get(&user).filter(|r| r.login);
                match exchange(client) {
                    Some(Exchange::Md5 { salt }) => {
                        let sent = msg.into_password()?.password;
                        let expected = role.as_ref().and_then(|r| r.md5.as_ref()).map(|verifier| {
                            let hex = verifier.trim_start_matches("md5");
                            let mut salted = hex.as_bytes().to_vec();
                            salted.extend_from_slice(&salt);
                            format!("md5{:x}", md5::compute(salted))
                        });
                        match expected {
                            Some(e) if constant_time_eq(e.as_bytes(), sent.as_bytes()) => self.finish(client, &user).await,
                            _ => Err(self.refuse(&user)),
                        }
                    }
                    Some(Exchange::ScramOffered) => {
                        let initial = msg.into_sasl_initial_response()?;
                        if initial.auth_method != SCRAM_SHA_256_METHOD {
                            return Err(fatal("28000", format!("SASL authentication mechanism {} is not supported", initial.auth_method)));
                        }
                        let data = initial.data.ok_or_else(|| fatal("08P01", "SASL initial response without data".into()))?;
                        let secret = role.as_ref().and_then(|r| r.scram.clone());
                        let known = secret.is_some();
                        // An unknown user gets a well-formed exchange with a random salt and a
                        // random key, and is refused at the end like a wrong password.
                        let secret = secret.unwrap_or_else(|| verifiers(&user, &rand::random::<u64>().to_string()).0);
                        let expected = Password::new(Some(secret.salt), secret.salted_password);
                        let (server_first, waiting) = self.scram.on_client_first_message(&data, expected)?;
                        set_exchange(client, Exchange::ScramFinal { waiting: Box::new(waiting), known });
                        client.send(PgWireBackendMessage::Authentication(Authentication::SASLContinue(server_first.into()))).await?;
                        Ok(())
                    }
                    Some(Exchange::ScramFinal { waiting, known }) => {
                        let response = msg.into_sasl_response()?;
                        match waiting.on_client_final_message(&response.data) {
                            Ok(server_final) if known => {
                                client.feed(PgWireBackendMessage::Authentication(Authentication::SASLFinal(server_final.into()))).await?;
                                self.finish(client, &user).await
                            }
                            _ => Err(self.refuse(&user)),
                        }
                    }
                    None => Err(fatal("08P01", "unexpected password message".into())),
                }
            }
            other => {
                // Anything else before authentication finished (a Query where the password is
                // expected, a second startup message) ends the connection.
                let debug = format!("{other:?}");
                let kind = debug.split(['(', ' ', '{']).next().unwrap_or("unknown");
                warn!(message = kind, "protocol violation during startup");
                Err(fatal("08P01", format!("expected a password response, got a {kind} message")))
            }
        }
    }
}

impl Startup {
    fn refuse(&self, user: &str) -> PgWireError {
        self.engine.metrics().auth_failures.inc();
        warn!(%user, "password authentication failed");
        auth_failed(user)
    }

    async fn finish<C>(&self, client: &mut C, user: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, key) = self.keys.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let (handle, guard) = self.manager.register(pid, key);
        client.session_extensions().insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert::<ConnectionGuard>(guard);
        let session = Session::new(self.engine.clone(), user);
        let superuser = session.is_superuser();
        client.session_extensions().insert(session);
        debug!(%user, peer = %client.socket_addr(), tls = client.is_secure(), "connection authorized");
        finish_authentication(client, &ServerParams { superuser }).await
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Creates the superuser `nowdb` with `password`, or resets its password (the
/// `superuser_password` setting).
pub fn bootstrap_superuser(engine: &Engine, password: &str) -> Result<(), nowdb_catalog::CatalogError> {
    let (scram, md5) = verifiers(DEFAULT_USER, password);
    let mut def = engine.roles().get(DEFAULT_USER).map(|r| r.as_ref().clone()).unwrap_or_else(|| RoleDef::new(DEFAULT_USER));
    def.superuser = true;
    def.login = true;
    def.scram = Some(scram);
    def.md5 = Some(md5);
    engine.roles().upsert(def)
}

/// The parameters reported after authentication.
struct ServerParams {
    superuser: bool,
}

impl ServerParameterProvider for ServerParams {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let user = user_of(client);
        let app = client.metadata().get("application_name").cloned().unwrap_or_default();
        let params = [
            ("server_version", crate::SERVER_VERSION.to_string()),
            ("server_encoding", "UTF8".into()),
            ("client_encoding", "UTF8".into()),
            ("DateStyle", "ISO, MDY".into()),
            ("TimeZone", "UTC".into()),
            ("IntervalStyle", "postgres".into()),
            ("integer_datetimes", "on".into()),
            ("standard_conforming_strings", "on".into()),
            ("is_superuser", if self.superuser { "on" } else { "off" }.into()),
            ("in_hot_standby", "off".into()),
            ("default_transaction_read_only", "off".into()),
            ("search_path", "\"$user\", public".into()),
            ("session_authorization", user),
            ("application_name", app),
        ];
        Some(params.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_verifier_is_postgres_format() {
        // PostgreSQL: SELECT 'md5' || md5('secret' || 'alice') = md5 of "secretalice".
        let (_, md5) = verifiers("alice", "secret");
        assert_eq!(md5, format!("md5{:x}", md5::compute("secretalice")));
        assert_eq!(md5.len(), 35);
    }

    #[test]
    fn verifiers_salt_differently_each_time() {
        let (a, _) = verifiers("alice", "secret");
        let (b, _) = verifiers("alice", "secret");
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.salted_password, b.salted_password);
        assert_eq!(a.iterations, SCRAM_ITERATIONS);
    }
}
