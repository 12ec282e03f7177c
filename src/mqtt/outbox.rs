//! What the publisher wants sent, held here until rumqttc's bounded request channel takes it.
//!
//! The publisher never awaits rumqttc: it hands everything over with `try_*`, and what does
//! not fit stays here until the next flush. While the broker is away nothing is handed over;
//! the outbox keeps, per retained topic (status, state, discovery), only the latest payload,
//! and of events and replies only the newest [`QUEUE_MAX`], counting what it dropped.
//! Subscriptions go first, then retained topics, then events and replies in order.

use std::collections::VecDeque;

use rumqttc::{AsyncClient, QoS};

/// Events and replies kept while the link cannot take them.
pub const QUEUE_MAX: usize = 128;

/// Publications waiting for room in the link.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    subscriptions: Vec<String>,
    retained: Vec<(String, String)>,
    queue: VecDeque<(String, String)>,
    /// Events and replies dropped since the last call of [`Outbox::take_dropped`].
    dropped: u64,
}

impl Outbox {
    /// A subscription (QoS 1) to make.
    pub fn subscribe(&mut self, filter: String) {
        if !self.subscriptions.contains(&filter) {
            self.subscriptions.push(filter);
        }
    }

    /// A retained publication: replaces a waiting one on the same topic (latest wins).
    pub fn retained(&mut self, topic: String, payload: String) {
        match self.retained.iter_mut().find(|(t, _)| *t == topic) {
            Some(slot) => slot.1 = payload,
            None => self.retained.push((topic, payload)),
        }
    }

    /// An event or reply; beyond [`QUEUE_MAX`] waiting, the oldest is dropped.
    pub fn message(&mut self, topic: String, payload: String) {
        if self.queue.len() >= QUEUE_MAX {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back((topic, payload));
    }

    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty() && self.retained.is_empty() && self.queue.is_empty()
    }

    /// How many events and replies were dropped since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Hands over as much as the link takes now, in order, without waiting.
    pub fn flush(&mut self, client: &AsyncClient) {
        while let Some(filter) = self.subscriptions.first() {
            if client
                .try_subscribe(filter.clone(), QoS::AtLeastOnce)
                .is_err()
            {
                return;
            }
            self.subscriptions.remove(0);
        }
        while let Some((topic, payload)) = self.retained.first() {
            if !Self::hand_over(client, topic, payload, true) {
                return;
            }
            self.retained.remove(0);
        }
        while let Some((topic, payload)) = self.queue.front() {
            if !Self::hand_over(client, topic, payload, false) {
                return;
            }
            self.queue.pop_front();
        }
    }

    fn hand_over(client: &AsyncClient, topic: &str, payload: &str, retain: bool) -> bool {
        client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_topics_keep_the_latest_payload_and_the_queue_its_newest_messages() {
        let mut o = Outbox::default();
        o.retained("a/state".into(), "1".into());
        o.retained("a/status".into(), "online".into());
        o.retained("a/state".into(), "2".into());
        assert_eq!(
            o.retained,
            [
                ("a/state".into(), "2".into()),
                ("a/status".into(), "online".into())
            ]
        );
        for i in 0..QUEUE_MAX + 5 {
            o.message("a/event".into(), i.to_string());
        }
        assert_eq!(o.queue.len(), QUEUE_MAX);
        assert_eq!(o.queue.front().unwrap().1, "5", "the oldest went first");
        assert_eq!(o.take_dropped(), 5);
        assert_eq!(o.take_dropped(), 0);
    }

    #[tokio::test]
    async fn a_full_link_keeps_the_rest_for_the_next_flush() {
        let (client, eventloop) = AsyncClient::new(rumqttc::MqttOptions::new("t", "h", 1), 3);
        let mut o = Outbox::default();
        o.subscribe("a/cmd/+".into());
        o.retained("a/state".into(), "s".into());
        for i in 0..4 {
            o.message("a/event".into(), i.to_string());
        }
        o.flush(&client);
        assert!(!o.is_empty(), "the link took three of six");
        assert_eq!(o.queue.len(), 3);
        assert_eq!(o.queue.front().unwrap().1, "1");
        drop(eventloop);
    }
}
