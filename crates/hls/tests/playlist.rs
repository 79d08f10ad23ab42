//! The media playlist through the public API: exact text for scripted sequences,
//! parse-back with m3u8-rs, the window, discontinuities, delta updates, blocking
//! reload decisions and their deadline in virtual time.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use onair_hls::{
    BlockingWait, Directives, PartId, PartInfo, Playlist, PlaylistSettings, Readiness,
    RenderRequest, Resource, SegmentFormat, WaitOutcome,
};

const T0: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

fn settings(window_segments: usize, low_latency: bool) -> PlaylistSettings {
    PlaylistSettings {
        part_target: Duration::from_millis(500),
        segment_target: Duration::from_secs(1),
        window_segments,
        low_latency,
    }
}

fn part(ms: u64, starts_segment: bool) -> PartInfo {
    PartInfo {
        duration: Duration::from_millis(ms),
        independent: starts_segment,
        starts_segment,
    }
}

/// Pushes `segments` segments of two 500 ms parts each, then `open_parts` parts of
/// one more; wall clock advances with media time from `T0`.
fn scripted(playlist: &mut Playlist, segments: u64, open_parts: u64, clock: &mut u64) {
    for _ in 0..segments {
        playlist.push_part(part(500, true), *clock);
        playlist.push_part(part(500, false), *clock + 500);
        *clock += 1000;
    }
    for i in 0..open_parts {
        playlist.push_part(part(500, i == 0), *clock);
        *clock += 500;
    }
}

fn full(playlist: &Playlist) -> String {
    playlist.render(&RenderRequest {
        skip: false,
        query: "",
    })
}

#[test]
fn low_latency_snapshot() {
    let mut p = Playlist::new(settings(3, true));
    assert_eq!(p.new_init(), 0);
    let mut clock = T0;
    scripted(&mut p, 2, 1, &mut clock);
    let text = p.render(&RenderRequest {
        skip: false,
        query: "s=abc&sig=1",
    });
    assert_eq!(
        text,
        r#"#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI="init0.mp4?s=abc&sig=1"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXT-X-PART:DURATION=0.500,URI="part0.0.m4s?s=abc&sig=1",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part0.1.m4s?s=abc&sig=1"
#EXTINF:1.000,
seg0.m4s?s=abc&sig=1
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z
#EXT-X-PART:DURATION=0.500,URI="part1.0.m4s?s=abc&sig=1",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part1.1.m4s?s=abc&sig=1"
#EXTINF:1.000,
seg1.m4s?s=abc&sig=1
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.500,URI="part2.0.m4s?s=abc&sig=1",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part2.1.m4s?s=abc&sig=1"
"#
    );
    assert_eq!(p.latest(), Some(PartId { msn: 2, part: 0 }));
    assert_eq!(p.next_part(), PartId { msn: 2, part: 1 });
    assert_eq!(p.target_duration(), Duration::from_secs(1));
}

#[test]
fn plain_hls_snapshot_lists_complete_segments_only() {
    let mut p = Playlist::new(settings(3, false));
    p.new_init();
    let mut clock = T0;
    scripted(&mut p, 2, 1, &mut clock);
    // A delta update is never produced for plain HLS.
    let text = p.render(&RenderRequest {
        skip: true,
        query: "",
    });
    assert_eq!(
        text,
        "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI=\"init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:1.000,
seg0.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z
#EXTINF:1.000,
seg1.m4s
"
    );
    // Blocking reload is not advertised, so directives are ignored.
    assert_eq!(p.readiness(40, Some(3)), Readiness::Ready);
}

#[test]
fn mpeg_ts_playlist_has_no_map_and_ts_uris() {
    let mut p = Playlist::with_format(settings(3, true), SegmentFormat::MpegTs);
    p.new_init();
    let mut clock = T0;
    scripted(&mut p, 1, 1, &mut clock);
    assert_eq!(
        full(&p),
        "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:1.000,
seg0.ts
"
    );
}

