//! Reading what a remote offer proposes, so the answering side can send with the payload types
//! the offer assigned.

/// One codec of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Payload type.
    pub pt: u8,
    /// Encoding name, upper case (`H264`, `VP8`, `OPUS`).
    pub name: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// The `a=fmtp` parameters, verbatim.
    pub fmtp: Option<String>,
}

/// One m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `audio` or `video`.
    pub kind: String,
    /// Its codecs in offer order.
    pub codecs: Vec<Codec>,
}

/// The m-lines of an SDP.
pub fn sections(sdp: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            let kind = m.split_whitespace().next().unwrap_or("").to_string();
            out.push(Section {
                kind,
                codecs: Vec::new(),
            });
        } else if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
            let Some(section) = out.last_mut() else {
                continue;
            };
            let (pt, rest) = rtpmap.split_once(' ').unwrap_or((rtpmap, ""));
            let mut parts = rest.split('/');
            let (Ok(pt), Some(name)) = (pt.parse::<u8>(), parts.next()) else {
                continue;
            };
            let clock_rate = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            section.codecs.push(Codec {
                pt,
                name: name.to_ascii_uppercase(),
                clock_rate,
                fmtp: None,
            });
        } else if let Some(fmtp) = line.strip_prefix("a=fmtp:") {
            let Some(section) = out.last_mut() else {
                continue;
            };
            let (pt, params) = fmtp.split_once(' ').unwrap_or((fmtp, ""));
            if let Ok(pt) = pt.parse::<u8>()
                && let Some(c) = section.codecs.iter_mut().find(|c| c.pt == pt)
            {
                c.fmtp = Some(params.to_string());
            }
        }
    }
    out
}

fn fmtp_value<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The best H.264 payload type for sending constrained-baseline with packetization-mode 1.
pub fn pick_h264(codecs: &[Codec]) -> Option<u8> {
    let candidates: Vec<&Codec> = codecs
        .iter()
        .filter(|c| c.name == "H264")
        .filter(|c| {
            c.fmtp
                .as_deref()
                .and_then(|f| fmtp_value(f, "packetization-mode"))
                == Some("1")
        })
        .collect();
    let baseline = |c: &&Codec| {
        c.fmtp
            .as_deref()
            .and_then(|f| fmtp_value(f, "profile-level-id"))
            .is_some_and(|p| {
                let p = p.to_ascii_lowercase();
                p.starts_with("42e0") || p.starts_with("42c0") || p.starts_with("4200")
            })
    };
    candidates
        .iter()
        .find(|c| baseline(c))
        .or(candidates.first())
        .map(|c| c.pt)
}

/// A codec's payload type by name.
pub fn pick(codecs: &[Codec], name: &str) -> Option<u8> {
    codecs.iter().find(|c| c.name == name).map(|c| c.pt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 102 106\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\na=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

    #[test]
    fn offered_payload_types_are_found() {
        let s = sections(CHROME);
        assert_eq!(s.len(), 2);
        assert_eq!(pick(&s[0].codecs, "OPUS"), Some(111));
        assert_eq!(pick(&s[1].codecs, "VP8"), Some(96));
        assert_eq!(
            pick_h264(&s[1].codecs),
            Some(106),
            "packetization-mode=1 baseline"
        );
    }
}

/// Rewrites what browsers do not accept in webrtcbin's SDP:
/// * `a=bundle-only` m-lines with port 0 (Chromium does not implement bundle-only and
///   rejects the section): they get port 9 and stay in the BUNDLE group;
/// * a video m-line that lists only what we send: `extra_video` codecs are added so the peer
///   may send them to us (e.g. VP8 from a browser that prefers it).
pub fn for_browsers(sdp: &str, extra_video: &[(u8, &str)]) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out: Vec<String> = Vec::new();
    let mut in_video = false;
    let mut added_attrs = false;
    let mut video_pts: Vec<String> = Vec::new();
    let lines: Vec<&str> = sdp.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(m) = line.strip_prefix("m=") {
            in_video = m.starts_with("video ");
            added_attrs = false;
            let mut parts: Vec<String> = m.split(' ').map(str::to_string).collect();
            let bundle_only = lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with("m="))
                .any(|l| *l == "a=bundle-only");
            if bundle_only && parts.get(1).map(String::as_str) == Some("0") {
                parts[1] = "9".into();
            }
            if in_video {
                video_pts = parts[3..].to_vec();
                for (pt, _) in extra_video {
                    if !video_pts.contains(&pt.to_string()) {
                        parts.push(pt.to_string());
                    }
                }
            }
            out.push(format!("m={}", parts.join(" ")));
        } else if line == "a=bundle-only" {
            // dropped: see above
        } else if in_video && !added_attrs && line.starts_with("a=rtpmap:") {
            out.push(line.to_string());
            // Right after the first rtpmap of the section, describe the added codecs.
            for (pt, name) in extra_video {
                if video_pts.contains(&pt.to_string()) {
                    continue;
                }
                out.push(format!("a=rtpmap:{pt} {name}/90000"));
                for fb in ["nack", "nack pli", "ccm fir"] {
                    out.push(format!("a=rtcp-fb:{pt} {fb}"));
                }
            }
            added_attrs = true;
        } else {
            out.push(line.to_string());
        }
        i += 1;
    }
    let mut s = out.join(eol);
    s.push_str(eol);
    s
}

#[cfg(test)]
mod munge_tests {
    use super::*;

    const WEBRTCBIN: &str = "v=0\r\na=group:BUNDLE audio0 video1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 OPUS/48000\r\na=mid:audio0\r\nm=video 0 UDP/TLS/RTP/SAVPF 102\r\na=bundle-only\r\na=rtcp-mux\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\na=mid:video1\r\n";

    #[test]
    fn bundle_only_sections_get_a_port_and_vp8_is_offered_for_receiving() {
        let s = for_browsers(WEBRTCBIN, &[(96, "VP8")]);
        assert!(s.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\n"), "{s}");
        assert!(!s.contains("bundle-only"), "{s}");
        assert!(
            s.contains("a=rtpmap:102 H264/90000\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n"),
            "{s}"
        );
        assert!(
            s.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
            "audio untouched: {s}"
        );
        let v = sections(&s);
        assert_eq!(pick(&v[1].codecs, "VP8"), Some(96));
    }

    #[test]
    fn nothing_is_added_twice() {
        let once = for_browsers(WEBRTCBIN, &[(96, "VP8")]);
        assert_eq!(for_browsers(&once, &[(96, "VP8")]), once);
    }
}
