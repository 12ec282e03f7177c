//! The topic scheme (documented in the README, "MQTT").

/// Topics of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `<prefix>`.
    pub prefix: String,
    /// The device id.
    pub id: String,
}

impl Topics {
    /// Topics for `id` under `prefix`.
    pub fn new(prefix: &str, id: &str) -> Topics {
        Topics {
            prefix: prefix.to_string(),
            id: id.to_string(),
        }
    }

    fn t(&self, leaf: &str) -> String {
        format!("{}/{}/{leaf}", self.prefix, self.id)
    }

    /// Retained `online` / `offline` (also the last will).
    pub fn status(&self) -> String {
        self.t("status")
    }

    /// Retained JSON state.
    pub fn state(&self) -> String {
        self.t("state")
    }

    /// Call lifecycle events.
    pub fn event(&self) -> String {
        self.t("event")
    }

    /// Periodic telemetry.
    pub fn telemetry(&self) -> String {
        self.t("telemetry")
    }

    /// Replies to commands.
    pub fn reply(&self) -> String {
        self.t("reply")
    }

    /// This device's command filter.
    pub fn commands(&self) -> String {
        self.t("cmd/+")
    }

    /// The fleet's command filter.
    pub fn fleet_commands(&self) -> String {
        format!("{}/all/cmd/+", self.prefix)
    }

    /// For a received topic: the verb and whether it was a fleet command; `None` for topics
    /// that are not commands for us.
    pub fn parse_command<'a>(&self, topic: &'a str) -> Option<(&'a str, bool)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (who, rest) = rest.split_once('/')?;
        let verb = rest.strip_prefix("cmd/")?;
        if verb.is_empty() || verb.contains('/') {
            return None;
        }
        if who == self.id {
            Some((verb, false))
        } else if who == "all" {
            Some((verb, true))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_topics_are_recognised() {
        let t = Topics::new("roomagent", "room-101");
        assert_eq!(
            t.parse_command("roomagent/room-101/cmd/mute"),
            Some(("mute", false))
        );
        assert_eq!(
            t.parse_command("roomagent/all/cmd/hangup"),
            Some(("hangup", true))
        );
        assert_eq!(t.parse_command("roomagent/room-102/cmd/mute"), None);
        assert_eq!(t.parse_command("roomagent/room-101/state"), None);
        assert_eq!(t.parse_command("other/room-101/cmd/mute"), None);
        assert_eq!(t.parse_command("roomagent/room-101/cmd/"), None);
        assert_eq!(t.status(), "roomagent/room-101/status");
    }
}
