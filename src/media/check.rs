//! Checks on everything a room member controls in media signaling, before any of it reaches
//! GStreamer. `webrtcbin` and libnice trust their input: a payload type above 127, a clock rate
//! of 0, a BUNDLE group naming a section that does not exist or a candidate with a NUL byte can
//! abort or crash the process. So the offer, answer or candidate is read here first, with the
//! grammar of RFC 8866 (SDP), RFC 8839 (ICE) and RFC 8122 (fingerprints) and limits no sane
//! peer comes near; anything else is refused with a reason that names the line.

use std::collections::HashSet;
use std::net::IpAddr;

use thiserror::Error;

/// Why remote signaling was refused. The text names the offending line or field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(msg: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(msg.into()))
}

/// Largest SDP accepted (a browser's offer with audio, video and data is about 6 KiB).
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Longest SDP line.
pub const MAX_LINE: usize = 2048;
/// Most media sections in one description.
pub const MAX_SECTIONS: usize = 8;
/// Most formats on one m-line.
pub const MAX_FORMATS: usize = 64;
/// Most `a=ssrc` lines in one section.
pub const MAX_SSRC_LINES: usize = 64;
/// Longest candidate.
pub const MAX_CANDIDATE: usize = 512;

/// An offer or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
}

/// What a checked description holds that later checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// The `a=mid` of each media section, in order (`None` where a section has none).
    pub mids: Vec<Option<String>>,
    /// Each media section's kind (`audio`, `video`, `application`) and whether it is
    /// rejected (port 0 without `a=bundle-only`), in order.
    pub kinds: Vec<(String, bool)>,
}

