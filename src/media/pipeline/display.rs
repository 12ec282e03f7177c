//! The display: remote participants' video composed into a grid over a black background.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::Build;
use super::elements::{capsfilter, make, sink_element};
use crate::core::ClientId;
use crate::media::MediaError;

/// The grid of remote video tiles on the display.
#[derive(Debug, Default)]
pub struct Layout {
    tiles: Vec<(ClientId, gst::Pad)>,
    width: i32,
    height: i32,
}

impl Layout {
    /// An empty grid over a display of this size.
    pub(super) fn sized(width: i32, height: i32) -> Layout {
        Layout {
            tiles: Vec::new(),
            width,
            height,
        }
    }

    /// Adds a participant's tile and re-arranges the grid.
    pub fn add(&mut self, peer: ClientId, pad: gst::Pad) {
        self.tiles.push((peer, pad));
        self.arrange();
    }

    /// Removes a tile (by pad) and re-arranges the grid.
    pub fn remove(&mut self, pad: &gst::Pad) {
        self.tiles.retain(|(_, p)| p != pad);
        self.arrange();
    }

    /// How many tiles are shown.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether no tile is shown.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    fn arrange(&self) {
        let n = self.tiles.len() as i32;
        if n == 0 {
            return;
        }
        let cols = (n as f64).sqrt().ceil() as i32;
        let rows = (n + cols - 1) / cols;
        let (w, h) = (self.width / cols, self.height / rows);
        for (i, (_, pad)) in self.tiles.iter().enumerate() {
            let i = i as i32;
            pad.set_property("xpos", (i % cols) * w);
            pad.set_property("ypos", (i / cols) * h);
            pad.set_property("width", w);
            pad.set_property("height", h);
            pad.set_property("zorder", 1u32 + i as u32);
        }
    }
}

impl Build<'_> {
    /// black background ─ compositor ─ display size ─ convert ─ queue ─ display sink. Returns
    /// the compositor, which each session's decoded video joins as a tile. The background is a
    /// live source, so the display runs (black) before anyone's video arrives.
    pub(super) fn display(&mut self) -> Result<gst::Element, MediaError> {
        let o = self.o;
        let compositor = make("compositor")?;
        compositor.set_property_from_str("background", "black");
        let bg = make("videotestsrc")?;
        bg.set_property("is-live", true);
        bg.set_property_from_str("pattern", "black");
        let display_caps = format!(
            "video/x-raw,width={},height={},framerate={}/1",
            o.display_width, o.display_height, o.framerate
        );
        let bg_caps = capsfilter(&display_caps)?;
        let out_caps = capsfilter(&display_caps)?;
        let vconv = make("videoconvert")?;
        let vq = make("queue")?;
        vq.set_property("name", "display-queue");
        let display = sink_element(&o.display, true)?;
        self.sources.push(bg.clone());
        self.add_linked(&[
            bg,
            bg_caps,
            compositor.clone(),
            out_caps,
            vconv,
            vq,
            display,
        ])?;
        Ok(compositor)
    }
}