#[test]
fn parses_back_with_m3u8_rs() {
    let mut p = Playlist::new(settings(5, true));
    p.new_init();
    let mut clock = T0;
    scripted(&mut p, 3, 2, &mut clock);
    p.discontinuity();
    p.new_init();
    scripted(&mut p, 1, 1, &mut clock);
    let text = full(&p);
    let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
    assert_eq!(parsed.version, Some(6));
    assert_eq!(parsed.target_duration, 1);
    assert_eq!(parsed.media_sequence, 0);
    assert_eq!(parsed.discontinuity_sequence, 0);
    let uris: Vec<_> = parsed.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        ["seg0.m4s", "seg1.m4s", "seg2.m4s", "seg3.m4s", "seg4.m4s"]
    );
    let durations: Vec<_> = parsed.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations, [1.0, 1.0, 1.0, 1.0, 1.0]);
    let discontinuities: Vec<_> = parsed.segments.iter().map(|s| s.discontinuity).collect();
    assert_eq!(discontinuities, [false, false, false, false, true]);
    let maps: Vec<_> = parsed
        .segments
        .iter()
        .map(|s| s.map.as_ref().map(|m| m.uri.clone()))
        .collect();
    assert_eq!(
        maps,
        [
            Some("init0.mp4".to_string()),
            None,
            None,
            None,
            Some("init1.mp4".to_string())
        ]
    );
    for (i, segment) in parsed.segments.iter().enumerate() {
        let pdt = segment.program_date_time.unwrap();
        let expected = T0 as i64 + 1000 * i as i64;
        assert_eq!(pdt.timestamp_millis(), expected, "segment {i}");
    }

    // The LL-HLS tags, which m3u8-rs keeps as unknown tags, with their attributes.
    let server_control = attributes(&text, "#EXT-X-SERVER-CONTROL:");
    assert_eq!(
        server_control,
        [[
            ("CAN-BLOCK-RELOAD", "YES"),
            ("CAN-SKIP-UNTIL", "6.000"),
            ("PART-HOLD-BACK", "1.500"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()]
    );
    let parts = attributes(&text, "#EXT-X-PART:");
    // Three target durations (3 s) from the end: segments 2..=4 and the open one.
    assert_eq!(parts.len(), 2 * 3 + 1);
    let part_uris: Vec<_> = parts.iter().map(|a| value(a, "URI")).collect();
    assert_eq!(
        part_uris,
        [
            "part2.0.m4s",
            "part2.1.m4s",
            "part3.0.m4s",
            "part3.1.m4s",
            "part4.0.m4s",
            "part4.1.m4s",
            "part5.0.m4s"
        ]
    );
    for attrs in &parts {
        assert_eq!(value(attrs, "DURATION"), "0.500");
        let independent = value(attrs, "URI").ends_with(".0.m4s");
        assert_eq!(
            attrs.iter().any(|(k, v)| k == "INDEPENDENT" && v == "YES"),
            independent
        );
    }
    let hint = attributes(&text, "#EXT-X-PRELOAD-HINT:");
    assert_eq!(value(&hint[0], "TYPE"), "PART");
    assert_eq!(value(&hint[0], "URI"), "part5.1.m4s");
    assert_eq!(
        value(&attributes(&text, "#EXT-X-PART-INF:")[0], "PART-TARGET"),
        "0.500"
    );
    // Every part is PART-TARGET or shorter, and parts sum to their segment's EXTINF.
    assert!(parts
        .iter()
        .all(|a| value(a, "DURATION").parse::<f64>().unwrap() <= 0.5));
}

#[test]
fn window_evicts_oldest_segments_and_reports_them() {
    let mut p = Playlist::new(settings(2, true));
    p.new_init();
    let mut evicted = Vec::new();
    let mut completed = Vec::new();
    for msn in 0..5u64 {
        for i in 0..2 {
            let pushed = p.push_part(part(500, i == 0), T0 + msn * 1000 + i * 500);
            assert_eq!(
                pushed.id,
                PartId {
                    msn,
                    part: i as u32
                }
            );
            evicted.extend(pushed.evicted_segments);
            completed.extend(pushed.completed_segment);
        }
    }
    // Open: 4; complete: 2, 3.
    assert_eq!(evicted, [0, 1]);
    assert_eq!(completed, [0, 1, 2, 3]);
    assert_eq!(p.media_sequence(), 2);
    assert!(!p.lookup(&Resource::Segment(1)));
    assert!(!p.lookup(&Resource::Part(PartId { msn: 1, part: 0 })));
    assert!(p.lookup(&Resource::Segment(2)));
    assert!(p.lookup(&Resource::Part(PartId { msn: 3, part: 1 })));
    assert!(!p.lookup(&Resource::Part(PartId { msn: 3, part: 2 })));
    // The open segment's parts exist, the segment does not yet.
    assert!(p.lookup(&Resource::Part(PartId { msn: 4, part: 1 })));
    assert!(!p.lookup(&Resource::Segment(4)));
    assert!(p.lookup(&Resource::Init(0)));
    assert!(!p.lookup(&Resource::Init(1)));
    assert_eq!(p.segment_summary(3), Some((2, Duration::from_secs(1))));

    // The publisher leaves: the open segment closes without evicting anything...
    assert_eq!(p.end_segment(), Some(4));
    assert_eq!(p.end_segment(), None);
    assert!(p.lookup(&Resource::Segment(4)));
    assert!(p.lookup(&Resource::Segment(2)));
    assert_eq!(p.next_part(), PartId { msn: 5, part: 0 });
    // ...until the next segment opens.
    let pushed = p.push_part(part(500, false), T0 + 9000);
    assert_eq!(pushed.id, PartId { msn: 5, part: 0 });
    assert_eq!(pushed.evicted_segments, [2]);
    assert_eq!(pushed.completed_segment, None);
    let text = full(&p);
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{text}");
    assert_eq!(text.matches("#EXTINF").count(), 2);
}

#[test]
fn discontinuity_and_new_init_start_a_segment_and_are_counted_when_evicted() {
    let mut p = Playlist::new(settings(2, true));
    p.new_init();
    let mut clock = T0;
    scripted(&mut p, 1, 1, &mut clock);
    // The publisher restarts mid-segment: the next part starts a segment even though
    // the segmenter did not flag one.
    p.discontinuity();
    assert_eq!(p.new_init(), 1);
    let pushed = p.push_part(part(500, false), clock);
    assert_eq!(pushed.id, PartId { msn: 2, part: 0 });
    assert_eq!(pushed.completed_segment, Some(1));
    clock += 500;
    p.push_part(part(500, false), clock);
    clock += 500;
    let text = full(&p);
    let expected_tail = "#EXTINF:0.500,
seg1.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.500Z
#EXT-X-PART:DURATION=0.500,URI=\"part2.0.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"part2.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.2.m4s\"
";
    assert!(text.ends_with(expected_tail), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n"));
    assert!(p.lookup(&Resource::Init(0)) && p.lookup(&Resource::Init(1)));

    // Two more segments push segment 2 (with the tag) out: the sequence counts it.
    scripted(&mut p, 3, 1, &mut clock);
    let text = full(&p);
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:4\n"), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    // The init segment still in force is announced again at the top.
    assert!(text.contains("#EXT-X-MAP:URI=\"init1.mp4\""));
    assert!(!p.lookup(&Resource::Init(0)));
}

#[test]
fn first_segment_never_carries_a_discontinuity() {
    let mut p = Playlist::new(settings(2, true));
    p.discontinuity();
    p.push_part(part(500, true), T0);
    assert!(!full(&p).contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn delta_update_skips_segments_older_than_can_skip_until() {
    let mut p = Playlist::new(settings(20, true));
    p.new_init();
    let mut clock = T0;
    // 9 complete one-second segments and half of a tenth: 9.5 s. CAN-SKIP-UNTIL is
    // 6 s, so segments ending at or before 3.5 s go: 0, 1, 2.
    scripted(&mut p, 9, 1, &mut clock);
    let delta = p.render(&RenderRequest {
        skip: true,
        query: "s=1",
    });
    let head = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-SKIP:SKIPPED-SEGMENTS=3
#EXT-X-MAP:URI=\"init0.mp4?s=1\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.000Z
#EXTINF:1.000,
seg3.m4s?s=1
";
    assert!(delta.starts_with(head), "{delta}");
    // What follows is exactly the full playlist's tail from segment 4 on.
    let full_text = full(&p)
        .replace(".m4s\"", ".m4s?s=1\"")
        .replace(".m4s\n", ".m4s?s=1\n");
    let from_seg4 = |t: &str| t[t.find("seg3.m4s?s=1\n").unwrap()..].to_string();
    assert_eq!(from_seg4(&delta), from_seg4(&full_text));

    // Too short to skip anything: a full playlist, without EXT-X-SKIP.
    let mut short = Playlist::new(settings(20, true));
    short.new_init();
    let mut clock = T0;
    scripted(&mut short, 6, 1, &mut clock);
    let text = short.render(&RenderRequest {
        skip: true,
        query: "",
    });
    assert!(!text.contains("EXT-X-SKIP"));
    assert_eq!(text, full(&short));
    // The skip boundary is inclusive: at 7.0 s exactly segment 0 (ending at 1.0) goes.
    short.push_part(part(500, false), clock);
    let text = short.render(&RenderRequest {
        skip: true,
        query: "",
    });
    assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n"), "{text}");
}

#[test]
fn target_duration_is_fixed_and_long_segments_are_clamped() {
    let mut p = Playlist::new(PlaylistSettings {
        segment_target: Duration::from_millis(1500),
        ..settings(3, true)
    });
    // A 3.2 s GOP: EXTINF is clamped to what still rounds to TARGETDURATION (2).
    p.push_part(part(3200, true), T0);
    p.push_part(part(500, true), T0 + 3200);
    let text = full(&p);
    assert!(text.contains("#EXT-X-TARGETDURATION:2\n"));
    assert!(text.contains("#EXTINF:2.499,\n"), "{text}");
}

#[test]
fn a_segment_without_keyframes_is_cut_at_a_bound() {
    let mut p = Playlist::new(settings(3, true));
    // Four target durations of 500 ms parts is 8; the floor is 16 parts.
    for i in 0..16 {
        assert_eq!(p.push_part(part(500, i == 0), T0).id.msn, 0);
    }
    let pushed = p.push_part(part(500, false), T0);
    assert_eq!(pushed.id, PartId { msn: 1, part: 0 });
    assert_eq!(pushed.completed_segment, Some(0));
}

#[test]
fn query_cannot_break_out_of_the_uri() {
    let mut p = Playlist::new(settings(3, true));
    p.push_part(part(500, true), T0);
    let text = p.render(&RenderRequest {
        skip: false,
        query: "a=\"b\"\n#EXT-X-ENDLIST\r",
    });
    assert!(
        text.contains("URI=\"part0.0.m4s?a=b#EXT-X-ENDLIST\""),
        "{text}"
    );
    assert!(!text.lines().any(|l| l == "#EXT-X-ENDLIST"));
}

/// Readiness at every edge around the live edge. The playlist holds complete
/// segments 0..=3 (two parts each) and open segment 4 with one part: the last
/// complete segment L is 3.
#[test]
fn readiness_at_every_edge() {
    let mut p = Playlist::new(settings(3, true));
    p.new_init();
    let mut clock = T0;
    scripted(&mut p, 4, 1, &mut clock);
    assert_eq!(p.media_sequence(), 1);
    use Readiness::*;
    // Already evicted, or complete.
    assert_eq!(p.readiness(0, None), Ready);
    assert_eq!(p.readiness(2, None), Ready); // L-1
    assert_eq!(p.readiness(3, None), Ready); // L
    assert_eq!(p.readiness(3, Some(1)), Ready);
    // L+1 is the open segment: its part 0 exists, part 1 not yet, the whole not yet.
    assert_eq!(p.readiness(4, None), Wait);
    assert_eq!(p.readiness(4, Some(0)), Ready);
    assert_eq!(p.readiness(4, Some(1)), Wait);
    // L+2 may be waited for; L+3 is more than two segments beyond the last.
    assert_eq!(p.readiness(5, None), Wait);
    assert_eq!(p.readiness(5, Some(0)), Wait);
    assert_eq!(p.readiness(6, None), TooFarAhead);
    assert_eq!(p.readiness(6, Some(0)), TooFarAhead);
    assert_eq!(p.readiness(u64::MAX, None), TooFarAhead);
    // A part beyond a complete segment is the next segment's part 0.
    assert_eq!(p.readiness(3, Some(2)), Ready); // = (4, 0), which exists
    assert_eq!(p.readiness(3, Some(u32::MAX)), Ready);
    // Part index against the Advance Part Limit (3 / 0.5 s = 6 parts beyond the last,
    // which is part 0).
    assert_eq!(p.advance_part_limit(), 6);
    assert_eq!(p.readiness(4, Some(6)), Wait);
    assert_eq!(p.readiness(4, Some(7)), TooFarAhead);
    // _HLS_part without _HLS_msn.
    let directives = Directives::parse("_HLS_part=1");
    assert_eq!(directives, Err("_HLS_part without _HLS_msn"));
    let bare = Directives {
        msn: None,
        part: Some(1),
        skip: false,
    };
    assert_eq!(
        p.readiness_for(&bare),
        BadRequest("_HLS_part without _HLS_msn")
    );
    assert_eq!(p.readiness_for(&Directives::default()), Ready);

    // When segment 4 completes, (4, 2) means (5, 0), and L+3 moves on by one.
    p.push_part(part(500, false), clock);
    p.end_segment();
    assert_eq!(p.readiness(4, None), Ready);
    assert_eq!(p.readiness(4, Some(1)), Ready);
    assert_eq!(p.readiness(4, Some(2)), Wait);
    assert_eq!(p.readiness(6, None), Wait);
    assert_eq!(p.readiness(7, None), TooFarAhead);
}

#[test]
fn readiness_before_anything_was_pushed() {
    let p = Playlist::new(settings(3, true));
    assert_eq!(p.latest(), None);
    assert_eq!(p.readiness(0, Some(0)), Readiness::Wait);
    assert_eq!(p.readiness(1, None), Readiness::Wait);
    assert_eq!(p.readiness(2, None), Readiness::TooFarAhead);
    // Nothing listed yet but the hint for the first part.
    assert!(full(&p).ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part0.0.m4s\"\n"));
}

/// A blocked request in virtual time: it waits while the part is missing, is
/// answered when the part lands, and times out at three target durations.
#[test]
fn blocking_wait_in_virtual_time() {
    let mut p = Playlist::new(settings(3, true));
    p.new_init();
    let mut clock = T0;
    scripted(&mut p, 1, 1, &mut clock);
    let arrived = Duration::from_secs(100);
    let directives = Directives::parse("_HLS_msn=1&_HLS_part=1").unwrap();
    let wait = BlockingWait::new(directives, arrived, p.target_duration());
    assert_eq!(wait.deadline(), Duration::from_secs(103));
    assert_eq!(
        onair_hls::blocking_deadline(arrived, Duration::from_secs(2)),
        Duration::from_secs(106)
    );

    assert_eq!(wait.poll(&p, arrived), WaitOutcome::Wait);
    assert_eq!(
        wait.poll(&p, Duration::from_millis(102_999)),
        WaitOutcome::Wait
    );
    // The part lands before the deadline.
    let mut later = p.clone();
    later.push_part(part(500, false), clock);
    assert_eq!(
        wait.poll(&later, Duration::from_millis(100_400)),
        WaitOutcome::Respond
    );
    // It never does.
    assert_eq!(
        wait.poll(&p, Duration::from_secs(103)),
        WaitOutcome::TimedOut
    );

    let too_far = BlockingWait::new(
        Directives::parse("_HLS_msn=9").unwrap(),
        arrived,
        p.target_duration(),
    );
    assert!(matches!(
        too_far.poll(&p, arrived),
        WaitOutcome::BadRequest(_)
    ));
}

/// `NAME=value` pairs of every line starting with `tag`, quotes removed.
fn attributes(text: &str, tag: &str) -> Vec<Vec<(String, String)>> {
    text.lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|rest| {
            let mut out = Vec::new();
            let mut rest = rest;
            while !rest.is_empty() {
                let (key, after) = rest.split_once('=').unwrap();
                let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
                    let end = quoted.find('"').unwrap();
                    (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
                } else {
                    let end = after.find(',').unwrap_or(after.len());
                    (&after[..end], after[end..].trim_start_matches(','))
                };
                out.push((key.to_string(), value.to_string()));
                rest = next;
            }
            out
        })
        .collect()
}

fn value<'a>(attrs: &'a [(String, String)], key: &str) -> &'a str {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {attrs:?}"))
}