/// Before GStreamer 1.22 the streams a session sends are tied to media sections by the order
/// their webrtcbin pads were made, not by kind, and a pad left without a section of its own
/// aborts the process (webrtcbin 1.18 asserts). So the sections must hold, in order, the kinds
/// of the streams the session sends (`sends`: `audio` and/or `video`, as its pads were made),
/// none rejected. Later sections are free.
pub fn sections_fit_streams(checked: &Checked, sends: &[&str]) -> Result<(), Refusal> {
    for (i, want) in sends.iter().enumerate() {
        match checked.kinds.get(i) {
            Some((kind, false)) if kind == want => {}
            Some((kind, rejected)) => {
                return refuse(format!(
                    "media section {} is {kind}{}, but this GStreamer (before 1.22) sends {want} \
                     there: it takes {} first, in that order, none rejected",
                    i + 1,
                    if *rejected { " (rejected)" } else { "" },
                    sends.join(" then ")
                ));
            }
            None => {
                return refuse(format!(
                    "the description has {} media section(s); this GStreamer (before 1.22) needs \
                     {} first, in that order",
                    checked.kinds.len(),
                    sends.join(" then ")
                ));
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Section {
    kind: String,
    line: usize,
    rtp: bool,
    formats: Vec<u8>,
    mapped: HashSet<u8>,
    mid: Option<String>,
    directions: usize,
    ssrcs: usize,
    setup: Option<String>,
    ice: (bool, bool),
    fingerprint: bool,
    port_zero: bool,
    bundle_only: bool,
}

struct Reader {
    kind: Kind,
    session_ice: (bool, bool),
    session_fingerprint: bool,
    session_setup: Option<String>,
    bundles: Vec<(usize, Vec<String>)>,
    sections: Vec<Section>,
}

/// Checks a remote offer or answer. Returns what later checks need, or why it was refused.
pub fn description(sdp: &str, kind: Kind) -> Result<Checked, Refusal> {
    if sdp.len() > MAX_SDP_BYTES {
        return refuse(format!(
            "the SDP is {} bytes (at most {MAX_SDP_BYTES})",
            sdp.len()
        ));
    }
    let mut r = Reader {
        kind,
        session_ice: (false, false),
        session_fingerprint: false,
        session_setup: None,
        bundles: Vec::new(),
        sections: Vec::new(),
    };
    let mut seen_version = false;
    for (i, raw) in sdp.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            return refuse(format!(
                "SDP line {n} is {} bytes long (at most {MAX_LINE})",
                line.len()
            ));
        }
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return refuse(format!("SDP line {n} holds a control character ({:?})", c));
        }
        if !seen_version {
            if line != "v=0" {
                return refuse("the SDP does not start with v=0");
            }
            seen_version = true;
            continue;
        }
        r.line(n, line)
            .map_err(|Refusal(why)| Refusal(format!("SDP line {n} ({}): {why}", clip(line))))?;
    }
    if !seen_version {
        return refuse("the SDP does not start with v=0");
    }
    r.finish()
}

fn clip(line: &str) -> String {
    let mut s: String = line.chars().take(60).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

impl Reader {
    fn line(&mut self, n: usize, line: &str) -> Result<(), Refusal> {
        let Some((key, value)) = line.split_once('=') else {
            return refuse("not a type=value line");
        };
        match key {
            "m" => self.media(n, value),
            "a" => self.attribute(value),
            "c" => connection(value),
            "b" => bandwidth(value),
            "o" | "s" | "t" | "i" | "u" | "e" | "p" | "r" | "z" | "k" => Ok(()),
            "v" => refuse("a second version line"),
            _ => refuse(format!("unknown line type {key:?}")),
        }
    }

    fn media(&mut self, n: usize, value: &str) -> Result<(), Refusal> {
        if self.sections.len() == MAX_SECTIONS {
            return refuse(format!("more than {MAX_SECTIONS} media sections"));
        }
        let parts: Vec<&str> = value.split(' ').collect();
        let [kind, port, proto, fmts @ ..] = parts.as_slice() else {
            return refuse("an m-line needs media, port, protocol and formats");
        };
        if !matches!(*kind, "audio" | "video" | "application") {
            return refuse(format!(
                "media type {kind:?} is not audio, video or application"
            ));
        }
        let port = port.split('/').next().unwrap_or("");
        let port_zero = number::<u16>(port, "the port")? == 0;
        let rtp = proto.contains("RTP/");
        if !rtp && !proto.contains("SCTP") {
            return refuse(format!("protocol {proto:?} is neither RTP nor SCTP"));
        }
        if fmts.is_empty() || fmts.len() > MAX_FORMATS {
            return refuse(format!("{} formats (1 to {MAX_FORMATS})", fmts.len()));
        }
        let mut formats = Vec::new();
        if rtp {
            for f in fmts {
                formats.push(payload_type(f)?);
            }
        }
        self.sections.push(Section {
            kind: kind.to_string(),
            line: n,
            rtp,
            formats,
            port_zero,
            ..Section::default()
        });
        Ok(())
    }

    fn attribute(&mut self, value: &str) -> Result<(), Refusal> {
        let (name, arg) = value.split_once(':').unwrap_or((value, ""));
        if name == "setup" {
            let role = Some(setup(arg, self.kind)?);
            match self.sections.last_mut() {
                Some(s) => s.setup = role,
                None => self.session_setup = role,
            }
            return Ok(());
        }
        if let Some(s) = self.sections.last_mut() {
            return section_attribute(s, name, arg);
        }
        match name {
            "group" => {
                let mut parts = arg.split(' ');
                if parts.next() == Some("BUNDLE") {
                    let mids: Vec<String> = parts.map(str::to_string).collect();
                    self.bundles.push((0, mids));
                }
                Ok(())
            }
            "ice-ufrag" => ice_ufrag(arg).map(|()| self.session_ice.0 = true),
            "ice-pwd" => ice_pwd(arg).map(|()| self.session_ice.1 = true),
            "fingerprint" => fingerprint(arg).map(|()| self.session_fingerprint = true),
            "extmap" => extmap(arg),
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<Checked, Refusal> {
        if self.sections.is_empty() {
            return refuse("the SDP has no media sections");
        }
        let mut mids = HashSet::new();
        for s in &self.sections {
            let at = format!("the {} section at line {}", s.kind, s.line);
            if let Some(mid) = &s.mid
                && !mids.insert(mid.clone())
            {
                return refuse(format!("{at} repeats a=mid:{mid}"));
            }
            if s.directions > 1 {
                return refuse(format!("{at} has more than one direction attribute"));
            }
            if !(s.ice.0 || self.session_ice.0) || !(s.ice.1 || self.session_ice.1) {
                return refuse(format!(
                    "{at} has no ICE credentials (a=ice-ufrag, a=ice-pwd)"
                ));
            }
            if !(s.fingerprint || self.session_fingerprint) {
                return refuse(format!("{at} has no DTLS a=fingerprint"));
            }
            if s.setup.is_none() && self.session_setup.is_none() {
                return refuse(format!("{at} has no a=setup"));
            }
            if let Some(pt) = s.mapped.iter().find(|pt| !s.formats.contains(pt)) {
                return refuse(format!(
                    "{at} maps payload type {pt}, which its m-line does not list"
                ));
            }
        }
        for (_, group) in &self.bundles {
            if group.is_empty() {
                return refuse("a=group:BUNDLE names no section");
            }
            let mut seen = HashSet::new();
            for mid in group {
                if !mids.contains(mid) {
                    return refuse(format!(
                        "a=group:BUNDLE names {mid:?}, which no section has"
                    ));
                }
                if !seen.insert(mid) {
                    return refuse(format!("a=group:BUNDLE names {mid:?} twice"));
                }
            }
        }
        if !self.sections.iter().any(|s| s.rtp && !s.formats.is_empty()) {
            return refuse("the SDP has no audio or video section");
        }
        Ok(Checked {
            kinds: self
                .sections
                .iter()
                .map(|s| (s.kind.clone(), s.port_zero && !s.bundle_only))
                .collect(),
            mids: self.sections.into_iter().map(|s| s.mid).collect(),
        })
    }
}

fn section_attribute(s: &mut Section, name: &str, arg: &str) -> Result<(), Refusal> {
    match name {
        "rtpmap" => {
            let pt = rtpmap(arg)?;
            if !s.mapped.insert(pt) {
                return refuse(format!("payload type {pt} is mapped twice"));
            }
            Ok(())
        }
        "fmtp" | "rtcp-fb" => {
            let (pt, rest) = arg.split_once(' ').unwrap_or((arg, ""));
            if pt != "*" {
                payload_type(pt)?;
            }
            if rest.is_empty() {
                return refuse(format!("a={name} without parameters"));
            }
            if name == "fmtp" {
                fmtp(rest)?;
            }
            Ok(())
        }
        "mid" => {
            if arg.is_empty() || arg.len() > 32 || !arg.chars().all(token_char) {
                return refuse("a=mid must be 1 to 32 token characters");
            }
            if s.mid.replace(arg.to_string()).is_some() {
                return refuse("a second a=mid in one section");
            }
            Ok(())
        }
        "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
            s.directions += 1;
            Ok(())
        }
        "bundle-only" => {
            s.bundle_only = true;
            Ok(())
        }
        "ssrc" => {
            s.ssrcs += 1;
            if s.ssrcs > MAX_SSRC_LINES {
                return refuse(format!("more than {MAX_SSRC_LINES} a=ssrc lines"));
            }
            let id = arg.split(' ').next().unwrap_or("");
            number::<u32>(id, "the SSRC").map(|_| ())
        }
        "ssrc-group" => {
            let mut parts = arg.split(' ');
            let _semantics = parts.next();
            let ssrcs: Vec<&str> = parts.collect();
            if ssrcs.is_empty() || ssrcs.len() > 8 {
                return refuse("a=ssrc-group needs 1 to 8 SSRCs");
            }
            for id in ssrcs {
                number::<u32>(id, "the SSRC")?;
            }
            Ok(())
        }
        "extmap" => extmap(arg),
        "ice-ufrag" => ice_ufrag(arg).map(|()| s.ice.0 = true),
        "ice-pwd" => ice_pwd(arg).map(|()| s.ice.1 = true),
        "fingerprint" => fingerprint(arg).map(|()| s.fingerprint = true),
        "sctp-port" => number::<u16>(arg, "the SCTP port").and_then(|p| {
            if p == 0 {
                refuse("SCTP port 0")
            } else {
                Ok(())
            }
        }),
        "max-message-size" => number::<u64>(arg, "the maximum message size").map(|_| ()),
        "candidate" => candidate_fields(arg).map(|_| ()),
        _ => Ok(()),
    }
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`{|}~".contains(c)
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, Refusal> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return refuse(format!("{what} {:?} is not a number", clip(s)));
    }
    s.parse::<T>()
        .map_err(|_| Refusal(format!("{what} {s} is out of range")))
}

fn payload_type(s: &str) -> Result<u8, Refusal> {
    let pt: u8 = number(s, "the payload type")?;
    if pt > 127 {
        return refuse(format!("payload type {pt} is above 127"));
    }
    Ok(pt)
}

fn rtpmap(arg: &str) -> Result<u8, Refusal> {
    let Some((pt, encoding)) = arg.split_once(' ') else {
        return refuse("a=rtpmap needs a payload type and an encoding");
    };
    let pt = payload_type(pt)?;
    let mut parts = encoding.split('/');
    let name = parts.next().unwrap_or("");
    if name.is_empty() || name.len() > 32 || !name.chars().all(token_char) {
        return refuse(format!("encoding name {:?}", clip(name)));
    }
    let clock: u32 = number(parts.next().unwrap_or(""), "the clock rate")?;
    if !(1000..=1_000_000).contains(&clock) {
        return refuse(format!("clock rate {clock} (1000 to 1000000)"));
    }
    if let Some(channels) = parts.next() {
        let ch: u8 = number(channels, "the channel count")?;
        if !(1..=8).contains(&ch) {
            return refuse(format!("{ch} channels (1 to 8)"));
        }
    }
    if parts.next().is_some() {
        return refuse("a=rtpmap has too many parts");
    }
    Ok(pt)
}

/// Format parameters: `key=value` pairs whose numbers (where they are numbers) stay in range.
fn fmtp(params: &str) -> Result<(), Refusal> {
    for kv in params.split(';') {
        let kv = kv.trim();
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
            number::<u32>(v, &format!("fmtp parameter {k}"))?;
        }
        if k.eq_ignore_ascii_case("profile-level-id")
            && (v.len() != 6 || !v.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return refuse(format!(
                "profile-level-id {:?} is not 6 hex digits",
                clip(v)
            ));
        }
        if k.eq_ignore_ascii_case("packetization-mode") && !matches!(v, "0" | "1" | "2") {
            return refuse(format!("packetization-mode {:?}", clip(v)));
        }
    }
    Ok(())
}

fn extmap(arg: &str) -> Result<(), Refusal> {
    let id = arg.split([' ', '/']).next().unwrap_or("");
    let id: u16 = number(id, "the header extension id")?;
    if !(1..=255).contains(&id) {
        return refuse(format!("header extension id {id} (1 to 255)"));
    }
    let uri = arg.split(' ').nth(1).unwrap_or("");
    if uri.is_empty() {
        return refuse("a=extmap without a URI");
    }
    Ok(())
}

fn ice_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

fn ice_ufrag(s: &str) -> Result<(), Refusal> {
    if !(4..=256).contains(&s.len()) || !ice_chars(s) {
        return refuse("a=ice-ufrag must be 4 to 256 ICE characters");
    }
    Ok(())
}

fn ice_pwd(s: &str) -> Result<(), Refusal> {
    if !(22..=256).contains(&s.len()) || !ice_chars(s) {
        return refuse("a=ice-pwd must be 22 to 256 ICE characters");
    }
    Ok(())
}

fn fingerprint(arg: &str) -> Result<(), Refusal> {
    let Some((hash, hex)) = arg.split_once(' ') else {
        return refuse("a=fingerprint needs a hash function and a value");
    };
    let bytes = match hash.to_ascii_lowercase().as_str() {
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        other => return refuse(format!("fingerprint hash {:?} is not a SHA", clip(other))),
    };
    let ok = hex.split(':').count() == bytes
        && hex
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return refuse(format!("a {hash} fingerprint must be {bytes} hex bytes"));
    }
    Ok(())
}

fn setup(arg: &str, kind: Kind) -> Result<String, Refusal> {
    let ok = match kind {
        Kind::Offer => matches!(arg, "actpass" | "active" | "passive"),
        Kind::Answer => matches!(arg, "active" | "passive"),
    };
    if !ok {
        return refuse(format!("a=setup:{} in an {kind:?}", clip(arg)).to_lowercase());
    }
    Ok(arg.to_string())
}

fn connection(value: &str) -> Result<(), Refusal> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [net, family, addr] = parts.as_slice() else {
        return refuse("c= needs network, address type and address");
    };
    let addr = addr.split('/').next().unwrap_or("");
    let address_ok = match addr.parse::<IpAddr>() {
        Ok(ip) => ip.is_ipv4() == (*family == "IP4"),
        Err(_) => host_name(addr),
    };
    if *net != "IN" || !matches!(*family, "IP4" | "IP6") || !address_ok {
        return refuse("c= must be IN IP4 or IN IP6 with an address of that family or a name");
    }
    Ok(())
}

fn bandwidth(value: &str) -> Result<(), Refusal> {
    let Some((kind, v)) = value.split_once(':') else {
        return refuse("b= needs a type and a value");
    };
    if !kind.chars().all(token_char) {
        return refuse("the bandwidth type is not a token");
    }
    number::<u32>(v, "the bandwidth").map(|_| ())
}

fn host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// A trickled candidate, checked: `Ok(Some(line))` to use it (without any `a=` prefix),
/// `Ok(None)` for an end-of-candidates or a browser's mDNS name (`….local`), which is not
/// resolved: the connection then forms through the peer's other candidates.
pub fn candidate(
    candidate: &str,
    mline: u32,
    mid: Option<&str>,
    remote: Option<&Checked>,
) -> Result<Option<String>, Refusal> {
    let c = candidate.strip_prefix("a=").unwrap_or(candidate);
    if c.len() > MAX_CANDIDATE {
        return refuse(format!(
            "a candidate of {} bytes (at most {MAX_CANDIDATE})",
            c.len()
        ));
    }
    if c.chars().any(|c| c.is_control()) {
        return refuse("a candidate holds a control character");
    }
    if c.is_empty() {
        return Ok(None);
    }
    let Some(fields) = c.strip_prefix("candidate:") else {
        return refuse("a candidate must start with \"candidate:\"");
    };
    let mdns = candidate_fields(fields)
        .map_err(|Refusal(why)| Refusal(format!("candidate {:?}: {why}", clip(c))))?;
    let sections = remote.map_or(MAX_SECTIONS, |r| r.mids.len());
    if mline as usize >= sections {
        return refuse(format!(
            "candidate for m-line {mline}, but the SDP has {sections}"
        ));
    }
    if let (Some(mid), Some(r)) = (mid, remote)
        && !mid.is_empty()
        && r.mids.get(mline as usize).and_then(|m| m.as_deref()) != Some(mid)
    {
        return refuse(format!(
            "candidate for mid {:?}, which m-line {mline} does not have",
            clip(mid)
        ));
    }
    Ok((!mdns).then(|| c.to_string()))
}

/// `foundation component transport priority address port typ type *(name value)` (RFC 8839).
/// Returns whether the address is an mDNS name.
fn candidate_fields(fields: &str) -> Result<bool, Refusal> {
    let f: Vec<&str> = fields.split(' ').collect();
    if f.len() < 8 || !f.len().is_multiple_of(2) || f.len() > 24 {
        return refuse("wrong number of fields");
    }
    if f[0].is_empty() || f[0].len() > 32 || !ice_chars(f[0]) {
        return refuse("the foundation must be 1 to 32 ICE characters");
    }
    let component: u16 = number(f[1], "the component")?;
    if !(1..=2).contains(&component) {
        return refuse(format!("component {component} (1 or 2)"));
    }
    if !f[2].eq_ignore_ascii_case("udp") && !f[2].eq_ignore_ascii_case("tcp") {
        return refuse(format!("transport {:?} is not UDP or TCP", clip(f[2])));
    }
    number::<u32>(f[3], "the priority")?;
    let mdns = f[4].len() > 6 && f[4].ends_with(".local") && host_name(f[4]);
    if f[4].parse::<IpAddr>().is_err() && !mdns {
        return refuse(format!(
            "address {:?} is not an IP address or an mDNS name",
            clip(f[4])
        ));
    }
    number::<u16>(f[5], "the port")?;
    if f[6] != "typ" || !matches!(f[7], "host" | "srflx" | "prflx" | "relay") {
        return refuse("\"typ\" must be followed by host, srflx, prflx or relay");
    }
    for pair in f[8..].chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        match name {
            "raddr" if value.parse::<IpAddr>().is_err() => {
                return refuse("raddr is not an IP address");
            }
            "rport" => {
                number::<u16>(value, "rport")?;
            }
            "generation" | "network-id" | "network-cost" => {
                number::<u32>(value, name)?;
            }
            "tcptype" if !matches!(value, "active" | "passive" | "so") => {
                return refuse("tcptype must be active, passive or so");
            }
            _ if name.is_empty() || !name.chars().all(token_char) || value.is_empty() => {
                return refuse(format!("extension {:?}", clip(name)));
            }
            _ => {}
        }
    }
    Ok(mdns)
}

#[cfg(test)]
mod tests;
