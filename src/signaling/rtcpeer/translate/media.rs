//! `media/*`: WebRTC negotiation with one participant. The server relays each message to
//! `toClientId` and rewrites `fromClientId` to the sender.

use super::{Identity, MediaMethod, Request, Route, missing};
use crate::core::{ClientId, MediaSignal, RoomId, SignalingEvent};
use crate::signaling::rtcpeer::wire::{
    Envelope, MediaBye, MediaCandidate, MediaQuality, MediaSdp, WireError,
};

/// The message carrying `signal` to participant `to`.
pub(super) fn request(
    me: &Identity,
    room_id: RoomId,
    to: ClientId,
    signal: &MediaSignal,
) -> Request {
    let from_client_id = Some(me.user_id.0);
    let sdp = |sdp: &str| MediaSdp {
        room_id: room_id.0,
        from_client_id,
        to_client_id: to.0,
        sdp: sdp.to_string(),
    };
    match signal {
        MediaSignal::Offer { sdp: text } => {
            Request::new(Route::Media(MediaMethod::Offer), sdp(text))
        }
        MediaSignal::Answer { sdp: text } => {
            Request::new(Route::Media(MediaMethod::Answer), sdp(text))
        }
        MediaSignal::Candidate {
            candidate,
            sdp_mline_index,
            sdp_mid,
        } => {
            let body = MediaCandidate {
                room_id: room_id.0,
                from_client_id,
                to_client_id: to.0,
                candidate: candidate.clone(),
                sdp_mline_index: *sdp_mline_index,
                sdp_mid: sdp_mid.clone(),
            };
            Request::new(Route::Media(MediaMethod::Candidate), body)
        }
        MediaSignal::Bye => {
            let body = MediaBye {
                room_id: room_id.0,
                from_client_id,
                to_client_id: to.0,
            };
            Request::new(Route::Media(MediaMethod::Bye), body)
        }
        MediaSignal::Quality { layer } => {
            let body = MediaQuality {
                room_id: room_id.0,
                from_client_id,
                to_client_id: to.0,
                sim: i64::from(*layer),
            };
            Request::new(Route::Media(MediaMethod::Quality), body)
        }
    }
}

/// A relayed `media/*` message for us.
pub(super) fn push(method: MediaMethod, env: &Envelope) -> Result<SignalingEvent, WireError> {
    let (room_id, from, signal) = match method {
        MediaMethod::Offer | MediaMethod::Answer => {
            let m: MediaSdp = env.decode()?;
            let signal = if method == MediaMethod::Offer {
                MediaSignal::Offer { sdp: m.sdp }
            } else {
                MediaSignal::Answer { sdp: m.sdp }
            };
            (m.room_id, m.from_client_id, signal)
        }
        MediaMethod::Candidate => {
            let m: MediaCandidate = env.decode()?;
            let signal = MediaSignal::Candidate {
                candidate: m.candidate,
                sdp_mline_index: m.sdp_mline_index,
                sdp_mid: m.sdp_mid,
            };
            (m.room_id, m.from_client_id, signal)
        }
        MediaMethod::Bye => {
            let m: MediaBye = env.decode()?;
            (m.room_id, m.from_client_id, MediaSignal::Bye)
        }
        MediaMethod::Quality => {
            let m: MediaQuality = env.decode()?;
            let layer = m.layer().map_err(|problem| WireError::Field {
                field: "sim".into(),
                problem,
            })?;
            (m.room_id, m.from_client_id, MediaSignal::Quality { layer })
        }
    };
    Ok(SignalingEvent::Media {
        room_id: RoomId(room_id),
        from: ClientId(from.ok_or_else(|| missing("fromClientId"))?),
        signal,
    })
}
