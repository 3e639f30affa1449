//! The message bus: RPC (`cast`, `call` with a timeout) between services and
//! agents, fan-out to every server of a topic, and notifications (for
//! metering). Callers only see the [`Bus`] trait and never learn which
//! transport runs underneath: [`memory::MemoryBus`] in one process (the
//! all-in-one) or [`amqp::AmqpBus`] over RabbitMQ (multi-node), which carry
//! the same JSON messages and pass the same test suite.

pub mod amqp;
pub mod memory;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use memory::MemoryBus;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("no server is consuming topic '{0}'")]
    NoConsumer(String),
    #[error("RPC call to '{topic}' timed out after {secs} s")]
    Timeout { topic: String, secs: u64 },
    #[error("remote error from '{topic}': {message}")]
    Remote { topic: String, message: String },
    #[error("unsupported bus URL '{0}' (memory:// or amqp://user:password@host:port/vhost)")]
    UnsupportedUrl(String),
    /// The broker could not be reached (or refused a message) within the
    /// bus's patience; the message was not sent.
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
}

/// One RPC message: a method name and its arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcMessage {
    pub method: String,
    pub args: Value,
}

/// A notification in oslo.messaging's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub message_id: String,
    pub publisher_id: String,
    pub event_type: String,
    pub priority: String,
    pub timestamp: String,
    pub payload: Value,
}

impl Notification {
    /// A new INFO notification stamped now.
    pub fn new(publisher_id: &str, event_type: &str, payload: Value) -> Notification {
        Notification {
            message_id: uuid::Uuid::new_v4().to_string(),
            publisher_id: publisher_id.to_owned(),
            event_type: event_type.to_owned(),
            priority: "INFO".into(),
            timestamp: chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string(),
            payload,
        }
    }

    /// The exchange OpenStack's services publish this notification on
    /// (their `control_exchange`), so that a Ceilometer-style consumer
    /// listening on `nova`, `glance`, … finds it.
    pub fn exchange(&self) -> &'static str {
        control_exchange(&self.publisher_id)
    }
}

/// Every exchange [`control_exchange`] can answer.
pub const NOTIFICATION_EXCHANGES: [&str; 6] = [
    "keystone",
    "glance",
    "neutron",
    "nova",
    "cinder",
    "openstack",
];

/// The OpenStack exchange of a publisher (`compute.host1` → `nova`).
pub fn control_exchange(publisher_id: &str) -> &'static str {
    let service = publisher_id
        .split(['.', ':'])
        .next()
        .unwrap_or(publisher_id);
    match service {
        "identity" | "keystone" => "keystone",
        "image" | "glance" => "glance",
        "network" | "neutron" => "neutron",
        "compute" | "nova-compute" | "nova" => "nova",
        "volume" | "cinder" | "cinder-volume" => "cinder",
        _ => "openstack",
    }
}

/// A request delivered to a topic's server. Respond to calls; a cast is
/// done when it is dropped (on AMQP that acknowledges it to the broker).
pub struct Incoming {
    pub message: RpcMessage,
    /// Delivered before to a server that did not finish it (it crashed or
    /// lost its connection): handlers must be idempotent.
    pub redelivered: bool,
    reply: Option<oneshot::Sender<Result<Value, String>>>,
    wants_reply: bool,
}

impl Incoming {
    pub(crate) fn new(
        message: RpcMessage,
        redelivered: bool,
        reply: Option<oneshot::Sender<Result<Value, String>>>,
        wants_reply: bool,
    ) -> Incoming {
        Incoming {
            message,
            redelivered,
            reply,
            wants_reply,
        }
    }

    /// Answer a call; for a cast it only marks the message done.
    pub fn respond(self, result: Result<Value, String>) {
        if let Some(tx) = self.reply {
            let _ = tx.send(result);
        }
    }
    pub fn expects_reply(&self) -> bool {
        self.wants_reply
    }
}

#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Fire and forget to one server of the topic.
    async fn cast(&self, topic: &str, message: RpcMessage) -> Result<(), BusError>;
    /// Send and wait for the answer, at most `timeout`.
    async fn call(
        &self,
        topic: &str,
        message: RpcMessage,
        timeout: Duration,
    ) -> Result<Value, BusError>;
    /// Consume a topic: messages are shared round-robin between servers of the same topic.
    async fn serve(&self, topic: &str) -> Result<mpsc::Receiver<Incoming>, BusError>;
    /// Send to every server of the topic that [`Bus::serve_fanout`]s it
    /// (none is not an error).
    async fn fanout(&self, topic: &str, message: RpcMessage) -> Result<(), BusError>;
    /// Receive every fan-out message of the topic sent after this call.
    async fn serve_fanout(&self, topic: &str) -> Result<mpsc::Receiver<Incoming>, BusError>;
    /// Publish a notification (`image.upload`, `identity.user.created`, …).
    async fn notify(
        &self,
        publisher_id: &str,
        event_type: &str,
        payload: Value,
    ) -> Result<(), BusError>;
    /// Receive every notification published after this call.
    async fn subscribe_notifications(&self) -> Result<broadcast::Receiver<Notification>, BusError>;
}

pub type SharedBus = Arc<dyn Bus>;

/// Open the bus named by a URL: `memory://` for in-process, `amqp://…` for
/// RabbitMQ (connected in the background: see [`connect`] to wait for it).
pub fn open(url: &str) -> Result<SharedBus, BusError> {
    if url.starts_with("memory:") {
        Ok(Arc::new(MemoryBus::new()))
    } else if url.starts_with("amqp://") {
        Ok(Arc::new(amqp::AmqpBus::start(url)?))
    } else {
        Err(BusError::UnsupportedUrl(url.to_owned()))
    }
}

/// Open the bus and, for a broker, wait until it is reached: a node whose
/// broker is unreachable refuses to start rather than queueing into the void.
pub async fn connect(url: &str, patience: Duration) -> Result<SharedBus, BusError> {
    if url.starts_with("amqp://") {
        let bus = amqp::AmqpBus::start(url)?;
        bus.wait_connected(patience).await?;
        Ok(Arc::new(bus))
    } else {
        open(url)
    }
}
