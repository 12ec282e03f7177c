//! `roomagent mqtt-forget`: removes a decommissioned device from dashboards by clearing its
//! retained messages, in the order that leaves Home Assistant without errors.
//!
//! The discovery configs go first. Home Assistant removes an entity when its config is
//! cleared, and an entity that still exists renders its value template against whatever
//! arrives on its state topic, including the empty payload of a cleared retained state. So
//! the configs are cleared and confirmed, then [`FORGET_GAP`] gives Home Assistant time to
//! drop the entities, and only then are the health, inventory, state and status cleared. (The templates are
//! guarded against an empty state as well, so a different order would not produce errors
//! either; this order also keeps entities from flashing `unavailable` before they go.)

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};

use super::{Options, describe, discovery};

/// The pause between clearing the discovery configs and clearing the state and status.
pub const FORGET_GAP: Duration = Duration::from_secs(2);

/// Clears the device's discovery configs, waits [`FORGET_GAP`], then clears its health,
/// inventory, state and status. Connects as `client_id`, else as `<device id>-forget` (which
/// a broker that keeps to 23 bytes refuses for a long id). Returns the topics cleared, in the order they were cleared.
pub async fn forget(opts: &Options, client_id: Option<&str>) -> Result<Vec<String>, String> {
    let default_id = format!("{}-forget", opts.topics.id);
    let mut o = opts.client_options(client_id.unwrap_or(&default_id));
    o.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(o, 64);
    let configs = match &opts.discovery_prefix {
        Some(prefix) => discovery::all_topics(prefix, &opts.topics),
        None => Vec::new(),
    };
    clear(&client, &mut eventloop, &configs).await?;
    if !configs.is_empty() {
        tokio::time::sleep(FORGET_GAP).await;
    }
    let t = &opts.topics;
    let rest = [t.health(), t.info(), t.state(), t.status()];
    clear(&client, &mut eventloop, &rest).await?;
    hang_up(&client, &mut eventloop).await;
    let mut all = configs;
    all.extend(rest);
    Ok(all)
}

/// Disconnects cleanly (the broker then sends no will) and drives the event loop until the
/// DISCONNECT is out, for at most 2 s: the tools' (`mqtt-forget`, `fleet`) goodbye.
pub(crate) async fn hang_up(client: &AsyncClient, eventloop: &mut EventLoop) {
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}

/// Publishes an empty retained message on every topic and waits until the broker has
/// acknowledged each one.
async fn clear(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    topics: &[String],
) -> Result<(), String> {
    for t in topics {
        client
            .publish(t.clone(), QoS::AtLeastOnce, true, Vec::<u8>::new())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut acked = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while acked < topics.len() {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => return Err("the broker did not confirm in time".into()),
            Ok(Err(e)) => return Err(describe(&e)),
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
        }
    }
    Ok(())
}
