use super::*;

/// An offer as Chromium makes it (audio, video and a data channel; trimmed codec list).
const CHROMIUM: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS 0c5a\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Yx4e\r\na=ice-pwd:g8n0QlRCgn0cBDy1MUeMAfRZ\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0B:43:58:7E:0B:7E:9A:AA:9C:A5:0A:61:C6:35:D9:76:65:2E:8D:7E:3B:8F:D5:A4:A1:A7:47:9B:35:51:2C:C8\r\na=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\na=msid:0c5a 7b1c\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\na=ssrc:1949271950 cname:RkDYAcXbwIBhSUuk\r\na=ssrc:1949271950 msid:0c5a 7b1c\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45 46\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Yx4e\r\na=ice-pwd:g8n0QlRCgn0cBDy1MUeMAfRZ\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0B:43:58:7E:0B:7E:9A:AA:9C:A5:0A:61:C6:35:D9:76:65:2E:8D:7E:3B:8F:D5:A4:A1:A7:47:9B:35:51:2C:C8\r\na=setup:actpass\r\na=mid:1\r\na=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\na=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\na=sendrecv\r\na=msid:0c5a 9d2e\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\na=rtpmap:45 AV1/90000\r\na=fmtp:45 level-idx=5;profile=0;tier=0\r\na=rtpmap:46 rtx/90000\r\na=fmtp:46 apt=45\r\na=ssrc-group:FID 3321281938 1187262183\r\na=ssrc:3321281938 cname:RkDYAcXbwIBhSUuk\r\na=ssrc:1187262183 cname:RkDYAcXbwIBhSUuk\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Yx4e\r\na=ice-pwd:g8n0QlRCgn0cBDy1MUeMAfRZ\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0B:43:58:7E:0B:7E:9A:AA:9C:A5:0A:61:C6:35:D9:76:65:2E:8D:7E:3B:8F:D5:A4:A1:A7:47:9B:35:51:2C:C8\r\na=setup:actpass\r\na=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

/// An offer as Firefox makes it (trimmed).
const FIREFOX: &str = "v=0\r\no=mozilla...THIS_IS_SDPARTA-99.0 4736093447340426347 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 3F:1C:0E:2C:9B:71:26:0E:6A:21:F3:F4:A9:9A:5E:1D:55:0F:EC:6B:4F:46:81:B1:C5:50:91:22:53:4D:B3:1E\r\na=group:BUNDLE 0 1\r\na=ice-options:trickle\r\na=msid-semantic:WMS *\r\nm=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\na=fmtp:101 0-15\r\na=ice-pwd:e1f4d1a3c1b2f5a6d7c8b9a0e1f2d3c4\r\na=ice-ufrag:5a1b9c3d\r\na=mid:0\r\na=msid:{6b4e} {9c2a}\r\na=rtcp-mux\r\na=rtpmap:109 opus/48000/2\r\na=rtpmap:9 G722/8000/1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000/1\r\na=setup:actpass\r\na=ssrc:2655508255 cname:{735484ea-4f6c-4b4e-bf5b-3b1b8b2d7a11}\r\nm=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\na=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\na=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1\r\na=fmtp:120 max-fs=12288;max-fr=60\r\na=fmtp:124 apt=120\r\na=fmtp:121 max-fs=12288;max-fr=60\r\na=fmtp:125 apt=121\r\na=fmtp:127 apt=126\r\na=fmtp:98 apt=97\r\na=ice-pwd:e1f4d1a3c1b2f5a6d7c8b9a0e1f2d3c4\r\na=ice-ufrag:5a1b9c3d\r\na=mid:1\r\na=rtcp-fb:120 nack\r\na=rtcp-fb:120 nack pli\r\na=rtcp-fb:120 ccm fir\r\na=rtcp-fb:120 goog-remb\r\na=rtcp-fb:126 nack\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:120 VP8/90000\r\na=rtpmap:124 rtx/90000\r\na=rtpmap:121 VP9/90000\r\na=rtpmap:125 rtx/90000\r\na=rtpmap:126 H264/90000\r\na=rtpmap:127 rtx/90000\r\na=rtpmap:97 H264/90000\r\na=rtpmap:98 rtx/90000\r\na=setup:actpass\r\na=ssrc:3166404146 cname:{735484ea-4f6c-4b4e-bf5b-3b1b8b2d7a11}\r\n";

fn refused(sdp: &str, kind: Kind) -> String {
    match description(sdp, kind) {
        Err(Refusal(why)) => why,
        Ok(c) => panic!("accepted: {c:?}\n{sdp}"),
    }
}

fn with(line_from: &str, line_to: &str, sdp: &str) -> String {
    assert!(sdp.contains(line_from), "{line_from}");
    sdp.replacen(line_from, line_to, 1)
}

#[test]
fn browsers_offers_pass_with_their_mids() {
    let c = description(CHROMIUM, Kind::Offer).unwrap();
    assert_eq!(
        c.mids,
        vec![Some("0".into()), Some("1".into()), Some("2".into())]
    );
    assert_eq!(description(FIREFOX, Kind::Offer).unwrap().mids.len(), 2);
    let answer = CHROMIUM.replace("a=setup:actpass", "a=setup:active");
    description(&answer, Kind::Answer).unwrap();
}