#[test]
fn numbering_can_start_from_any_msn_and_restarts_still_mark_discontinuities() {
    let mut p = Playlist::new(settings(3, true)).starting_at(1_000);
    p.new_init();
    p.discontinuity();
    let mut clock = T0;
    scripted(&mut p, 1, 1, &mut clock);
    let text = full(&p);
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:1000\n"), "{text}");
    assert!(
        !text.contains("#EXT-X-DISCONTINUITY\n"),
        "nothing before the first segment to separate from:\n{text}"
    );
    assert_eq!(p.next_part(), PartId { msn: 1001, part: 1 });
    p.discontinuity();
    scripted(&mut p, 1, 0, &mut clock);
    assert!(full(&p).contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn with_query_gives_what_rendering_with_the_query_gives() {
    let query = "expires=99&sig=ab\"cd&session=1f";
    let mut shapes = Vec::new();
    for low_latency in [true, false] {
        let mut p = Playlist::new(settings(12, low_latency));
        p.new_init();
        let mut clock = T0;
        scripted(&mut p, 9, 1, &mut clock);
        p.discontinuity();
        p.new_init();
        scripted(&mut p, 2, 1, &mut clock);
        shapes.push(p);
    }
    let mut ts = Playlist::with_format(settings(3, false), SegmentFormat::MpegTs);
    ts.push_segment(Duration::from_secs(1), T0);
    ts.push_segment(Duration::from_secs(1), T0 + 1000);
    shapes.push(ts);
    for p in &shapes {
        for skip in [false, true] {
            let plain = p.render(&RenderRequest { skip, query: "" });
            let direct = p.render(&RenderRequest { skip, query });
            assert_eq!(onair_hls::with_query(&plain, query), direct, "{direct}");
            assert_eq!(onair_hls::with_query(&plain, ""), plain);
        }
    }
}
