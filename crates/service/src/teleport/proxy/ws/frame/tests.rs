use super::*;
use proptest::prelude::*;

fn decode_all(role: Role, bytes: &[u8]) -> Result<Vec<Event>, FrameError> {
    let mut d = Decoder::new(role);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(e) = d.next(&mut buf)? {
        out.push(e);
    }
    Ok(out)
}

fn data(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn decodes_the_rfc_6455_masked_and_unmasked_examples() {
    // RFC 6455 §5.7: "Hello" unmasked from a server, masked from a client. They are text
    // frames there; the same bytes with the binary opcode are what this transport uses.
    let unmasked = [0x82, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        data(&decode_all(Role::Client, &unmasked).unwrap()),
        b"Hello"
    );
    let masked = [
        0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(data(&decode_all(Role::Server, &masked).unwrap()), b"Hello");
    let mut enc = BytesMut::new();
    encode(
        OP_BINARY,
        true,
        b"Hello",
        Some([0x37, 0xfa, 0x21, 0x3d]),
        &mut enc,
    );
    assert_eq!(&enc[..], &masked);
}

#[test]
fn a_fragmented_message_reads_as_one_byte_stream_with_a_ping_in_between() {
    // RFC 6455 §5.7's fragmented "Hel" + "lo", with an unmasked ping between fragments.
    let bytes = [
        0x02, 0x03, 0x48, 0x65, 0x6c, // binary, no FIN: "Hel"
        0x89, 0x02, b'h', b'i', // ping "hi"
        0x80, 0x02, 0x6c, 0x6f, // continuation, FIN: "lo"
    ];
    let events = decode_all(Role::Client, &bytes).unwrap();
    assert_eq!(data(&events), b"Hello");
    assert!(events.contains(&Event::Ping(Bytes::from_static(b"hi"))));
}

#[test]
fn extended_lengths_of_16_and_64_bits_round_trip() {
    for len in [125usize, 126, 65_535, 65_536, 200_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut enc = BytesMut::new();
        encode(OP_BINARY, true, &payload, Some([1, 2, 3, 4]), &mut enc);
        assert_eq!(
            data(&decode_all(Role::Server, &enc).unwrap()),
            payload,
            "{len}"
        );
        let mut enc = BytesMut::new();
        encode(OP_BINARY, true, &payload, None, &mut enc);
        assert_eq!(
            data(&decode_all(Role::Client, &enc).unwrap()),
            payload,
            "{len}"
        );
    }
}

#[test]
fn data_arrives_before_the_whole_frame_is_buffered() {
    let mut enc = BytesMut::new();
    encode(OP_BINARY, true, &[7u8; 1000], None, &mut enc);
    let mut d = Decoder::new(Role::Client);
    let mut buf = BytesMut::from(&enc[..100]);
    let Some(Event::Data(first)) = d.next(&mut buf).unwrap() else {
        panic!("a partial payload is delivered")
    };
    assert_eq!(first.len(), 96);
    assert!(!d.at_boundary());
    buf.extend_from_slice(&enc[100..]);
    let Some(Event::Data(rest)) = d.next(&mut buf).unwrap() else {
        panic!("the rest")
    };
    assert_eq!(rest.len(), 904);
    assert!(d.next(&mut buf).unwrap().is_none());
    assert!(d.at_boundary());
}

#[test]
fn ping_pong_and_close_frames_carry_their_payloads() {
    let mut enc = BytesMut::new();
    encode(OP_PING, true, b"teleport", None, &mut enc);
    encode(OP_PONG, true, b"teleport", None, &mut enc);
    encode(
        OP_CLOSE,
        true,
        &[0x03, 0xe8, b'b', b'y', b'e'],
        None,
        &mut enc,
    );
    let events = decode_all(Role::Client, &enc).unwrap();
    assert_eq!(
        events,
        vec![
            Event::Ping(Bytes::from_static(b"teleport")),
            Event::Pong(Bytes::from_static(b"teleport")),
            Event::Close(Some(1000), "bye".into()),
        ]
    );
    let mut empty_close = BytesMut::new();
    encode(OP_CLOSE, true, &[], None, &mut empty_close);
    assert_eq!(
        decode_all(Role::Client, &empty_close).unwrap(),
        vec![Event::Close(None, String::new())]
    );
}

#[test]
fn protocol_violations_are_errors_naming_the_problem() {
    let cases: Vec<(Vec<u8>, Role, FrameError)> = vec![
        (vec![0xC2, 0x00], Role::Client, FrameError::Reserved),
        (vec![0x83, 0x00], Role::Client, FrameError::Opcode(3)),
        (vec![0x81, 0x00], Role::Client, FrameError::Text),
        (
            vec![0x09, 0x00],
            Role::Client,
            FrameError::FragmentedControl,
        ),
        (
            vec![0x89, 0x7E, 0x00, 0x7E],
            Role::Client,
            FrameError::ControlTooLong(126),
        ),
        (
            vec![0x80, 0x00],
            Role::Client,
            FrameError::UnexpectedContinuation,
        ),
        (
            vec![0x02, 0x00, 0x82, 0x00],
            Role::Client,
            FrameError::UnfinishedMessage,
        ),
        (
            vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0],
            Role::Server,
            FrameError::Length,
        ),
        (
            vec![0x82, 0x80, 0, 0, 0, 0],
            Role::Client,
            FrameError::MaskedFromServer,
        ),
        (
            vec![0x82, 0x00],
            Role::Server,
            FrameError::UnmaskedFromClient,
        ),
        (
            vec![0x88, 0x01, 0x03],
            Role::Client,
            FrameError::CloseLength,
        ),
    ];
    for (bytes, role, want) in cases {
        assert_eq!(decode_all(role, &bytes), Err(want.clone()), "{bytes:02x?}");
    }
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        split in 0usize..512,
        server in any::<bool>(),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let mut d = Decoder::new(role);
        let cut = split.min(bytes.len());
        let mut buf = BytesMut::from(&bytes[..cut]);
        let mut feed = vec![&bytes[cut..]];
        loop {
            match d.next(&mut buf) {
                Ok(Some(_)) => continue,
                Err(_) => break,
                Ok(None) => match feed.pop() {
                    Some(more) => buf.extend_from_slice(more),
                    None => break,
                },
            }
        }
    }

    #[test]
    fn fragmented_masked_payloads_round_trip_through_the_decoder(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
        key in any::<[u8; 4]>(),
        feed in 1usize..64,
    ) {
        let mut enc = BytesMut::new();
        let last = chunks.len() - 1;
        for (i, c) in chunks.iter().enumerate() {
            let op = if i == 0 { OP_BINARY } else { OP_CONTINUATION };
            encode(op, i == last, c, Some(key), &mut enc);
            if i == 0 {
                encode(OP_PING, true, b"p", Some(key), &mut enc);
            }
        }
        let mut d = Decoder::new(Role::Server);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut pings = 0;
        for piece in enc.chunks(feed) {
            buf.extend_from_slice(piece);
            while let Some(e) = d.next(&mut buf).unwrap() {
                match e {
                    Event::Data(b) => got.extend_from_slice(&b),
                    Event::Ping(p) => { prop_assert_eq!(&p[..], b"p"); pings += 1 }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
        prop_assert_eq!(got, chunks.concat());
        prop_assert_eq!(pings, 1);
        prop_assert!(d.at_boundary());
    }
}
