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
mod tests;
