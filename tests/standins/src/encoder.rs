//! What the stand-in encoders share: x264enc inside a bin, the bin's pads ghosting the chain's
//! ends, and a way to force an IDR from inside whatever the outside asks for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

/// `front… ! x264enc ! capsfilter` in a bin.
pub struct Core {
    pub x264: gst::Element,
    pub out: gst::Element,
    /// IDRs forced from inside (a control, a signal, a reconfiguration).
    pub forced: Arc<AtomicU64>,
}

impl Core {
    /// Builds the chain in `bin` and ghosts its ends through the bin's `sink` and `src`
    /// templates. x264enc runs as a real-time hardware encoder would: no B frames, no
    /// look-ahead, a key frame every `gop` frames.
    pub fn build(bin: &gst::Bin, front: Vec<gst::Element>, out_caps: gst::Caps, gop: u32) -> Core {
        let x264 = element("x264enc");
        x264.set_property_from_str("tune", "zerolatency");
        x264.set_property_from_str("speed-preset", "ultrafast");
        x264.set_property("bframes", 0u32);
        x264.set_property("key-int-max", gop);
        let out = element("capsfilter");
        out.set_property("caps", &out_caps);
        let mut chain = front;
        chain.push(x264.clone());
        chain.push(out.clone());
        fill(bin, &chain);
        Core {
            x264,
            out,
            forced: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Makes the next frame an IDR with its parameter sets, as the hardware does when its
    /// key-frame control or signal is used.
    pub fn force_idr(&self) {
        self.forced.fetch_add(1, Ordering::Relaxed);
        if let Some(pad) = self.x264.static_pad("src") {
            pad.send_event(
                gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .build(),
            );
        }
    }
}

/// Adds `chain` to `bin`, links it, and ghosts its ends through the bin's `sink` template
/// (where it has one: a source has not) and `src` template.
pub fn fill(bin: &gst::Bin, chain: &[gst::Element]) {
    bin.add_many(chain).expect("stand-in chain");
    gst::Element::link_many(chain).expect("stand-in chain links");
    let class = bin.element_class();
    let ends = [
        ("sink", chain.first().and_then(|e| e.static_pad("sink"))),
        ("src", chain.last().and_then(|e| e.static_pad("src"))),
    ];
    for (template, pad) in ends {
        let (Some(templ), Some(pad)) = (class.pad_template(template), pad) else {
            continue;
        };
        let ghost = gst::GhostPad::builder_from_template_with_target(&templ, &pad)
            .expect("ghost pad")
            .build();
        bin.add_pad(&ghost).expect("ghost pad added");
    }
}

/// An element by factory name (those the stand-ins are built of exist wherever the tests run).
pub fn element(factory: &str) -> gst::Element {
    gst::ElementFactory::make(factory)
        .build()
        .unwrap_or_else(|_| panic!("the stand-ins need {factory}"))
}

/// Always-pads `sink` (none for a source) and `src`.
pub fn templates(sink: Option<&gst::Caps>, src: &gst::Caps) -> Vec<gst::PadTemplate> {
    let pad = |name, dir, caps| {
        gst::PadTemplate::new(name, dir, gst::PadPresence::Always, caps).expect("pad template")
    };
    sink.map(|c| pad("sink", gst::PadDirection::Sink, c))
        .into_iter()
        .chain([pad("src", gst::PadDirection::Src, src)])
        .collect()
}

/// The first software H.264 decoder there is.
pub fn software_decoder() -> gst::Element {
    ["avdec_h264", "openh264dec"]
        .iter()
        .find_map(|f| gst::ElementFactory::make(f).build().ok())
        .expect("a software H.264 decoder for the stand-ins")
}

/// Force-key-unit requests from downstream end inside the element while `ignored()` says so:
/// it has no handler for them. (Inside, at the end of its chain: whatever watches the element's
/// own pads sees them, as with the real element.)
pub fn ignore_force_key_unit(core: &Core, ignored: impl Fn() -> bool + Send + Sync + 'static) {
    let Some(src) = core.out.static_pad("src") else {
        return;
    };
    src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        if info
            .event()
            .is_some_and(|e| gstreamer_video::ForceKeyUnitEvent::is(e))
            && ignored()
        {
            // Taken and handled here (returning Drop for an event unrefs it twice on 1.22).
            info.data.take();
            gst::PadProbeReturn::Handled
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}

/// Width, height and frames per second of raw video caps.
pub fn size_of(caps: &gst::CapsRef) -> Option<(u32, u32, u32)> {
    let s = caps.structure(0)?;
    let w = s.get::<i32>("width").ok()?;
    let h = s.get::<i32>("height").ok()?;
    let fps = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .map(|f| {
            if f.denom() > 0 {
                (f.numer() + f.denom() - 1) / f.denom()
            } else {
                0
            }
        })
        .unwrap_or(0);
    Some((w.max(0) as u32, h.max(0) as u32, fps.max(0) as u32))
}

/// Declares a stand-in that is a bin of other elements and nothing more (no properties of its
/// own): its GObject type, metadata, pad templates, and `build`, which fills the new bin.
macro_rules! bin_standin {
    (
        $module:ident, $wrapper:ident, $type_name:literal,
        metadata: ($long:expr, $klass:expr, $description:expr),
        templates: $templates:expr,
        build: $build:expr $(,)?
    ) => {
        glib::wrapper! {
            pub struct $wrapper(ObjectSubclass<$module::Imp>)
                @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
        }

        mod $module {
            use super::*;

            #[derive(Default)]
            pub struct Imp;

            #[glib::object_subclass]
            impl ObjectSubclass for Imp {
                const NAME: &'static str = $type_name;
                type Type = super::$wrapper;
                type ParentType = gst::Bin;
            }

            impl ObjectImpl for Imp {
                fn constructed(&self) {
                    self.parent_constructed();
                    let build: fn(&gst::Bin) = $build;
                    build(self.obj().upcast_ref());
                }
            }

            impl GstObjectImpl for Imp {}

            impl ElementImpl for Imp {
                fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                    static META: std::sync::LazyLock<gst::subclass::ElementMetadata> =
                        std::sync::LazyLock::new(|| {
                            gst::subclass::ElementMetadata::new(
                                $long,
                                $klass,
                                $description,
                                "roomagent",
                            )
                        });
                    Some(&*META)
                }

                fn pad_templates() -> &'static [gst::PadTemplate] {
                    static T: std::sync::LazyLock<Vec<gst::PadTemplate>> =
                        std::sync::LazyLock::new(|| $templates);
                    T.as_ref()
                }
            }

            impl BinImpl for Imp {}
        }
    };
}
pub(crate) use bin_standin;
