//! The bus over RabbitMQ (AMQP 0-9-1), for multi-node deployments.
//!
//! Topology, as oslo.messaging lays it out so that OpenStack tooling finds
//! its way around:
//! - RPC: a durable topic exchange `ferrostack`; each topic a durable queue
//!   of the same name that its servers share (round-robin); calls carry
//!   `reply_to` (this process's exclusive reply queue) and `correlation_id`,
//!   and expire with their timeout so that nobody runs a call its caller
//!   gave up on.
//! - Fan-out: the topic exchange `ferrostack_fanout`; each server its own
//!   exclusive queue bound with the topic.
//! - Notifications: oslo's v2 envelope on each service's control exchange
//!   (`nova`, `glance`, `neutron`, `cinder`, `keystone`, `openstack`) with the
//!   routing key `notifications.<priority>`.
//!
//! Nothing is lost: every publish waits for the broker's confirm (and is
//! sent again across a reconnect), casts are persistent, and a delivery is
//! acknowledged only once its server is done with it, so a server that dies
//! mid-message has it redelivered (flagged [`Incoming::redelivered`]).
//! A supervisor task reconnects with backoff after the broker goes away
//! and re-creates every consumer.

use crate::{Bus, BusError, Incoming, Notification, RpcMessage, NOTIFICATION_EXCHANGES};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

const RPC_EXCHANGE: &str = "ferrostack";
const FANOUT_EXCHANGE: &str = "ferrostack_fanout";
/// How long a publish waits for the broker (through reconnects) before the
/// caller is told the bus is unavailable.
const PATIENCE: Duration = Duration::from_secs(30);
/// Unacknowledged deliveries a server holds at once.
const PREFETCH: u16 = 64;
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Pauses between attempts to deliver a reply whose caller is reconnecting.
const REPLY_RETRY_MIN: Duration = Duration::from_millis(100);
const REPLY_RETRY_MAX: Duration = Duration::from_secs(1);

/// A call's answer on the reply queue.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Result(Value),
    Failure(String),
}

/// One live connection: its publishing channel (in confirm mode) and a
/// generation number, so a publisher that saw it fail waits for the next.
#[derive(Clone)]
struct Link {
    conn: Arc<Connection>,
    publish: Channel,
    generation: u64,
}

/// What a consumer is for; kept so that a reconnect re-creates it.
#[derive(Clone)]
enum Registration {
    Serve {
        topic: String,
        tx: mpsc::Sender<Incoming>,
    },
    Fanout {
        topic: String,
        queue: String,
        tx: mpsc::Sender<Incoming>,
    },
    Notifications {
        queue: String,
    },
}

impl Registration {
    fn is_live(&self) -> bool {
        match self {
            Registration::Serve { tx, .. } | Registration::Fanout { tx, .. } => !tx.is_closed(),
            Registration::Notifications { .. } => true,
        }
    }
}

type Pending = Mutex<HashMap<String, oneshot::Sender<Result<Value, String>>>>;

struct Inner {
    url: String,
    /// `?namespace=` of the URL: prefixes every exchange and queue, which
    /// are then transient (deleted when unused) — isolated test clouds on
    /// one broker. Real clouds share a broker through vhosts instead.
    namespace: Option<String>,
    link: watch::Sender<Option<Link>>,
    /// Held while consumers are (re)created, so that a registration is
    /// started exactly once per connection.
    registrations: tokio::sync::Mutex<Vec<Registration>>,
    pending: Pending,
    reply_queue: String,
    notifications: broadcast::Sender<Notification>,
    /// The newest connection generation that a consumer or publisher saw
    /// fail: the supervisor rebuilds when it is the current one (a report
    /// about an older connection is stale).
    lost: watch::Sender<u64>,
    /// Why the last connection attempt failed, for the caller who gives up.
    last_error: Mutex<Option<String>>,
    /// Whether this process's notification queue is registered.
    subscribed: std::sync::atomic::AtomicBool,
}

