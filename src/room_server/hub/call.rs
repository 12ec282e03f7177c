//! `call/*`: one user rings another. The hub only forwards: it checks the target is online
//! and puts the sender's real identity on the copy, whatever the request claimed.

use serde_json::json;

use super::route::CallKind;
use super::{Handled, Hub, Me, Out, Refusal, deliver};
use crate::signaling::rtcpeer::wire::{self, CallMsg, code};

impl Hub {
    /// Forwards a `call/*` message to the target's registered devices (only the one device
    /// type when `targetDeviceType` is set), rewriting the sender.
    pub(super) fn call(&self, out: &mut Out, me: &Me, kind: CallKind, m: CallMsg) -> Handled {
        let Some(target) = m.target_user_id else {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                "field `targetUserId`: missing",
            ));
        };
        if kind == CallKind::Event && m.event.is_none() {
            return Err(Refusal::new(code::BAD_REQUEST, "field `event`: missing"));
        }
        let conns = self.devices_of(target, m.target_device_type.as_deref());
        if conns.is_empty() {
            return Err(Refusal::new(
                code::FAILED,
                format!("user {target} is not online"),
            ));
        }
        let room = m.room_id;
        let forwarded = CallMsg {
            own_user_id: Some(me.id),
            own_device_type: Some(me.device.clone()),
            target_user_id: None,
            target_device_type: None,
            ..m
        };
        let text = wire::frame("call", kind.method(), None, &forwarded);
        for c in conns {
            deliver(out, c, text.clone());
        }
        Ok(match room {
            Some(room) if kind == CallKind::Invite => json!({ "roomId": room }),
            _ => json!({}),
        })
    }
}
