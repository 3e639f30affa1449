//! `ferrostack service list`: the compute services and network agents of
//! the cloud as their databases record them, with liveness judged the way
//! the APIs judge it (last heartbeat within `service_down_time` /
//! `agent_down_time`).

use ferrostack_core::config::Config;

fn age_seconds(stamp: &str) -> Option<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(stamp)
        .map(|t| t.naive_utc())
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()?;
    Some((chrono::Utc::now().naive_utc() - parsed).num_seconds())
}

fn state(stamp: Option<&str>, down_after: i64) -> &'static str {
    match stamp.and_then(age_seconds) {
        Some(age) if age <= down_after => ":-)",
        _ => "XXX",
    }
}

pub async fn print(cfg: &Config) -> anyhow::Result<()> {
    let mut rows: Vec<[String; 6]> = Vec::new();
    let compute_db =
        ferrostack_db::Db::connect(&cfg.database_url("compute", &cfg.compute.database_url)).await?;
    compute_db
        .migrate(ferrostack_compute::store::MIGRATIONS)
        .await?;
    for s in ferrostack_compute::store::hosts::list_services(&compute_db).await? {
        let st = if s.forced_down {
            "XXX"
        } else {
            state(s.updated_at.as_deref(), cfg.compute.service_down_time)
        };
        rows.push([
            s.binary,
            s.host,
            s.zone,
            if s.disabled { "disabled" } else { "enabled" }.into(),
            st.into(),
            s.updated_at.unwrap_or_default(),
        ]);
    }
    let network_db =
        ferrostack_db::Db::connect(&cfg.database_url("network", &cfg.network.database_url)).await?;
    network_db
        .migrate(ferrostack_network::store::MIGRATIONS)
        .await?;
    let agents =
        ferrostack_network::store::list(&network_db, ferrostack_network::store::Kind::Agent)
            .await?;
    for a in agents {
        let beat = a["heartbeat_timestamp"].as_str().map(str::to_owned);
        rows.push([
            a["binary"].as_str().unwrap_or_default().into(),
            a["host"].as_str().unwrap_or_default().into(),
            a["availability_zone"].as_str().unwrap_or("-").into(),
            if a["admin_state_up"] == false {
                "disabled"
            } else {
                "enabled"
            }
            .into(),
            state(beat.as_deref(), cfg.network.agent_down_time).into(),
            beat.unwrap_or_default(),
        ]);
    }
    let header = ["Binary", "Host", "Zone", "Status", "State", "Updated_At"];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(&header));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        println!("{}", line(&cells));
    }
    Ok(())
}