pub struct AmqpBus {
    inner: Arc<Inner>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for AmqpBus {
    /// Stop reconnecting and close the connection: its consumers' tasks
    /// would otherwise keep it open, holding their unacknowledged messages.
    fn drop(&mut self) {
        self.supervisor.abort();
        if let (Some(link), Ok(rt)) = (
            self.inner.link.send_replace(None),
            tokio::runtime::Handle::try_current(),
        ) {
            rt.spawn(async move {
                let _ = link.conn.close(200, "bus dropped".into()).await;
            });
        }
    }
}

impl AmqpBus {
    /// Start the bus; the connection is made (and remade) in the background.
    pub fn start(url: &str) -> Result<AmqpBus, BusError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| BusError::Unavailable("the AMQP bus needs a Tokio runtime".into()))?;
        let (url, namespace) = split_namespace(url);
        let inner = Arc::new(Inner {
            url,
            namespace,
            link: watch::channel(None).0,
            registrations: tokio::sync::Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            reply_queue: format!("reply_{}", uuid::Uuid::new_v4().simple()),
            notifications: broadcast::channel(4096).0,
            lost: watch::channel(0).0,
            subscribed: false.into(),
            last_error: Mutex::new(None),
        });
        let supervisor = runtime.spawn(supervise(inner.clone()));
        Ok(AmqpBus { inner, supervisor })
    }

    /// Wait until the broker has been reached (or say why not).
    pub async fn wait_connected(&self, patience: Duration) -> Result<(), BusError> {
        self.inner
            .current_link(Instant::now() + patience, 0)
            .await
            .map(|_| ())
    }

    /// Delete a topic's queue and what waits in it: for a topic whose
    /// servers are gone for good (a host taken out of the cloud).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), BusError> {
        let link = self
            .inner
            .current_link(Instant::now() + PATIENCE, 0)
            .await?;
        link.publish
            .queue_delete(self.inner.named(topic).into(), Default::default())
            .await
            .map(|_| ())
            .map_err(bus_error)
    }

    /// Close the current connection from this side, as a broker restart
    /// would: the supervisor reconnects. For tests of recovery.
    pub async fn sever(&self) {
        let link = self.inner.link.borrow().clone();
        if let Some(link) = link {
            let _ = link.conn.close(320, "severed by test".into()).await;
        }
    }
}

