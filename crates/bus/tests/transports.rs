//! One suite for both transports: the in-process bus and RabbitMQ must
//! behave the same to their callers. The AMQP half needs a broker at
//! `FERROSTACK_TEST_AMQP_URL` (default: the local RabbitMQ's guest account);
//! without one it is skipped, unless `FERROSTACK_TEST_REQUIRE_ALL_DBS=1`
//! (the test command's setting) makes that a failure.

use ferrostack_bus::{amqp::AmqpBus, Bus, BusError, Incoming, MemoryBus, RpcMessage, SharedBus};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const SECOND: Duration = Duration::from_secs(1);

fn msg(method: &str, x: Value) -> RpcMessage {
    RpcMessage {
        method: method.into(),
        args: json!({ "x": x }),
    }
}

thread_local! {
    /// The topics this test made, deleted from the broker when it ends.
    static TOPICS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A topic name no other test (or earlier run) uses.
fn topic(name: &str) -> String {
    let t = format!("test.{name}.{}", uuid::Uuid::new_v4().simple());
    TOPICS.with(|ts| ts.borrow_mut().push(t.clone()));
    t
}

/// Delete the topics this test made from the broker.
async fn delete_topics(bus: &AmqpBus) {
    for t in TOPICS.with(|ts| std::mem::take(&mut *ts.borrow_mut())) {
        let _ = bus.delete_topic(&t).await;
    }
}

async fn amqp() -> Option<Arc<AmqpBus>> {
    let url = std::env::var("FERROSTACK_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let bus = AmqpBus::start(&url).unwrap();
    match bus.wait_connected(Duration::from_secs(10)).await {
        Ok(()) => Some(Arc::new(bus)),
        Err(e) if std::env::var("FERROSTACK_TEST_REQUIRE_ALL_DBS").as_deref() == Ok("1") => {
            panic!("no RabbitMQ at {url}: {e}")
        }
        Err(e) => {
            eprintln!("skipping the AMQP transport: no RabbitMQ at {url}: {e}");
            None
        }
    }
}

/// Answer `echo`, fail `fail`, sleep on `slow`; report every message seen.
fn spawn_server(mut rx: mpsc::Receiver<Incoming>, seen: mpsc::UnboundedSender<Value>) {
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let _ = seen.send(inc.message.args.clone());
            match inc.message.method.as_str() {
                "echo" => {
                    let args = inc.message.args.clone();
                    inc.respond(Ok(args))
                }
                "fail" => inc.respond(Err("boom".into())),
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    inc.respond(Ok(json!(null)))
                }
                _ => inc.respond(Ok(json!(null))),
            }
        }
    });
}

async fn call_cast_errors_and_timeouts(bus: SharedBus) {
    let t = topic("rpc");
    assert!(matches!(
        bus.cast(&t, msg("m", json!(0))).await,
        Err(BusError::NoConsumer(_))
    ));
    assert!(matches!(
        bus.call(&t, msg("echo", json!(0)), SECOND).await,
        Err(BusError::NoConsumer(_))
    ));
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    spawn_server(bus.serve(&t).await.unwrap(), seen_tx);
    let answer = bus.call(&t, msg("echo", json!(7)), SECOND).await.unwrap();
    assert_eq!(answer, json!({"x": 7}));
    match bus.call(&t, msg("fail", json!(1)), SECOND).await {
        Err(BusError::Remote { message, .. }) => assert_eq!(message, "boom"),
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert!(matches!(
        bus.call(&t, msg("slow", json!(2)), Duration::from_millis(100))
            .await,
        Err(BusError::Timeout { .. })
    ));
    bus.cast(&t, msg("cast", json!(3))).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        got.push(recv(&mut seen).await["x"].clone());
    }
    assert_eq!(got, vec![json!(7), json!(1), json!(2), json!(3)]);
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a message within 10 s")
        .expect("the server is running")
}

