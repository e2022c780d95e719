//! Wiring: the store, the callback service, its timer driver and the HTTP listener, started
//! and stopped as one.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::ServiceExt;
use axum::extract::Request;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::callback::engine::{Engine, SessionTable};
use crate::callback::service::Recovery;
use crate::callback::{Callbacks, scheduler};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StorageConfig};
use crate::routing::{AlwaysRegistered, Routing, WaitEstimator};
use crate::store::{SqliteStore, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the SIP transport on {addr}: {source}")]
    Sip {
        addr: SocketAddr,
        #[source]
        source: crate::call::driver::DriverError,
    },
}

/// What a server is built from; the parts left out take their defaults.
pub struct Builder {
    config: Config,
    engine: Option<Arc<dyn Engine>>,
    clock: Option<Arc<dyn Clock>>,
    estimator: Option<Arc<dyn WaitEstimator>>,
}

impl Builder {
    /// Replaces the in-process engine (fault injection in tests, or another engine).
    pub fn engine(mut self, engine: Arc<dyn Engine>) -> Self {
        self.engine = Some(engine);
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn estimator(mut self, estimator: Arc<dyn WaitEstimator>) -> Self {
        self.estimator = Some(estimator);
        self
    }

    /// Opens the store, recovers timers and sessions, and starts listening.
    pub async fn start(self) -> Result<Server, StartError> {
        let store: Arc<dyn Store> = match &self.config.storage {
            StorageConfig::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
        };
        let config = Arc::new(self.config);
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        // With telephony, agents' phones must be registered with our registrar to be ready.
        let phones = config
            .telephony
            .listen
            .map(|_| Arc::new(crate::call::phones::SipPhones::default()));
        let registry: Arc<dyn crate::routing::PhoneRegistry> = match &phones {
            Some(p) => p.clone(),
            None => Arc::new(AlwaysRegistered),
        };
        let routing = Routing::new(config.routing.clone(), clock.clone(), registry);
        let callbacks = Arc::new(Callbacks::new(
            config.clone(),
            store,
            self.engine
                .unwrap_or_else(|| Arc::new(SessionTable::with_routing(routing.clone()))),
            clock,
            self.estimator.unwrap_or_else(|| routing.clone()),
        ));
        let recovery = callbacks.recover().await?;
        let addr = config.http.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartError::Listen { addr, source })?;
        // The SIP transport, only when [telephony] is configured (no port 5060 otherwise); after
        // the HTTP bind so that a failure there leaves no SIP task behind.
        let (telephony, sip_tasks) = match config.telephony.listen {
            Some(addr) => {
                let t = &config.telephony;
                let mut d = crate::call::driver::DriverConfig::loopback();
                d.listen = addr;
                d.rtp_ports = t.rtp_ports;
                d.no_rtp_timeout = t.no_rtp_timeout;
                d.relay_threads = t.relay_threads;
                d.relay_tick = t.relay_tick;
                d.realm = t.realm.clone();
                d.accounts = t.accounts();
                d.route_points = t.route_points.clone();
                d.trunks = t.trunks.clone();
                let mut tasks = Vec::new();
                if let Some(p) = &phones {
                    p.attach(d.registrations.clone());
                    tasks.push(tokio::spawn(crate::call::phones::watch(
                        p.clone(),
                        routing.clone(),
                        std::time::Duration::from_secs(1),
                    )));
                }
                let (tel, task) = crate::call::driver::Telephony::start(d)
                    .await
                    .map_err(|source| StartError::Sip { addr, source })?;
                // Nothing takes inbound calls until the scenario engine does: a call to a route
                // point is refused at once (480) instead of ringing until it times out.
                drop(tel.incoming());
                // Trunk REGISTER and OPTIONS keepalive (ends at once when no trunk needs it).
                let upkeep = tel.start_trunk_upkeep(t);
                tracing::info!("SIP on udp and tcp {}", tel.local_addr());
                tasks.extend([upkeep, task]);
                (Some(tel), tasks)
            }
            None => (None, Vec::new()),
        };
        let scheduler = tokio::spawn(scheduler::run(callbacks.clone()));
        // Reservation timeouts, wrap-up ends and target timeouts.
        let routing_timers = tokio::spawn(routing.clone().run_timers(std::time::Duration::from_secs(1)));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = crate::api::app_with_telephony(callbacks.clone(), telephony.clone());
        let http = tokio::spawn(async move {
            let service = ServiceExt::<Request>::into_make_service(app);
            let served = axum::serve(listener, service).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::error!("HTTP server failed: {e}");
            }
        });
        tracing::info!(
            "listening on http://{local_addr} ({} records recovered, {} live sessions)",
            recovery.records,
            recovery.sessions
        );
        Ok(Server {
            local_addr,
            callbacks,
            recovery,
            stop: Some(stop),
            http: Some(http),
            scheduler,
            routing_timers,
            telephony,
            sip_tasks,
        })
    }
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    callbacks: Arc<Callbacks>,
    recovery: Recovery,
    stop: Option<oneshot::Sender<()>>,
    http: Option<JoinHandle<()>>,
    scheduler: JoinHandle<()>,
    routing_timers: JoinHandle<()>,
    telephony: Option<crate::call::driver::Telephony>,
    /// The SIP transport's task, the trunk upkeep task and the phone registration watch.
    sip_tasks: Vec<JoinHandle<()>>,
}

impl Server {
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            engine: None,
            clock: None,
            estimator: None,
        }
    }

    /// The address the HTTP listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn callbacks(&self) -> &Arc<Callbacks> {
        &self.callbacks
    }

    /// The SIP transport, when `[telephony]` is configured.
    pub fn telephony(&self) -> Option<&crate::call::driver::Telephony> {
        self.telephony.as_ref()
    }

    /// What the start found in the store.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// Waits until the HTTP server ends (it runs until [`Server::shutdown`]).
    pub async fn wait(&mut self) {
        if let Some(http) = self.http.take() {
            let _ = http.await;
        }
    }

    /// Stops accepting requests, lets requests in flight finish, stops the timers.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await;
        self.scheduler.abort();
        self.routing_timers.abort();
        for task in self.sip_tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        let _ = (&mut self.routing_timers).await;
        let _ = (&mut self.scheduler).await;
    }
}