#[test]
fn values_out_of_range_are_refused_naming_the_line() {
    let cases = [
        (
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:111 opus/0/2",
            "clock rate 0",
        ),
        (
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
            "m=audio 9 UDP/TLS/RTP/SAVPF 300 63",
            "payload type 300 is out of range",
        ),
        (
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
            "m=audio 9 UDP/TLS/RTP/SAVPF 128 63",
            "above 127",
        ),
        (
            "m=audio 9 ",
            "m=audio 70000 ",
            "the port 70000 is out of range",
        ),
        (
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:111 opus/48000/200",
            "200 channels",
        ),
        ("a=extmap:14 ", "a=extmap:0 ", "header extension id 0"),
        (
            "a=ssrc:1949271950 cname",
            "a=ssrc:4294967296 cname",
            "the SSRC 4294967296 is out of range",
        ),
        ("a=sctp-port:5000", "a=sctp-port:0", "SCTP port 0"),
        (
            "a=ice-ufrag:Yx4e\r\na=ice-pwd:g8n0QlRCgn0cBDy1MUeMAfRZ\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0B",
            "a=ice-ufrag:\r\na=ice-pwd:g8n0QlRCgn0cBDy1MUeMAfRZ\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0B",
            "ice-ufrag",
        ),
        (
            "a=fingerprint:sha-256 0B:43",
            "a=fingerprint:md5 0B:43",
            "not a SHA",
        ),
        (
            "a=group:BUNDLE 0 1 2",
            "a=group:BUNDLE 0 1 7",
            "names \"7\", which no section has",
        ),
        (
            "a=group:BUNDLE 0 1 2",
            "a=group:BUNDLE 0 0 1",
            "names \"0\" twice",
        ),
        ("a=mid:1", "a=mid:0", "repeats a=mid:0"),
        (
            "packetization-mode=1;profile-level-id=42e01f",
            "packetization-mode=1;profile-level-id=zz",
            "profile-level-id",
        ),
    ];
    for (from, to, expect) in cases {
        let why = refused(&with(from, to, CHROMIUM), Kind::Offer);
        assert!(why.contains(expect), "{to}: {why}");
    }
}

#[test]
fn structure_that_webrtcbin_would_trip_on_is_refused() {
    assert!(refused("", Kind::Offer).contains("v=0"));
    assert!(refused("v=0\r\ns=-\r\n", Kind::Offer).contains("no media sections"));
    let nul = CHROMIUM.replace("s=-", "s=\0");
    assert!(refused(&nul, Kind::Offer).contains("control character"));
    let big = format!("{CHROMIUM}a=x:{}\r\n", "9".repeat(MAX_SDP_BYTES));
    assert!(refused(&big, Kind::Offer).contains("bytes"));
    let long = format!("{CHROMIUM}a=x:{}\r\n", "9".repeat(MAX_LINE));
    assert!(refused(&long, Kind::Offer).contains("bytes long"));
    let text = with("m=application 9", "m=text 9", CHROMIUM);
    assert!(refused(&text, Kind::Offer).contains("\"text\""));
    let unmapped = with("a=rtpmap:13 CN/8000", "a=rtpmap:14 CN/8000", CHROMIUM);
    assert!(refused(&unmapped, Kind::Offer).contains("maps payload type 14"));
    let twice = with("a=sendrecv", "a=sendrecv\r\na=recvonly", CHROMIUM);
    assert!(refused(&twice, Kind::Offer).contains("more than one direction"));
    let no_ice = FIREFOX.replace("a=ice-pwd:e1f4d1a3c1b2f5a6d7c8b9a0e1f2d3c4\r\n", "");
    assert!(refused(&no_ice, Kind::Offer).contains("no ICE credentials"));
    assert!(refused(CHROMIUM, Kind::Answer).contains("a=setup:actpass in an answer"));
    let mut many = CHROMIUM.to_string();
    for _ in 0..MAX_SECTIONS {
        many.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n");
    }
    assert!(refused(&many, Kind::Offer).contains("more than 8 media sections"));
}

