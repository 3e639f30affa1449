//! The in-process bus of the all-in-one: the same semantics as the AMQP
//! transport's topics (round-robin among the servers of a topic, fan-out,
//! notifications to every subscriber), without a broker.

use crate::{Bus, BusError, Incoming, Notification, RpcMessage};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The servers of one topic and the index of the last one used.
type TopicServers = (Vec<mpsc::Sender<Incoming>>, usize);

pub struct MemoryBus {
    topics: Mutex<HashMap<String, TopicServers>>,
    fanouts: Mutex<HashMap<String, Vec<mpsc::Sender<Incoming>>>>,
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
            fanouts: Mutex::new(HashMap::new()),
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
        tx.send(Incoming::new(message, false, None, false))
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
        tx.send(Incoming::new(message, false, Some(reply_tx), true))
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

    async fn fanout(&self, topic: &str, message: RpcMessage) -> Result<(), BusError> {
        let servers: Vec<_> = {
            let mut fanouts = self.fanouts.lock().unwrap();
            let Some(list) = fanouts.get_mut(topic) else {
                return Ok(());
            };
            list.retain(|s| !s.is_closed());
            list.clone()
        };
        for tx in servers {
            let _ = tx
                .send(Incoming::new(message.clone(), false, None, false))
                .await;
        }
        Ok(())
    }

    async fn serve_fanout(&self, topic: &str) -> Result<mpsc::Receiver<Incoming>, BusError> {
        let (tx, rx) = mpsc::channel(1024);
        self.fanouts
            .lock()
            .unwrap()
            .entry(topic.to_owned())
            .or_default()
            .push(tx);
        Ok(rx)
    }

    async fn notify(
        &self,
        publisher_id: &str,
        event_type: &str,
        payload: Value,
    ) -> Result<(), BusError> {
        // No subscriber is not an error: notifications are best effort.
        let _ = self
            .notifications
            .send(Notification::new(publisher_id, event_type, payload));
        Ok(())
    }

    async fn subscribe_notifications(&self) -> Result<broadcast::Receiver<Notification>, BusError> {
        Ok(self.notifications.subscribe())
    }
}