async fn supervise(inner: Arc<Inner>) {
    let mut backoff = BACKOFF_MIN;
    let mut generation = 0;
    loop {
        generation += 1;
        match inner.establish(generation).await {
            Ok(conn) => {
                backoff = BACKOFF_MIN;
                tracing::info!(generation, "message bus connected");
                let cause = wait_lost(&inner, &conn, generation).await;
                inner.link.send_replace(None);
                let _ = conn.close(200, "reconnecting".into()).await;
                tracing::warn!(cause, "message bus connection lost; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "message bus unreachable");
                let reason = match e {
                    BusError::Unavailable(m) => m,
                    other => other.to_string(),
                };
                *inner.last_error.lock().unwrap() = Some(reason);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Until the connection reports an error or closes, or a consumer or
/// publisher of this generation failed; says which.
async fn wait_lost(inner: &Inner, conn: &Connection, generation: u64) -> &'static str {
    let mut events = conn.events_listener();
    let mut lost = inner.lost.subscribe();
    loop {
        tokio::select! {
            _ = lost.wait_for(|g| *g >= generation) => return "a channel failed",
            ev = events.next() => match ev {
                None => return "the connection closed",
                Some(lapin::Event::Error(_)) => return "a connection error",
                Some(_) => {}
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if !conn.status().connected() {
                    return "the connection is no longer connected";
                }
            }
        }
    }
}

fn bus_error(e: lapin::Error) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// The URL without our `namespace` query parameter, and that parameter.
fn split_namespace(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut namespace = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("namespace=") {
            Some(ns) if !ns.is_empty() => {
                namespace = Some(ns.to_owned());
                false
            }
            _ => !kv.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, namespace)
}

impl Inner {
    /// An exchange or queue name in this bus's namespace.
    fn named(&self, base: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{base}"),
            None => base.to_owned(),
        }
    }

    /// Durable in a real cloud; transient in a namespaced test cloud.
    fn lasting(&self) -> (bool, bool) {
        let transient = self.namespace.is_some();
        (!transient, transient)
    }

    fn report_lost(&self, generation: u64) {
        self.lost.send_if_modified(|g| {
            let newer = generation > *g;
            if newer {
                *g = generation;
            }
            newer
        });
    }

    /// Connect, declare the exchanges and the reply queue, start every
    /// registered consumer, then publish the link.
    async fn establish(self: &Arc<Self>, generation: u64) -> Result<Arc<Connection>, BusError> {
        let conn = Arc::new(
            Connection::connect(&self.url, ConnectionProperties::default())
                .await
                .map_err(bus_error)?,
        );
        let publish = conn.create_channel().await.map_err(bus_error)?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(bus_error)?;
        let (durable, auto_delete) = self.lasting();
        let options = ExchangeDeclareOptions {
            durable,
            auto_delete,
            ..Default::default()
        };
        let exchanges = [RPC_EXCHANGE, FANOUT_EXCHANGE]
            .into_iter()
            .chain(NOTIFICATION_EXCHANGES);
        for name in exchanges {
            publish
                .exchange_declare(
                    self.named(name).into(),
                    ExchangeKind::Topic,
                    options,
                    FieldTable::default(),
                )
                .await
                .map_err(bus_error)?;
        }
        self.start_replies(&conn, generation).await?;
        let mut registrations = self.registrations.lock().await;
        registrations.retain(Registration::is_live);
        for r in registrations.iter() {
            self.start_consumer(&conn, r, generation).await?;
        }
        let link = Link {
            conn: conn.clone(),
            publish,
            generation,
        };
        self.link.send_replace(Some(link));
        Ok(conn)
    }

    /// The current link, waiting (until `deadline`) for one newer than
    /// `after` while the supervisor reconnects.
    async fn current_link(&self, deadline: Instant, after: u64) -> Result<Link, BusError> {
        let mut rx = self.link.subscribe();
        let waited = tokio::time::timeout_at(deadline, async {
            rx.wait_for(|l| l.as_ref().is_some_and(|l| l.generation > after))
                .await
                .map(|l| l.clone())
        })
        .await;
        match waited {
            Ok(Ok(Some(link))) => Ok(link),
            Ok(_) => Err(BusError::Unavailable("the bus is shut down".into())),
            Err(_) => Err(BusError::Unavailable(
                match &*self.last_error.lock().unwrap() {
                    Some(e) => format!("no connection to the broker in time (last attempt: {e})"),
                    None => "no connection to the broker in time".into(),
                },
            )),
        }
    }

    /// Publish and wait for the broker's confirm, again on the next
    /// connection if this one fails. Returns whether the message was routed.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<bool, BusError> {
        let deadline = Instant::now() + PATIENCE;
        let mut after = 0;
        loop {
            let link = self.current_link(deadline, after).await?;
            let options = BasicPublishOptions {
                mandatory,
                ..Default::default()
            };
            let sent = link
                .publish
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    options,
                    payload,
                    properties.clone(),
                )
                .await;
            let confirmed = match sent {
                Ok(confirm) => confirm.await,
                Err(e) => Err(e),
            };
            match confirmed {
                Ok(Confirmation::Ack(returned)) => return Ok(returned.is_none()),
                Ok(Confirmation::NotRequested) => return Ok(true),
                Ok(Confirmation::Nack(_)) => {
                    return Err(BusError::Unavailable(format!(
                        "the broker refused a message for '{routing_key}'"
                    )))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "publish failed; waiting for the next connection");
                    self.report_lost(link.generation);
                    after = link.generation;
                }
            }
        }
    }

    /// Register a consumer and start it now if connected (else the next
    /// connection starts it); returns once it consumes.
    async fn register(self: &Arc<Self>, r: Registration) -> Result<(), BusError> {
        let mut registrations = self.registrations.lock().await;
        let link = self.link.borrow().clone();
        if let Some(link) = link {
            self.start_consumer(&link.conn, &r, link.generation).await?;
            registrations.push(r);
            return Ok(());
        }
        registrations.push(r);
        drop(registrations);
        self.current_link(Instant::now() + PATIENCE, 0).await?;
        Ok(())
    }

    async fn start_replies(
        self: &Arc<Self>,
        conn: &Connection,
        generation: u64,
    ) -> Result<(), BusError> {
        let ch = conn.create_channel().await.map_err(bus_error)?;
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        ch.queue_declare(
            self.reply_queue.as_str().into(),
            options,
            FieldTable::default(),
        )
        .await
        .map_err(bus_error)?;
        let consume = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let mut consumer = ch
            .basic_consume(
                self.reply_queue.as_str().into(),
                "".into(),
                consume,
                FieldTable::default(),
            )
            .await
            .map_err(bus_error)?;
        let inner = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                inner.deliver_reply(&d);
            }
            inner.report_lost(generation);
        });
        Ok(())
    }

    fn deliver_reply(&self, d: &Delivery) {
        let Some(id) = d.properties.correlation_id() else {
            return;
        };
        let Some(tx) = self.pending.lock().unwrap().remove(id.as_str()) else {
            return; // the caller gave up
        };
        let answer = match serde_json::from_slice::<Reply>(&d.data) {
            Ok(Reply::Result(v)) => Ok(v),
            Ok(Reply::Failure(m)) => Err(m),
            Err(e) => Err(format!("unreadable reply: {e}")),
        };
        let _ = tx.send(answer);
    }

    async fn start_consumer(
        self: &Arc<Self>,
        conn: &Connection,
        r: &Registration,
        generation: u64,
    ) -> Result<(), BusError> {
        let ch = conn.create_channel().await.map_err(bus_error)?;
        ch.basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(bus_error)?;
        let (queue, bindings, options): (String, Vec<(String, &str)>, _) = match r {
            Registration::Serve { topic, .. } => {
                let (durable, auto_delete) = self.lasting();
                let options = QueueDeclareOptions {
                    durable,
                    auto_delete,
                    ..Default::default()
                };
                let bindings = vec![(self.named(RPC_EXCHANGE), topic.as_str())];
                (self.named(topic), bindings, options)
            }
            Registration::Fanout { topic, queue, .. } => {
                let bindings = vec![(self.named(FANOUT_EXCHANGE), topic.as_str())];
                (self.named(queue), bindings, private())
            }
            Registration::Notifications { queue } => (
                self.named(queue),
                NOTIFICATION_EXCHANGES
                    .iter()
                    .map(|x| (self.named(x), "notifications.*"))
                    .collect(),
                private(),
            ),
        };
        let queue = queue.as_str();
        ch.queue_declare(queue.into(), options, FieldTable::default())
            .await
            .map_err(bus_error)?;
        for (exchange, key) in bindings {
            ch.queue_bind(
                queue.into(),
                exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(bus_error)?;
        }
        let consumer = ch
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(bus_error)?;
        tokio::spawn(self.clone().consume(ch, consumer, r.clone(), generation));
        Ok(())
    }

    /// Hand each delivery to its server; acknowledge it once handled.
    async fn consume(
        self: Arc<Self>,
        ch: Channel,
        mut consumer: lapin::Consumer,
        r: Registration,
        generation: u64,
    ) {
        while let Some(Ok(d)) = consumer.next().await {
            match &r {
                Registration::Serve { tx, .. } | Registration::Fanout { tx, .. } => {
                    if !self.hand_over(d, tx).await {
                        // The server stopped listening: give its messages
                        // back to the queue's other servers, and forget it.
                        let _ = ch.close(200, "server stopped".into()).await;
                        self.registrations.lock().await.retain(|r| r.is_live());
                        return;
                    }
                }
                Registration::Notifications { .. } => {
                    match decode_notification(&d.data) {
                        Some(n) => {
                            let _ = self.notifications.send(n);
                        }
                        None => tracing::warn!("dropping an unreadable notification"),
                    }
                    let _ = d.ack(BasicAckOptions::default()).await;
                }
            }
        }
        self.report_lost(generation);
    }

    /// Give one RPC delivery to the server; a task answers and acks it when
    /// the server is done. False once the server's receiver is gone.
    async fn hand_over(self: &Arc<Self>, d: Delivery, tx: &mpsc::Sender<Incoming>) -> bool {
        let Ok(message) = serde_json::from_slice::<RpcMessage>(&d.data) else {
            tracing::warn!(routing_key = %d.routing_key, "rejecting an unreadable RPC message");
            let _ = d.reject(BasicRejectOptions { requeue: false }).await;
            return true;
        };
        let reply_to = d.properties.reply_to().clone();
        let correlation = d.properties.correlation_id().clone();
        let wants_reply = reply_to.is_some() && correlation.is_some();
        let (done_tx, done_rx) = oneshot::channel();
        let incoming = Incoming::new(message, d.redelivered, Some(done_tx), wants_reply);
        if tx.send(incoming).await.is_err() {
            let _ = d.reject(BasicRejectOptions { requeue: true }).await;
            return false;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let answer = done_rx.await;
            if let (Some(to), Some(id), Ok(answer)) = (reply_to, correlation, answer) {
                let reply = match answer {
                    Ok(v) => Reply::Result(v),
                    Err(m) => Reply::Failure(m),
                };
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                let props = BasicProperties::default().with_correlation_id(id);
                let patience = call_patience(&d.properties);
                inner.send_reply(to.as_str(), &body, props, patience).await;
            }
            let _ = d.ack(BasicAckOptions::default()).await;
        });
        true
    }

    /// Send a call's answer to the caller's reply queue. The queue is the
    /// caller's exclusive one, gone while the caller reconnects (a broker
    /// restart, a lost link) and declared again when it is back: a reply
    /// the broker cannot route yet is sent again until it can, for as
    /// long as the caller still waits, instead of being dropped silently.
    async fn send_reply(&self, to: &str, body: &[u8], props: BasicProperties, patience: Duration) {
        let deadline = Instant::now() + patience;
        let mut pause = REPLY_RETRY_MIN;
        loop {
            match self.publish("", to, body, props.clone(), true).await {
                Ok(true) => return,
                Ok(false) if Instant::now() + pause < deadline => {
                    tracing::debug!(reply_to = to, "the caller's reply queue is not there yet");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(REPLY_RETRY_MAX);
                }
                Ok(false) => {
                    tracing::warn!(reply_to = to, "dropping an RPC reply: its caller is gone");
                    return;
                }
                // No link within PATIENCE (a broker restart can take
                // longer under load): try again while the caller waits.
                Err(e) if Instant::now() + pause < deadline => {
                    tracing::debug!(error = %e, "no link for an RPC reply yet");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(REPLY_RETRY_MAX);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not send an RPC reply");
                    return;
                }
            }
        }
    }
}

