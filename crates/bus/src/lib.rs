//! The message bus: RPC (`cast`, `call` with a timeout) between services and
//! agents, and notifications (for metering). Messages are JSON envelopes so
//! that an AMQP (RabbitMQ) transport carries the same bytes; callers only see
//! the [`Bus`] trait and never learn which transport runs underneath.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("no server is consuming topic '{0}'")]
    NoConsumer(String),
    #[error("RPC call to '{topic}' timed out after {secs} s")]
    Timeout { topic: String, secs: u64 },
    #[error("remote error from '{topic}': {message}")]
    Remote { topic: String, message: String },
    #[error("unsupported bus URL '{0}'")]
    UnsupportedUrl(String),
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

/// A request delivered to a topic's server; `reply` is set for calls.
pub struct Incoming {
    pub message: RpcMessage,
    reply: Option<oneshot::Sender<Result<Value, String>>>,
}

impl Incoming {
    /// Answer a call; a no-op for casts.
    pub fn respond(self, result: Result<Value, String>) {
        if let Some(tx) = self.reply {
            let _ = tx.send(result);
        }
    }
    pub fn expects_reply(&self) -> bool {
        self.reply.is_some()
    }
}

#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Fire and forget to the topic's server(s).
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

/// Open the bus named by a URL: `memory://` for in-process.
pub fn open(url: &str) -> Result<SharedBus, BusError> {
    if url.starts_with("memory:") {
        Ok(Arc::new(MemoryBus::new()))
    } else {
        Err(BusError::UnsupportedUrl(url.to_owned()))
    }
}

/// In-process bus for the all-in-one: the same semantics as AMQP topics
/// (round-robin among servers of a topic, fan-out of notifications).
/// The servers of one topic and the index of the last one used.
type TopicServers = (Vec<mpsc::Sender<Incoming>>, usize);

pub struct MemoryBus {
    topics: Mutex<HashMap<String, TopicServers>>,
    notifications: broadcast::Sender<Notification>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    pub fn new() -> Self {
        MemoryBus {
            topics: Mutex::new(HashMap::new()),
            notifications: broadcast::channel(4096).0,
        }
    }

    fn pick(&self, topic: &str) -> Result<mpsc::Sender<Incoming>, BusError> {
        let mut topics = self.topics.lock().unwrap();
        let entry = topics
            .get_mut(topic)
            .ok_or_else(|| BusError::NoConsumer(topic.to_owned()))?;
        entry.0.retain(|s| !s.is_closed());
        if entry.0.is_empty() {
            return Err(BusError::NoConsumer(topic.to_owned()));
        }
        entry.1 = (entry.1 + 1) % entry.0.len();
        Ok(entry.0[entry.1].clone())
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    async fn cast(&self, topic: &str, message: RpcMessage) -> Result<(), BusError> {
        let tx = self.pick(topic)?;
        tx.send(Incoming {
            message,
            reply: None,
        })
        .await
        .map_err(|_| BusError::NoConsumer(topic.to_owned()))
    }

    async fn call(
        &self,
        topic: &str,
        message: RpcMessage,
        timeout: Duration,
    ) -> Result<Value, BusError> {
        let tx = self.pick(topic)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        tx.send(Incoming {
            message,
            reply: Some(reply_tx),
        })
        .await
        .map_err(|_| BusError::NoConsumer(topic.to_owned()))?;
        match tokio::time::timeout(timeout, reply_rx).await {
            Err(_) => Err(BusError::Timeout {
                topic: topic.to_owned(),
                secs: timeout.as_secs(),
            }),
            Ok(Err(_)) => Err(BusError::Remote {
                topic: topic.to_owned(),
                message: "server dropped the call".into(),
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
        self.topics
            .lock()
            .unwrap()
            .entry(topic.to_owned())
            .or_insert_with(|| (Vec::new(), 0))
            .0
            .push(tx);
        Ok(rx)
    }

    async fn notify(
        &self,
        publisher_id: &str,
        event_type: &str,
        payload: Value,
    ) -> Result<(), BusError> {
        let n = Notification {
            message_id: uuid::Uuid::new_v4().to_string(),
            publisher_id: publisher_id.to_owned(),
            event_type: event_type.to_owned(),
            priority: "INFO".into(),
            timestamp: chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string(),
            payload,
        };
        // No subscriber is not an error: notifications are best effort.
        let _ = self.notifications.send(n);
        Ok(())
    }

    async fn subscribe_notifications(&self) -> Result<broadcast::Receiver<Notification>, BusError> {
        Ok(self.notifications.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(method: &str) -> RpcMessage {
        RpcMessage {
            method: method.into(),
            args: json!({"x": 1}),
        }
    }

    #[tokio::test]
    async fn call_cast_timeout_and_notifications() {
        let bus = open("memory://").unwrap();
        assert!(matches!(
            bus.cast("nobody", msg("m")).await,
            Err(BusError::NoConsumer(_))
        ));

        let mut rx = bus.serve("agent").await.unwrap();
        tokio::spawn(async move {
            while let Some(inc) = rx.recv().await {
                match inc.message.method.as_str() {
                    "echo" => {
                        let args = inc.message.args.clone();
                        inc.respond(Ok(args))
                    }
                    "fail" => inc.respond(Err("boom".into())),
                    "slow" => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        inc.respond(Ok(json!(null)))
                    }
                    _ => inc.respond(Ok(json!(null))),
                }
            }
        });
        assert_eq!(
            bus.call("agent", msg("echo"), Duration::from_secs(1))
                .await
                .unwrap(),
            json!({"x": 1})
        );
        assert!(matches!(
            bus.call("agent", msg("fail"), Duration::from_secs(1)).await,
            Err(BusError::Remote { .. })
        ));
        assert!(matches!(
            bus.call("agent", msg("slow"), Duration::from_millis(50))
                .await,
            Err(BusError::Timeout { .. })
        ));
        bus.cast("agent", msg("cast")).await.unwrap();

        let mut sub = bus.subscribe_notifications().await.unwrap();
        bus.notify("image.host", "image.upload", json!({"id": "i1"}))
            .await
            .unwrap();
        let n = sub.recv().await.unwrap();
        assert_eq!(n.event_type, "image.upload");
        assert_eq!(n.payload["id"], "i1");
    }

    #[tokio::test]
    async fn servers_of_a_topic_share_the_work() {
        let bus = MemoryBus::new();
        let mut a = bus.serve("t").await.unwrap();
        let mut b = bus.serve("t").await.unwrap();
        bus.cast("t", msg("1")).await.unwrap();
        bus.cast("t", msg("2")).await.unwrap();
        assert!(a.try_recv().is_ok());
        assert!(b.try_recv().is_ok());
    }
}
