//! The AMQP bus through a real RabbitMQ restart (`rabbitmqctl stop_app`,
//! `start_app`): what is sent while the broker is away waits and arrives,
//! and servers and subscribers consume again. Its own test binary, so no
//! other test shares the broker while it restarts.

use ferrostack_bus::{amqp::AmqpBus, Bus, RpcMessage};
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_the_broker_restarts_arrive() {
    let required = std::env::var("FERROSTACK_TEST_REQUIRE_ALL_DBS").as_deref() == Ok("1");
    let url = std::env::var("FERROSTACK_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let bus = Arc::new(AmqpBus::start(&url).unwrap());
    if let Err(e) = bus.wait_connected(Duration::from_secs(10)).await {
        assert!(!required, "no RabbitMQ at {url}: {e}");
        eprintln!("skipped: no RabbitMQ at {url}: {e}");
        return;
    }
    if !rabbitmqctl(&["status"]) {
        assert!(!required, "rabbitmqctl cannot manage the local broker");
        eprintln!("skipped: rabbitmqctl cannot manage the local broker");
        return;
    }
    let topic = format!("test.restart.{}", uuid::Uuid::new_v4().simple());
    let mut server = bus.serve(&topic).await.unwrap();
    let mut notes = bus.subscribe_notifications().await.unwrap();

    assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app failed");
    let sender = bus.clone();
    let t = topic.clone();
    let sent = tokio::spawn(async move {
        let cast = RpcMessage {
            method: "while_down".into(),
            args: json!({"n": 1}),
        };
        sender.cast(&t, cast).await?;
        sender
            .notify(
                "compute.host1",
                "compute.instance.exists",
                json!({"topic": t}),
            )
            .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = tokio::task::spawn_blocking(|| rabbitmqctl(&["start_app"]))
        .await
        .unwrap();
    assert!(started, "rabbitmqctl start_app failed");

    sent.await
        .unwrap()
        .expect("the cast and notification were sent after the restart");
    let got = tokio::time::timeout(Duration::from_secs(30), server.recv())
        .await
        .expect("the cast arrives within 30 s")
        .unwrap();
    assert_eq!(got.message.method, "while_down");
    drop(got);
    let note = loop {
        let n = tokio::time::timeout(Duration::from_secs(30), notes.recv())
            .await
            .expect("the notification arrives within 30 s")
            .unwrap();
        if n.payload["topic"] == topic.as_str() {
            break n;
        }
    };
    assert_eq!(note.event_type, "compute.instance.exists");
    bus.delete_topic(&topic).await.unwrap();
}