/// How long a call's caller still waits for its answer: the request's
/// expiration (its timeout; [`PATIENCE`] without one). A long call (a
/// spawn) keeps its reply that long, across a broker restart of any length.
fn call_patience(properties: &BasicProperties) -> Duration {
    properties
        .expiration()
        .as_ref()
        .and_then(|ms| ms.as_str().parse::<u64>().ok())
        .map_or(PATIENCE, Duration::from_millis)
}

/// An exclusive queue that goes with its connection.
fn private() -> QueueDeclareOptions {
    QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    }
}

/// oslo.messaging's v2 envelope: the message as a JSON string.
fn encode_notification(n: &Notification) -> Vec<u8> {
    let inner = serde_json::to_string(n).unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({"oslo.version": "2.0", "oslo.message": inner}))
        .unwrap_or_default()
}

fn decode_notification(data: &[u8]) -> Option<Notification> {
    let outer: Value = serde_json::from_slice(data).ok()?;
    match outer.get("oslo.message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).ok(),
        None => serde_json::from_value(outer).ok(),
    }
}

fn json_properties() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

#[async_trait::async_trait]
impl Bus for AmqpBus {
    async fn cast(&self, topic: &str, message: RpcMessage) -> Result<(), BusError> {
        let body = serde_json::to_vec(&message).unwrap_or_default();
        let props = json_properties().with_delivery_mode(2);
        let routed = self
            .inner
            .publish(&self.inner.named(RPC_EXCHANGE), topic, &body, props, true)
            .await?;
        if routed {
            Ok(())
        } else {
            Err(BusError::NoConsumer(topic.to_owned()))
        }
    }

