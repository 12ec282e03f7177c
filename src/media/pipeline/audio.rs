//! The sound: the microphone encoded once for every session, and the participants mixed to the
//! speaker. With echo cancellation, `webrtcdsp` on the microphone side cancels what
//! `webrtcechoprobe` on the speaker side reports was played.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::Build;
use super::elements::{capsfilter, device_source, make, make_stage, sink_element};
use crate::media::MediaError;

/// The microphone side.
pub(super) struct Microphone {
    /// Mutes the microphone (silence is still encoded and sent).
    pub volume: gst::Element,
    /// Encoded Opus for the sessions' payloaders.
    pub tee: gst::Element,
}

/// The speaker side.
pub(super) struct Speaker {
    /// Each session's decoded audio joins it.
    pub mixer: gst::Element,
    /// The speaker volume.
    pub volume: gst::Element,
}

impl Build<'_> {
    /// Whether echo is cancelled. `auto` cancels unless the profile brings an audio source of
    /// its own (a test profile's) and no microphone was found.
    pub(super) fn echo_cancel(&self) -> bool {
        let real_microphone =
            self.profile.audio_source.is_none() || !self.found.microphones.is_empty();
        self.o.echo_cancellation.resolve(real_microphone)
    }

    /// microphone ─ convert/resample to 48 kHz mono ─ `webrtcdsp` and convert (with echo
    /// cancellation; it suppresses noise too) ─ volume (mute) ─ opusenc (voice, 20 ms frames) ─
    /// tee.
    pub(super) fn microphone(&mut self, echo_cancel: bool) -> Result<Microphone, MediaError> {
        let mic = self.microphone_source()?;
        self.sources.push(mic.clone());
        let mut chain: Vec<gst::Element> = vec![
            mic,
            make("audioconvert")?,
            make("audioresample")?,
            capsfilter("audio/x-raw,format=S16LE,rate=48000,channels=1")?,
        ];
        if echo_cancel {
            let dsp = make("webrtcdsp")?;
            dsp.set_property("echo-cancel", true);
            dsp.set_property("noise-suppression", true);
            chain.push(dsp);
            chain.push(make("audioconvert")?);
        }
        let volume = make("volume")?;
        chain.push(volume.clone());
        let opus = make("opusenc")?;
        opus.set_property("bitrate", (self.o.audio_kbps * 1000) as i32);
        opus.set_property_from_str("audio-type", "voice");
        opus.set_property_from_str("frame-size", "20");
        chain.push(opus);
        let tee = make("tee")?;
        tee.set_property("allow-not-linked", true);
        chain.push(tee.clone());
        self.add_linked(&chain)?;
        Ok(Microphone { volume, tee })
    }

    /// The configured or first microphone found, else the profile's own audio source, else
    /// live silence.
    fn microphone_source(&self) -> Result<gst::Element, MediaError> {
        let audio_source = self.profile.audio_source.as_ref();
        let found = &self.found.microphones;
        if let Some((m, _)) = device_source(&self.o.microphone, found, audio_source, "pulsesrc")? {
            return Ok(m);
        }
        match audio_source {
            Some(stage) => make_stage(stage),
            None => {
                let e = make("audiotestsrc")?;
                e.set_property("is-live", true);
                e.set_property_from_str("wave", "silence");
                Ok(e)
            }
        }
    }

    /// silence ─ audiomixer ─ `webrtcechoprobe` (with echo cancellation) ─ volume ─
    /// convert/resample ─ queue ─ speaker sink. The live silence keeps the mixer (and the echo probe) running while nobody
    /// speaks.
    pub(super) fn speaker(&mut self, echo_cancel: bool) -> Result<Speaker, MediaError> {
        let mixer = make("audiomixer")?;
        let silence = make("audiotestsrc")?;
        silence.set_property("is-live", true);
        silence.set_property_from_str("wave", "silence");
        let silence_caps = capsfilter("audio/x-raw,format=S16LE,rate=48000,channels=2")?;
        self.sources.push(silence.clone());
        let mut chain: Vec<gst::Element> = vec![silence, silence_caps, mixer.clone()];
        if echo_cancel {
            chain.push(make("audioconvert")?);
            chain.push(make("audioresample")?);
            chain.push(make("webrtcechoprobe")?);
        }
        let volume = make("volume")?;
        volume.set_property("volume", self.o.volume as f64 / 100.0);
        chain.push(volume.clone());
        chain.push(make("audioconvert")?);
        chain.push(make("audioresample")?);
        let queue = make("queue")?;
        queue.set_property("name", "speaker-queue");
        chain.push(queue);
        chain.push(sink_element(&self.o.speaker, false)?);
        self.add_linked(&chain)?;
        Ok(Speaker { mixer, volume })
    }
}
