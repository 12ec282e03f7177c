//! Supervision of the media engine: while it is wedged the agent's liveness ping (what feeds
//! the systemd watchdog) goes unanswered; when it dies the dashboard gets an error event and
//! the agent ends with an error, so systemd restarts it with a fresh engine.

mod support;

use std::time::Duration;

use roomagent::core::CallEvent;
use roomagent::media::Fault;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_media_engine_stops_the_watchdog_and_a_dead_one_ends_the_agent() {
    let server = Server::start().await;
    let mut agent =
        Agent::start_toml(&media_toml(&server.api(), "room", "mode = \"never\"", "")).await;
    agent.registered().await;
    let ping = |handle: roomagent::handle::AgentHandle| async move {
        tokio::time::timeout(Duration::from_secs(1), handle.ping()).await
    };
    assert!(
        matches!(ping(agent.handle.clone()).await, Ok(Ok(()))),
        "a healthy agent answers the liveness ping"
    );

    let wedged = std::time::Instant::now();
    agent
        .handle
        .inject_media_fault(Fault::Wedge(Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        ping(agent.handle.clone()).await.is_err(),
        "the ping must go unanswered while the media engine is wedged"
    );
    let mut recovered = false;
    for _ in 0..50 {
        if matches!(ping(agent.handle.clone()).await, Ok(Ok(()))) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the ping is answered again once the engine runs");
    let answered = wedged.elapsed();

    let mut events = agent.handle.events();
    let panicked = std::time::Instant::now();
    agent.handle.inject_media_fault(Fault::Panic);
    let error = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(CallEvent::Error { message }) = events.recv().await {
                return message;
            }
        }
    })
    .await
    .expect("the dashboard gets an error event");
    assert!(error.contains("media engine stopped"), "{error}");
    let ended = agent.ended().await;
    let why = format!("{:#}", ended.expect_err("the agent must end with an error"));
    assert!(why.contains("media engine stopped unexpectedly"), "{why}");
    println!(
        "MEASURE media engine wedged 3 s: ping answered again after {:.1} s; engine panic: error event and agent ended (for systemd to restart) after {} ms",
        answered.as_secs_f32(),
        panicked.elapsed().as_millis()
    );
    server.stop().await;
}
