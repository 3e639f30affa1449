//! The agent's volume messages through the fake driver: a guest booted
//! from a volume needs no image (none is fetched, its image id may be
//! empty), and attach / extend / detach reach the driver, each repeatable.

use ferrostack_compute_agent::protocol::{AgentError, AgentReply, AgentRequest};
use ferrostack_compute_agent::ComputeAgent;
use ferrostack_hypervisor::fake::{FakeConfig, FakeDriver};
use ferrostack_hypervisor::{InstanceSpec, VolumeAttachment, VolumeConnection};
use std::sync::Arc;

fn connection(export: &str) -> VolumeConnection {
    serde_json::from_value(serde_json::json!({
        "driver_volume_type": "nbd",
        "data": {"export": export, "socket": "/run/ferrostack/volumes/v.sock", "access_mode": "rw"}
    }))
    .unwrap()
}

fn volume(id: &str, boot_index: Option<i32>) -> VolumeAttachment {
    VolumeAttachment {
        volume_id: id.into(),
        connection: connection(&format!("export-{id}")),
        device_name: if boot_index.is_some() {
            "/dev/vda"
        } else {
            "/dev/vdb"
        }
        .into(),
        boot_index,
    }
}

fn spec(id: &str, volumes: Vec<VolumeAttachment>) -> InstanceSpec {
    InstanceSpec {
        id: id.into(),
        name: "bfv".into(),
        instance_name: "instance-00000001".into(),
        vcpus: 1,
        memory_mb: 64,
        image_id: String::new(),
        volumes,
        ..Default::default()
    }
}

#[tokio::test]
async fn boot_from_volume_and_volume_messages() {
    // No image service answers here: a spawn that needed one would fail.
    let kit = ferrostack_testkit::start("agent-volumes", |c| {
        c.compute.image_url = "http://127.0.0.1:9".into();
    })
    .await;
    let fake = Arc::new(FakeDriver::new(&FakeConfig {
        host: kit.config.common.host.clone(),
        vcpus: 4,
        memory_mb: 4096,
        local_gb: 40,
    }));
    let agent = ComputeAgent::start(&kit.config, kit.bus.clone(), fake.clone())
        .await
        .unwrap();

    let id = "6a1f9c2e-0d7b-4c43-9a55-8e1b2f0c6d11";
    let root = "0b6f2d4e-1111-4c43-9a55-8e1b2f0c6d11";
    let spawn = AgentRequest::Spawn {
        instance: spec(id, vec![volume(root, Some(0))]),
        config_drive: None,
    };
    assert!(matches!(agent.handle(spawn).await, Ok(AgentReply::Done)));
    let g = fake.guest(id).unwrap();
    assert_eq!(g.spec.volumes, vec![volume(root, Some(0))]);

    // Without a boot volume the image is needed, and asked for.
    let other = AgentRequest::Spawn {
        instance: spec("7b2f9c2e-0d7b-4c43-9a55-8e1b2f0c6d11", vec![]),
        config_drive: None,
    };
    assert!(matches!(
        agent.handle(other).await,
        Err(AgentError::Image(_))
    ));

    let data = "1c7e3f5a-2222-4c43-9a55-8e1b2f0c6d11";
    for _ in 0..2 {
        let attach = AgentRequest::AttachVolume {
            instance_id: id.into(),
            volume: volume(data, None),
        };
        assert!(matches!(agent.handle(attach).await, Ok(AgentReply::Done)));
    }
    assert_eq!(fake.guest(id).unwrap().spec.volumes.len(), 2);
    let extend = AgentRequest::ExtendVolume {
        instance_id: id.into(),
        volume_id: data.into(),
        connection: connection("export-new"),
        new_size_bytes: 2 << 30,
    };
    assert!(matches!(agent.handle(extend).await, Ok(AgentReply::Done)));
    assert!(fake
        .guest(id)
        .unwrap()
        .console
        .contains(&format!("volume {data} is now {} bytes", 2u64 << 30)));
    for _ in 0..2 {
        let detach = AgentRequest::DetachVolume {
            instance_id: id.into(),
            volume_id: data.into(),
        };
        assert!(matches!(agent.handle(detach).await, Ok(AgentReply::Done)));
    }
    assert_eq!(
        fake.guest(id).unwrap().spec.volumes,
        vec![volume(root, Some(0))]
    );
    agent.stop();
}
