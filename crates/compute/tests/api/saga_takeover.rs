//! Two controllers on one database (issue 14): a saga left unfinished by a
//! controller that stopped is finished by the other, once, and the first
//! cannot run a step of it after that.

use super::*;
use ferrostack_compute::saga::{self, ownership};
use ferrostack_compute::store::{instances, sagas};

/// Wait until the boot of `id` has made its port, then "crashed".
async fn wait_for_ports(db: &ferrostack_db::Db, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while instances::get(db, id)
        .await
        .unwrap()
        .unwrap()
        .network_info
        .is_empty()
    {
        assert!(Instant::now() < deadline, "allocate_ports never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_stopped_controllers_saga_is_finished_by_another_once() {
    let c = start("saga_takeover", |cfg| cfg.compute.saga_lease_secs = 2).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let db = c.svc.db.clone();

    // Controller A stops right after making the port, before recording it.
    c.svc.set_failpoint(Some("crash_after:allocate_ports"));
    let id = c.boot(&admin, "orphan", &image, &net).await;
    wait_for_ports(&db, &id).await;
    let row = sagas::for_instance(&db, &id).await.unwrap().remove(0);
    let a = ownership::controller(&c.svc).to_owned();

    // Controller B, on the same database under another host name.
    let mut config_b = c.config.clone();
    config_b.common.host = "controller-b".into();
    let b = ComputeService::new(db.clone(), config_b, c.kit.bus.clone())
        .await
        .unwrap();
    ownership::heartbeat(&b).await.unwrap();
    // A is alive (its keeper renews its lease): B leaves A's saga alone.
    assert!(ownership::claim(&b, false).await.unwrap().is_empty());

    // A's process "dies": its lease lapses, and B takes the saga over.
    c.svc.set_failpoint(Some("controller_dead"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let taken = loop {
        let rows = ownership::claim(&b, false).await.unwrap();
        if !rows.is_empty() {
            break rows;
        }
        assert!(Instant::now() < deadline, "B never took the saga over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(taken.len(), 1);
    // B runs what it claimed, as its keeper does.
    for row in taken {
        saga::execute(b.clone(), row).await.unwrap();
    }
    let s = c.wait_status(&admin, &id, "ACTIVE").await;
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{s}");
    assert!(sagas::unfinished(&db).await.unwrap().is_empty());
    assert!(sagas::owned_by(&db, &row.id, "controller-b").await.unwrap());
    assert!(!sagas::owned_by(&db, &row.id, &a).await.unwrap());
    assert_eq!(c.ports_of(&admin, &id).await.len(), 1, "one port, not two");
    assert_eq!(c.claims_of(&id).await, 1, "one claim, not two");

    c.agent.stop();
}

/// Fencing: once another controller owns a saga, the one that had it runs
/// no step of it (it paused past its lease and woke up).
#[tokio::test]
async fn a_controller_that_lost_a_saga_runs_no_step_of_it() {
    let c = start("saga_fencing", |_| {}).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    let db = c.svc.db.clone();
    c.svc.set_failpoint(Some("crash_after:allocate_ports"));
    let id = c.boot(&admin, "fenced", &image, &net).await;
    wait_for_ports(&db, &id).await;
    c.svc.set_failpoint(None);
    let row = sagas::for_instance(&db, &id).await.unwrap().remove(0);
    let a = ownership::controller(&c.svc).to_owned();
    assert!(sagas::claim(&db, &row.id, Some(&a), "controller-b")
        .await
        .unwrap());

    let steps_before = sagas::steps(&db, &row.id).await.unwrap();
    saga::execute(c.svc.clone(), row.clone()).await.unwrap();
    assert_eq!(sagas::steps(&db, &row.id).await.unwrap(), steps_before);
    let i = instances::get(&db, &id).await.unwrap().unwrap();
    assert_eq!(i.vm_state, VmState::Building, "A ran no step");

    // The owner finishes it.
    let mut config_b = c.config.clone();
    config_b.common.host = "controller-b".into();
    let b = ComputeService::new(db.clone(), config_b, c.kit.bus.clone())
        .await
        .unwrap();
    saga::execute(b, row).await.unwrap();
    c.wait_status(&admin, &id, "ACTIVE").await;
    assert_eq!(c.ports_of(&admin, &id).await.len(), 1);
    c.agent.stop();
}

/// A controller restarted under its own host name resumes its own sagas at
/// once, without waiting for its old lease to lapse.
#[tokio::test]
async fn a_restarted_controller_resumes_its_own_sagas_at_once() {
    let c = start("saga_own_resume", |cfg| cfg.compute.saga_lease_secs = 600).await;
    let admin = c.token("admin", "admin").await;
    let image = c.image(&admin).await;
    let net = c.network(&admin).await;
    c.svc.set_failpoint(Some("crash_after:allocate_ports"));
    let id = c.boot(&admin, "own", &image, &net).await;
    wait_for_ports(&c.svc.db, &id).await;
    c.svc.set_failpoint(None);
    let again = ComputeService::new(c.svc.db.clone(), c.config.clone(), c.kit.bus.clone())
        .await
        .unwrap();
    assert_eq!(saga::resume_all(&again).await.unwrap(), 1);
    c.wait_status(&admin, &id, "ACTIVE").await;
    assert_eq!(c.ports_of(&admin, &id).await.len(), 1);
    c.agent.stop();
}
