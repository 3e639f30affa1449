//! RPC round-trip latency of the bus's two transports, measured on the
//! real bus code: sequential `call`s to an echo server, in-process
//! (`memory://`) and over RabbitMQ (two connections, as two processes
//! have). A benchmark, not a test: `bench/deploy.sh` runs it in release,
//! `cargo test --release -p ferrostack-bus --test rpc_latency -- --ignored --nocapture`
//! (FERROSTACK_BENCH_AMQP_URL, default the local broker; FERROSTACK_BENCH_CALLS).

use ferrostack_bus::{amqp::AmqpBus, Bus, MemoryBus, RpcMessage};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answer every call with its arguments.
async fn echo_server(bus: &dyn Bus, topic: &str) {
    let mut rx = bus.serve(topic).await.unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = rx.recv().await {
            let args = incoming.message.args.clone();
            incoming.respond(Ok(args));
        }
    });
}

/// p50 and p99 of `calls` sequential round trips (after a warm-up), in µs.
async fn round_trips(caller: &dyn Bus, topic: &str, calls: usize) -> (f64, f64) {
    let message = |i: usize| RpcMessage {
        method: "echo".into(),
        args: json!({"i": i, "instance_id": "0e1f5c1a-7d7e-4a53-9d55-3b1cb1b6e0f1"}),
    };
    for i in 0..calls / 10 {
        caller
            .call(topic, message(i), Duration::from_secs(10))
            .await
            .unwrap();
    }
    let mut micros = Vec::with_capacity(calls);
    for i in 0..calls {
        let start = Instant::now();
        let answer = caller
            .call(topic, message(i), Duration::from_secs(10))
            .await
            .unwrap();
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(answer["i"], i);
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((q * calls as f64) as usize).min(calls - 1)];
    (at(0.50), at(0.99))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/deploy.sh runs it in release"]
async fn rpc_round_trip_latency() {
    let calls: usize = std::env::var("FERROSTACK_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let memory = MemoryBus::new();
    echo_server(&memory, "bench.echo").await;
    let (p50, p99) = round_trips(&memory, "bench.echo", calls).await;
    println!("rpc round trip, in-process bus: p50 {p50:.0} us, p99 {p99:.0} us ({calls} calls)");

    let url = std::env::var("FERROSTACK_BENCH_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let namespaced = format!("{url}?namespace=bench-{}", uuid::Uuid::new_v4().simple());
    let server = Arc::new(AmqpBus::start(&namespaced).unwrap());
    let caller = Arc::new(AmqpBus::start(&namespaced).unwrap());
    for bus in [&server, &caller] {
        bus.wait_connected(Duration::from_secs(10))
            .await
            .expect("a RabbitMQ broker (FERROSTACK_BENCH_AMQP_URL)");
    }
    echo_server(server.as_ref(), "bench.echo").await;
    let (p50, p99) = round_trips(caller.as_ref(), "bench.echo", calls).await;
    println!("rpc round trip, RabbitMQ: p50 {p50:.0} us, p99 {p99:.0} us ({calls} calls)");
}