    async fn call(
        &self,
        topic: &str,
        message: RpcMessage,
        timeout: Duration,
    ) -> Result<Value, BusError> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.inner.pending.lock().unwrap().insert(id.clone(), tx);
        let body = serde_json::to_vec(&message).unwrap_or_default();
        let props = json_properties()
            .with_correlation_id(id.as_str().into())
            .with_reply_to(self.inner.reply_queue.as_str().into())
            .with_expiration(timeout.as_millis().max(1).to_string().into());
        let routed = self
            .inner
            .publish(&self.inner.named(RPC_EXCHANGE), topic, &body, props, true)
            .await;
        if !matches!(routed, Ok(true)) {
            self.inner.pending.lock().unwrap().remove(&id);
            routed?;
            return Err(BusError::NoConsumer(topic.to_owned()));
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        self.inner.pending.lock().unwrap().remove(&id);
        match answer {
            Err(_) | Ok(Err(_)) => Err(BusError::Timeout {
                topic: topic.to_owned(),
                secs: timeout.as_secs(),
            }),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(message))) => Err(BusError::Remote {
                topic: topic.to_owned(),
                message,
            }),
        }
    }

    async fn serve(&self, topic: &str) -> Result<mpsc::Receiver<Incoming>, BusError> {
        let (tx, rx) = mpsc::channel(1024);
        let topic = topic.to_owned();
        self.inner
            .register(Registration::Serve { topic, tx })
            .await?;
        Ok(rx)
    }

    async fn fanout(&self, topic: &str, message: RpcMessage) -> Result<(), BusError> {
        let body = serde_json::to_vec(&message).unwrap_or_default();
        self.inner
            .publish(
                &self.inner.named(FANOUT_EXCHANGE),
                topic,
                &body,
                json_properties(),
                false,
            )
            .await
            .map(|_| ())
    }

    async fn serve_fanout(&self, topic: &str) -> Result<mpsc::Receiver<Incoming>, BusError> {
        let (tx, rx) = mpsc::channel(1024);
        let queue = format!("{topic}_fanout_{}", uuid::Uuid::new_v4().simple());
        let topic = topic.to_owned();
        self.inner
            .register(Registration::Fanout { topic, queue, tx })
            .await?;
        Ok(rx)
    }

    async fn notify(
        &self,
        publisher_id: &str,
        event_type: &str,
        payload: Value,
    ) -> Result<(), BusError> {
        let n = Notification::new(publisher_id, event_type, payload);
        let key = format!("notifications.{}", n.priority.to_lowercase());
        let props = json_properties()
            .with_delivery_mode(2)
            .with_message_id(n.message_id.as_str().into());
        self.inner
            .publish(
                &self.inner.named(n.exchange()),
                &key,
                &encode_notification(&n),
                props,
                false,
            )
            .await
            .map(|_| ())
    }

    async fn subscribe_notifications(&self) -> Result<broadcast::Receiver<Notification>, BusError> {
        use std::sync::atomic::Ordering;
        let rx = self.inner.notifications.subscribe();
        if !self.inner.subscribed.swap(true, Ordering::SeqCst) {
            let queue = format!("notifications_{}", uuid::Uuid::new_v4().simple());
            let registered = self
                .inner
                .register(Registration::Notifications { queue })
                .await;
            if let Err(e) = registered {
                self.inner.subscribed.store(false, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_parameter_is_ours_not_the_brokers() {
        let (url, ns) = split_namespace("amqp://u:p@h:5672/%2f?namespace=t1&heartbeat=10");
        assert_eq!(url, "amqp://u:p@h:5672/%2f?heartbeat=10");
        assert_eq!(ns.as_deref(), Some("t1"));
        let (url, ns) = split_namespace("amqp://h/%2f?namespace=t2");
        assert_eq!((url.as_str(), ns.as_deref()), ("amqp://h/%2f", Some("t2")));
        assert_eq!(split_namespace("amqp://h/%2f").1, None);
    }

    #[test]
    fn notifications_travel_in_oslo_v2_envelopes() {
        let n = Notification::new(
            "compute.host1",
            "compute.instance.create.end",
            serde_json::json!({"a": 1}),
        );
        let wire: Value = serde_json::from_slice(&encode_notification(&n)).unwrap();
        assert_eq!(wire["oslo.version"], "2.0");
        assert!(wire["oslo.message"].is_string());
        let back = decode_notification(&encode_notification(&n)).unwrap();
        assert_eq!(back.message_id, n.message_id);
        assert_eq!(back.payload["a"], 1);
        assert_eq!(n.exchange(), "nova");
    }
}
