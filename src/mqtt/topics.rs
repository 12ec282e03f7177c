//! The topic scheme (documented in the README, "MQTT").

/// Topics of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `<prefix>`.
    pub prefix: String,
    /// The device id.
    pub id: String,
    /// The fleet group whose command topic this device also reads.
    pub group: Option<String>,
    /// The site whose command topic this device also reads.
    pub site: Option<String>,
}

/// Device ids that would make a device's topics collide with the fleet's.
pub const RESERVED_IDS: [&str; 3] = ["all", "group", "site"];

impl Topics {
    /// Topics for `id` under `prefix`.
    pub fn new(prefix: &str, id: &str) -> Topics {
        Topics {
            prefix: prefix.to_string(),
            id: id.to_string(),
            group: None,
            site: None,
        }
    }

    /// Also reads the command topics of this group and site.
    pub fn with_tags(mut self, group: Option<&str>, site: Option<&str>) -> Topics {
        self.group = group.map(str::to_string);
        self.site = site.map(str::to_string);
        self
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

    /// Retained health: level and issues.
    pub fn health(&self) -> String {
        self.t("health")
    }

    /// Retained inventory: what the device is and runs.
    pub fn info(&self) -> String {
        self.t("info")
    }

    /// Retained, written by a dashboard: the configuration it wants (remote configuration).
    pub fn config_desired(&self) -> String {
        self.t("config/desired")
    }

    /// Retained, written by the device: what became of the desired configuration.
    pub fn config_reported(&self) -> String {
        self.t("config/reported")
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

    /// Every command filter this device subscribes: its own, the fleet's, and its group's
    /// and site's (`<prefix>/group/<g>/cmd/+`, `<prefix>/site/<s>/cmd/+`), so the broker
    /// does the fan-out and an ACL can give a site's operators that site's topic only.
    pub fn command_filters(&self) -> Vec<String> {
        let mut f = vec![self.commands(), format!("{}/all/cmd/+", self.prefix)];
        if let Some(g) = &self.group {
            f.push(format!("{}/group/{g}/cmd/+", self.prefix));
        }
        if let Some(s) = &self.site {
            f.push(format!("{}/site/{s}/cmd/+", self.prefix));
        }
        f
    }

    /// For a received topic: the verb and whether it was a fleet command (to all, a group or
    /// a site: such commands may carry a `target`); `None` for topics that are not commands
    /// for us.
    pub fn parse_command<'a>(&self, topic: &'a str) -> Option<(&'a str, bool)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (who, rest) = rest.split_once('/')?;
        let (fleet, rest) = match who {
            "all" => (true, rest),
            "group" | "site" => {
                let (name, rest) = rest.split_once('/')?;
                let ours = if who == "group" {
                    &self.group
                } else {
                    &self.site
                };
                if ours.as_deref() != Some(name) {
                    return None;
                }
                (true, rest)
            }
            id if id == self.id => (false, rest),
            _ => return None,
        };
        let verb = rest.strip_prefix("cmd/")?;
        if verb.is_empty() || verb.contains('/') {
            return None;
        }
        Some((verb, fleet))
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

    #[test]
    fn group_and_site_topics_are_read_for_our_own_tags_only() {
        let t = Topics::new("roomagent", "room-101").with_tags(Some("lobby"), Some("berlin"));
        assert_eq!(
            t.command_filters(),
            [
                "roomagent/room-101/cmd/+",
                "roomagent/all/cmd/+",
                "roomagent/group/lobby/cmd/+",
                "roomagent/site/berlin/cmd/+"
            ]
        );
        assert_eq!(
            t.parse_command("roomagent/group/lobby/cmd/mute"),
            Some(("mute", true))
        );
        assert_eq!(
            t.parse_command("roomagent/site/berlin/cmd/restart"),
            Some(("restart", true))
        );
        assert_eq!(t.parse_command("roomagent/group/boardroom/cmd/mute"), None);
        assert_eq!(t.parse_command("roomagent/site/paris/cmd/mute"), None);
        assert_eq!(t.parse_command("roomagent/group/lobby/cmd/"), None);
        assert_eq!(t.parse_command("roomagent/group/lobby/mute"), None);
        assert_eq!(t.parse_command("roomagent/group/cmd/mute"), None);
        let untagged = Topics::new("roomagent", "room-101");
        assert_eq!(untagged.command_filters().len(), 2);
        assert_eq!(
            untagged.parse_command("roomagent/group/lobby/cmd/mute"),
            None
        );
    }
}
