//! The auto-answer policy: which incoming calls the device answers by itself, and how.

use std::time::Duration;

use serde::Deserialize;

use super::types::UserId;

/// Which callers are answered without a person pressing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AnswerMode {
    /// Every caller.
    Always,
    /// Callers in `allow`; others ring until answered locally or the ring timeout.
    AllowList,
    /// Nobody: every call rings.
    Never,
}

/// The complete answering policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerPolicy {
    /// Who is answered automatically.
    pub mode: AnswerMode,
    /// The callers `allow_list` answers.
    pub allow: Vec<UserId>,
    /// How long it rings before the automatic answer (lets people in the room notice).
    pub delay: Duration,
    /// Enter answered calls with the microphone muted.
    pub answer_muted: bool,
    /// A call nobody answered is declined after this long.
    pub ring_timeout: Duration,
}

impl AnswerPolicy {
    /// Whether a call from `caller` is answered automatically.
    pub fn auto_answers(&self, caller: UserId) -> bool {
        match self.mode {
            AnswerMode::Always => true,
            AnswerMode::AllowList => self.allow.contains(&caller),
            AnswerMode::Never => false,
        }
    }
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        AnswerPolicy {
            mode: AnswerMode::Always,
            allow: Vec::new(),
            delay: Duration::from_millis(1000),
            answer_muted: false,
            ring_timeout: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: AnswerMode, allow: &[UserId]) -> AnswerPolicy {
        AnswerPolicy {
            mode,
            allow: allow.to_vec(),
            ..AnswerPolicy::default()
        }
    }

    #[test]
    fn always_answers_everyone() {
        assert!(policy(AnswerMode::Always, &[]).auto_answers(UserId(42)));
    }

    #[test]
    fn allow_list_answers_only_listed_callers() {
        let p = policy(AnswerMode::AllowList, &[UserId(7), UserId(9)]);
        assert!(p.auto_answers(UserId(7)));
        assert!(!p.auto_answers(UserId(8)));
    }

    #[test]
    fn never_answers_nobody() {
        assert!(!policy(AnswerMode::Never, &[UserId(7)]).auto_answers(UserId(7)));
    }
}
