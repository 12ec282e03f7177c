//! `media/*`: WebRTC signaling between two participants of a room. The hub relays each
//! message to its recipient unchanged but for `fromClientId`, which it sets to the sender.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::rooms::not_in_room;
use super::route::MediaKind;
use super::{ConnId, Handled, Hub, Me, Out, Refusal, deliver, ok};
use crate::signaling::rtcpeer::wire::{
    self, Envelope, MediaBye, MediaCandidate, MediaQuality, MediaSdp, code,
};

/// A `media/*` body: where it goes, and the sender field the hub fills in.
trait Relayed: Serialize + DeserializeOwned {
    fn room_id(&self) -> i64;
    fn to_client_id(&self) -> i64;
    fn set_from(&mut self, user: i64);
}

macro_rules! relayed {
    ($($t:ty),*) => {$(
        impl Relayed for $t {
            fn room_id(&self) -> i64 {
                self.room_id
            }
            fn to_client_id(&self) -> i64 {
                self.to_client_id
            }
            fn set_from(&mut self, user: i64) {
                self.from_client_id = Some(user);
            }
        }
    )*};
}

relayed!(MediaSdp, MediaCandidate, MediaBye, MediaQuality);

impl Hub {
    /// Decodes the body `kind` carries and relays it.
    pub(super) fn relay(&self, out: &mut Out, me: &Me, kind: MediaKind, env: &Envelope) -> Handled {
        match kind {
            MediaKind::Offer | MediaKind::Answer => {
                self.relay_body::<MediaSdp>(out, me, kind, env.decode()?)
            }
            MediaKind::Candidate => self.relay_body::<MediaCandidate>(out, me, kind, env.decode()?),
            MediaKind::Bye => self.relay_body::<MediaBye>(out, me, kind, env.decode()?),
            MediaKind::Quality => {
                let m: MediaQuality = env.decode()?;
                m.layer()
                    .map_err(|e| Refusal::new(code::BAD_REQUEST, format!("field `sim`: {e}")))?;
                self.relay_body(out, me, kind, m)
            }
        }
    }

    fn relay_body<T: Relayed>(&self, out: &mut Out, me: &Me, kind: MediaKind, mut m: T) -> Handled {
        let to = self.media_peer(m.room_id(), me.id, m.to_client_id())?;
        m.set_from(me.id);
        deliver(out, to, wire::frame("media", kind.method(), None, &m));
        ok()
    }

    /// The recipient's connection: both must sit in the room, and it must not be the sender.
    fn media_peer(&self, room_id: i64, me: i64, to: i64) -> Result<ConnId, Refusal> {
        self.own_seat(room_id, me)?;
        if to == me {
            return Err(not_in_room(to, room_id));
        }
        self.seat_conn(room_id, to)
    }
}
