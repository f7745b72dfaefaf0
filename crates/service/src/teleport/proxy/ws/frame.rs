//! RFC 6455 framing, both directions: an encoder (masked for clients) and an incremental
//! decoder that streams data payloads of any size without buffering whole frames, checks the
//! frame sequence, and hands control frames (ping, pong, close) over whole.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Control frames carry at most this much payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which end we are: clients mask what they send and must receive unmasked frames; servers
/// the reverse (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A piece of binary payload (frames and fragments are not visible: it is a byte stream).
    Data(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// The peer closes; status code and reason when it sent them.
    Close(Option<u16>, String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved bits set in a WebSocket frame (no extension was negotiated)")]
    Reserved,
    #[error("unknown WebSocket opcode {0:#x}")]
    Opcode(u8),
    #[error("a text WebSocket frame arrived; the connection upgrade carries binary frames only")]
    Text,
    #[error("a fragmented WebSocket control frame")]
    FragmentedControl,
    #[error("a WebSocket control frame of {0} bytes (at most 125 allowed)")]
    ControlTooLong(u64),
    #[error("a WebSocket continuation frame without a message to continue")]
    UnexpectedContinuation,
    #[error("a new WebSocket data frame inside an unfinished fragmented message")]
    UnfinishedMessage,
    #[error("a WebSocket frame length with the most significant bit set")]
    Length,
    #[error("a masked WebSocket frame from the server")]
    MaskedFromServer,
    #[error("an unmasked WebSocket frame from the client")]
    UnmaskedFromClient,
    #[error("a WebSocket close frame with a 1-byte payload")]
    CloseLength,
}

/// Appends one frame to `out`. `mask` is the masking key (clients must pass one).
pub fn encode(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>, out: &mut BytesMut) {
    out.reserve(payload.len() + 14);
    out.put_u8(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.put_u8(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(mask_bit | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(mask_bit | 127);
            out.put_u64(n as u64);
        }
    }
    match mask {
        None => out.put_slice(payload),
        Some(key) => {
            out.put_slice(&key);
            let start = out.len();
            out.put_slice(payload);
            apply_mask(&mut out[start..], key, 0);
        }
    }
}

/// XORs `data` with the masking key, starting at payload offset `offset`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

#[derive(Debug)]
enum State {
    Header,
    /// Streaming a binary or continuation payload.
    Data {
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
    },
}

/// An incremental decoder for the frames one peer receives.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    state: State,
    /// Inside a fragmented binary message (a FIN-less data frame was seen).
    in_message: bool,
}

impl Decoder {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            state: State::Header,
            in_message: false,
        }
    }

    /// True when no frame is partly read (an end of input here is a clean end).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header) && !self.in_message
    }

    /// Takes what it can from `buf`; `Ok(None)` means more input is needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, FrameError> {
        loop {
            match &mut self.state {
                State::Data {
                    remaining,
                    mask,
                    offset,
                } => {
                    if *remaining == 0 {
                        self.state = State::Header;
                        continue;
                    }
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let mut chunk = buf.split_to(n);
                    if let Some(key) = mask {
                        apply_mask(&mut chunk, *key, *offset);
                    }
                    *offset = (*offset + n) % 4;
                    *remaining -= n as u64;
                    return Ok(Some(Event::Data(chunk.freeze())));
                }
                State::Header => {
                    let Some(header) = self.header(buf)? else {
                        return Ok(None);
                    };
                    match self.start_frame(header, buf)? {
                        Step::Event(e) => return Ok(Some(e)),
                        Step::NeedMore => return Ok(None),
                        Step::Continue => {}
                    }
                }
            }
        }
    }

    /// Parses a complete header at the front of `buf` (without consuming a control frame's
    /// payload), or `None` when it is not all there yet.
    fn header(&self, buf: &BytesMut) -> Result<Option<Header>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(FrameError::Reserved);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Client, true) => return Err(FrameError::MaskedFromServer),
            (Role::Server, false) => return Err(FrameError::UnmaskedFromClient),
            _ => {}
        }
        let (len, mut pos) = match b1 & 0x7F {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(FrameError::Length);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let key = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
            pos += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some(Header {
            fin,
            opcode,
            len,
            mask,
            header_len: pos,
        }))
    }

    /// Acts on a parsed header: data frames switch to streaming, control frames wait until
    /// their whole payload is in `buf` and become an event.
    fn start_frame(&mut self, h: Header, buf: &mut BytesMut) -> Result<Step, FrameError> {
        match h.opcode {
            OP_BINARY | OP_CONTINUATION => {
                if h.opcode == OP_CONTINUATION && !self.in_message {
                    return Err(FrameError::UnexpectedContinuation);
                }
                if h.opcode == OP_BINARY && self.in_message {
                    return Err(FrameError::UnfinishedMessage);
                }
                self.in_message = !h.fin;
                buf.advance(h.header_len);
                self.state = State::Data {
                    remaining: h.len,
                    mask: h.mask,
                    offset: 0,
                };
                Ok(Step::Continue)
            }
            OP_TEXT => Err(FrameError::Text),
            OP_CLOSE | OP_PING | OP_PONG => {
                if !h.fin {
                    return Err(FrameError::FragmentedControl);
                }
                if h.len > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(FrameError::ControlTooLong(h.len));
                }
                let total = h.header_len + h.len as usize;
                if buf.len() < total {
                    return Ok(Step::NeedMore);
                }
                buf.advance(h.header_len);
                let mut payload = buf.split_to(h.len as usize);
                if let Some(key) = h.mask {
                    apply_mask(&mut payload, key, 0);
                }
                let payload = payload.freeze();
                Ok(Step::Event(match h.opcode {
                    OP_PING => Event::Ping(payload),
                    OP_PONG => Event::Pong(payload),
                    _ => close_event(payload)?,
                }))
            }
            other => Err(FrameError::Opcode(other)),
        }
    }
}

enum Step {
    Event(Event),
    NeedMore,
    Continue,
}

struct Header {
    fin: bool,
    opcode: u8,
    len: u64,
    mask: Option<[u8; 4]>,
    header_len: usize,
}

fn close_event(payload: Bytes) -> Result<Event, FrameError> {
    match payload.len() {
        0 => Ok(Event::Close(None, String::new())),
        1 => Err(FrameError::CloseLength),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
            Ok(Event::Close(Some(code), reason))
        }
    }
}

/// The payload of a close frame with `code`.
pub fn close_payload(code: u16) -> [u8; 2] {
    code.to_be_bytes()
}

#[cfg(test)]
mod tests {
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
}