async fn servers_of_a_topic_share_the_work(bus: SharedBus) {
    let t = topic("share");
    let (a_tx, mut a) = mpsc::unbounded_channel();
    let (b_tx, mut b) = mpsc::unbounded_channel();
    spawn_server(bus.serve(&t).await.unwrap(), a_tx);
    spawn_server(bus.serve(&t).await.unwrap(), b_tx);
    for i in 0..4 {
        bus.call(&t, msg("echo", json!(i)), SECOND * 5)
            .await
            .unwrap();
    }
    let (mut na, mut nb) = (0, 0);
    while a.try_recv().is_ok() {
        na += 1;
    }
    while b.try_recv().is_ok() {
        nb += 1;
    }
    assert_eq!(na + nb, 4);
    assert!(na > 0 && nb > 0, "one server did all the work: {na} / {nb}");
}

async fn fanout_reaches_every_server(bus: SharedBus) {
    let t = topic("fanout");
    bus.fanout(&t, msg("nobody", json!(0))).await.unwrap();
    let (a_tx, mut a) = mpsc::unbounded_channel();
    let (b_tx, mut b) = mpsc::unbounded_channel();
    spawn_server(bus.serve_fanout(&t).await.unwrap(), a_tx);
    spawn_server(bus.serve_fanout(&t).await.unwrap(), b_tx);
    bus.fanout(&t, msg("all", json!(5))).await.unwrap();
    assert_eq!(recv(&mut a).await["x"], 5);
    assert_eq!(recv(&mut b).await["x"], 5);
}

async fn notifications_reach_subscribers(bus: SharedBus) {
    let mut sub = bus.subscribe_notifications().await.unwrap();
    let marker = uuid::Uuid::new_v4().to_string();
    bus.notify("image.host1", "image.upload", json!({"id": marker}))
        .await
        .unwrap();
    let n = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sub.recv())
            .await
            .expect("a notification within 10 s")
            .unwrap();
        if n.payload["id"] == marker {
            break n;
        }
    };
    assert_eq!(n.event_type, "image.upload");
    assert_eq!(n.publisher_id, "image.host1");
    assert_eq!(n.priority, "INFO");
}

macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryBus::new())).await;
                }
            )*
        }
        mod rabbitmq {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(bus) = super::amqp().await {
                        super::$name(bus.clone()).await;
                        super::delete_topics(&bus).await;
                    }
                }
            )*
        }
    };
}

both_transports!(
    call_cast_errors_and_timeouts,
    servers_of_a_topic_share_the_work,
    fanout_reaches_every_server,
    notifications_reach_subscribers,
);

/// A cast waits in its durable queue while no server runs, and reaches the
/// next server that starts.
#[tokio::test]
async fn rabbitmq_a_cast_waits_for_a_server() {
    let Some(bus) = amqp().await else { return };
    let t = topic("durable");
    drop(bus.serve(&t).await.unwrap()); // declares the queue, then stops
    bus.cast(&t, msg("later", json!(9))).await.unwrap();
    let (tx, mut seen) = mpsc::unbounded_channel();
    spawn_server(bus.serve(&t).await.unwrap(), tx);
    assert_eq!(recv(&mut seen).await["x"], 9);
    delete_topics(&bus).await;
}

/// A server that dies before it is done with a message (its process, and so
/// its connection, gone) does not lose it: the broker redelivers it to
/// another server, flagged as redelivered.
#[tokio::test]
async fn rabbitmq_an_unfinished_message_is_redelivered() {
    let Some(first) = amqp().await else { return };
    let Some(second) = amqp().await else { return };
    let t = topic("redeliver");
    let mut rx = first.serve(&t).await.unwrap();
    first.cast(&t, msg("work", json!(1))).await.unwrap();
    let held = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!held.redelivered);
    let mut rx2 = second.serve(&t).await.unwrap();
    drop(first); // the first server "crashes" holding the message
    std::mem::forget(held);
    let again = tokio::time::timeout(Duration::from_secs(20), rx2.recv())
        .await
        .expect("redelivered within 20 s")
        .unwrap();
    assert_eq!(again.message.args["x"], 1);
    assert!(again.redelivered);
    drop(again);
    delete_topics(&second).await;
}