#[test]
fn before_1_22_the_sections_must_hold_the_sent_streams_in_order() {
    let c = description(CHROMIUM, Kind::Offer).unwrap();
    assert_eq!(
        c.kinds,
        vec![
            ("audio".into(), false),
            ("video".into(), false),
            ("application".into(), false)
        ]
    );
    sections_fit_streams(&c, &["audio", "video"]).unwrap();
    sections_fit_streams(&c, &["audio"]).unwrap();
    // Audio without a codec we take: the video stream would be tied to the audio section.
    let why = sections_fit_streams(&c, &["video"]).unwrap_err().0;
    assert!(
        why.contains("media section 1 is audio") && why.contains("sends video"),
        "{why}"
    );
    let audio_rejected = with(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "m=audio 0 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        CHROMIUM,
    );
    let c = description(&audio_rejected, Kind::Offer).unwrap();
    let why = sections_fit_streams(&c, &["audio", "video"]).unwrap_err().0;
    assert!(why.contains("audio (rejected)"), "{why}");
    // A section with port 0 that is bundled is not rejected.
    let bundled = with(
        "a=mid:0\r\n",
        "a=mid:0\r\na=bundle-only\r\n",
        &audio_rejected,
    );
    let c = description(&bundled, Kind::Offer).unwrap();
    sections_fit_streams(&c, &["audio", "video"]).unwrap();
    let c = description(FIREFOX, Kind::Offer).unwrap();
    let why = sections_fit_streams(&c, &["audio", "video", "video"])
        .unwrap_err()
        .0;
    assert!(why.contains("has 2 media section(s)"), "{why}");
}

#[test]
fn candidates_are_read_with_the_ice_grammar() {
    let remote = description(CHROMIUM, Kind::Offer).unwrap();
    let host = "candidate:842163049 1 udp 2122260223 10.250.0.1 51234 typ host generation 0 ufrag Yx4e network-id 1";
    assert_eq!(
        candidate(&format!("a={host}"), 1, Some("1"), Some(&remote)).unwrap(),
        Some(host.to_string())
    );
    let srflx =
        "candidate:1 1 UDP 1686052607 203.0.113.7 40000 typ srflx raddr 10.0.0.2 rport 40000";
    assert!(candidate(srflx, 0, None, Some(&remote)).unwrap().is_some());
    let tcp = "candidate:2 1 tcp 1518280447 10.250.0.1 9 typ host tcptype active generation 0";
    assert!(candidate(tcp, 0, None, None).unwrap().is_some());
    let mdns =
        "candidate:3 1 udp 2122260223 5c1e8bd2-8a0f-4c5e-9f4e-7d1a2b3c4d5e.local 51234 typ host";
    assert_eq!(candidate(mdns, 0, None, Some(&remote)), Ok(None));
    assert_eq!(candidate("", 0, None, None), Ok(None));
    let bad = [
        (
            host.replace("10.250.0.1", "evil.example.com"),
            "not an IP address",
        ),
        (
            host.replace("51234", "65536"),
            "the port 65536 is out of range",
        ),
        (host.replace(" 1 udp", " 0 udp"), "component 0"),
        (host.replace("udp", "sctp"), "not UDP or TCP"),
        (host.replace("2122260223", "4294967296"), "the priority"),
        (host.replace("typ host", "typ bogus"), "typ"),
        (format!("{host}\0"), "control character"),
        (host.replace("candidate:", ""), "must start with"),
        (format!("{host} x"), "number of fields"),
        (host.replace("842163049", &"a".repeat(600)), "bytes"),
    ];
    for (c, expect) in bad {
        let why = candidate(&c, 0, None, Some(&remote)).unwrap_err().0;
        assert!(why.contains(expect), "{c}: {why}");
    }
    assert!(
        candidate(host, 3, None, Some(&remote))
            .unwrap_err()
            .0
            .contains("m-line 3")
    );
    assert!(
        candidate(host, 1, Some("0"), Some(&remote))
            .unwrap_err()
            .0
            .contains("mid")
    );
}

mod properties {
    use super::super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]=[ -~]{0,80}",
            "a=[a-z-]{1,12}:[ -~]{0,60}",
            "m=(audio|video|application|text) [0-9]{1,6} [A-Z/]{3,20}( [0-9]{1,4}){0,5}",
            "a=rtpmap:[0-9]{1,4} [A-Za-z0-9]{1,8}/[0-9]{0,8}(/[0-9]{1,3})?",
            "a=candidate:[ -~]{0,120}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Any text at all: a verdict, never a panic; what passes obeys the limits.
        #[test]
        fn any_description_gets_a_verdict(lines in proptest::collection::vec(line(), 0..40)) {
            let sdp = format!("v=0\r\n{}\r\n", lines.join("\r\n"));
            for kind in [Kind::Offer, Kind::Answer] {
                if let Ok(c) = description(&sdp, kind) {
                    prop_assert!(c.mids.len() <= MAX_SECTIONS);
                    prop_assert!(!sdp.contains('\0'));
                } else if let Err(Refusal(why)) = description(&sdp, kind) {
                    prop_assert!(!why.is_empty());
                }
            }
        }

        #[test]
        fn any_candidate_gets_a_verdict(c in "[ -~]{0,200}", raw in any::<String>(), mline in any::<u32>()) {
            for text in [format!("candidate:{c}"), raw.clone()] {
                match candidate(&text, mline, None, None) {
                    Ok(Some(used)) => {
                        prop_assert!(used.len() <= MAX_CANDIDATE);
                        prop_assert!(!used.chars().any(char::is_control));
                        prop_assert!((mline as usize) < MAX_SECTIONS);
                    }
                    Ok(None) => {}
                    Err(Refusal(why)) => prop_assert!(!why.is_empty()),
                }
            }
        }
    }
}