/// After the connection goes away the bus reconnects, its servers consume
/// again, and calls made meanwhile wait for the new connection.
#[tokio::test]
async fn rabbitmq_reconnects_and_resumes() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ferrostack_bus=debug,lapin=info")
        .with_test_writer()
        .try_init();
    let Some(bus) = amqp().await else { return };
    let t = topic("reconnect");
    let (tx, mut seen) = mpsc::unbounded_channel();
    spawn_server(bus.serve(&t).await.unwrap(), tx);
    bus.call(&t, msg("echo", json!(1)), SECOND * 5)
        .await
        .unwrap();
    recv(&mut seen).await;
    bus.sever().await;
    let answer = bus
        .call(&t, msg("echo", json!(2)), SECOND * 20)
        .await
        .unwrap();
    assert_eq!(answer["x"], 2);
    assert_eq!(recv(&mut seen).await["x"], 2);
    delete_topics(&bus).await;
}

/// Two clouds on one broker in different namespaces never see each
/// other's messages, even on the same topic.
#[tokio::test]
async fn rabbitmq_namespaces_isolate_clouds() {
    let Some(probe) = amqp().await else { return };
    drop(probe);
    let url = std::env::var("FERROSTACK_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let ns = |n: &str| format!("{url}?namespace=test-{n}-{}", uuid::Uuid::new_v4().simple());
    let a = AmqpBus::start(&ns("a")).unwrap();
    let b = AmqpBus::start(&ns("b")).unwrap();
    a.wait_connected(SECOND * 10).await.unwrap();
    b.wait_connected(SECOND * 10).await.unwrap();
    let (a_tx, mut a_seen) = mpsc::unbounded_channel();
    spawn_server(a.serve("compute.host1").await.unwrap(), a_tx);
    assert!(matches!(
        b.cast("compute.host1", msg("m", json!(1))).await,
        Err(BusError::NoConsumer(_))
    ));
    let mut b_notes = b.subscribe_notifications().await.unwrap();
    a.notify("compute.host1", "compute.instance.exists", json!({}))
        .await
        .unwrap();
    a.cast("compute.host1", msg("m", json!(2))).await.unwrap();
    assert_eq!(recv(&mut a_seen).await["x"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b_notes.try_recv().is_err(), "b saw a's notification");
}

/// A TCP relay to the broker that a test can cut: every connection through
/// it is closed, and new ones are refused, until it is restored — a lost
/// link for one bus while the others keep theirs.
struct Relay {
    url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(broker_url: &str) -> Relay {
        use std::net::{TcpListener, TcpStream};
        let (scheme_auth, rest) = broker_url.rsplit_once('@').expect("user@host in the URL");
        let (broker, vhost) = rest.split_once('/').unwrap_or((rest, "%2f"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("{scheme_auth}@{}/{vhost}", listener.local_addr().unwrap());
        let relay = Relay {
            url,
            up: Arc::new(true.into()),
            open: Default::default(),
        };
        let (up, open, broker) = (relay.up.clone(), relay.open.clone(), broker.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused while cut
                }
                let Ok(server) = TcpStream::connect(&broker) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ];
                open.lock().unwrap().extend([client, server]);
                for (mut from, mut to) in pairs {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        relay
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A call's answer sent while its caller is reconnecting (a broker restart
/// or a lost link takes the caller's exclusive reply queue with it) waits
/// for the caller's new queue instead of being dropped — dropped, the
/// caller would wait out its whole timeout (a boot's spawn: 30 minutes).
#[tokio::test]
async fn rabbitmq_a_reply_waits_for_its_caller_to_reconnect() {
    let Some(server) = amqp().await else { return };
    let relay = Relay::start(
        &std::env::var("FERROSTACK_TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
    );
    let caller = Arc::new(AmqpBus::start(&relay.url).unwrap());
    caller.wait_connected(SECOND * 10).await.unwrap();
    let t = topic("reply");
    let mut requests = server.serve(&t).await.unwrap();
    let (c, tt) = (caller.clone(), t.clone());
    let call = tokio::spawn(async move { c.call(&tt, msg("echo", json!(7)), SECOND * 20).await });
    let request = tokio::time::timeout(SECOND * 10, requests.recv())
        .await
        .expect("the call arrives")
        .unwrap();
    relay.cut();
    // The broker drops the caller's reply queue with its connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let args = request.message.args.clone();
    request.respond(Ok(args));
    tokio::time::sleep(SECOND).await;
    relay.restore();
    let answer = tokio::time::timeout(SECOND * 25, call)
        .await
        .expect("the call ends")
        .unwrap()
        .expect("the reply reached the reconnected caller");
    assert_eq!(answer["x"], 7);
    delete_topics(&server).await;
}
